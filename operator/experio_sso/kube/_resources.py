"""Resource kinds and the URL paths of their objects."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["CONFIGMAPS", "EVENTS", "SECRETS", "ResourceKind"]


@dataclass(frozen=True)
class ResourceKind:
    """A kind of object served by the API server, named as its REST paths name it.

    ``group`` is ``""`` for the core group (Secrets, ConfigMaps, Events).
    """

    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` field of this kind's objects: ``v1`` or ``group/version``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """The resource name RBAC and error messages use: ``secrets``, ``ssoclients.auth...``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(
        self, namespace: str | None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """Return the URL path of the collection (no ``name``) or of one object.

        An empty or ``None`` namespace gives the cluster-wide path, which is the path of
        cluster-scoped objects and the list or watch across all namespaces.
        """
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace:
            base = f"{base}/namespaces/{quote(namespace, safe='')}"
        path = f"{base}/{self.plural}"
        if name is not None:
            path = f"{path}/{quote(name, safe='')}"
            if subresource:
                path = f"{path}/{quote(subresource, safe='')}"
        return path


SECRETS = ResourceKind("", "v1", "secrets", "Secret")
CONFIGMAPS = ResourceKind("", "v1", "configmaps", "ConfigMap")
EVENTS = ResourceKind("", "v1", "events", "Event")
