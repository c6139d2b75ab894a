"""The operator's async Kubernetes API client, for everything kopf does not watch for it.

Controllers read and write Secrets, ConfigMaps, Events, and the status and finalizers of
our custom resources through :class:`KubeClient`, and follow changes of Secrets with
:meth:`KubeClient.watch_metadata`, which never receives Secret data. Every failure is a
:class:`KubeError`::

    KubeError                 retryable
    ├── NotFound              no    404
    ├── AlreadyExists         no    409 on create
    ├── Conflict              no    409 (stale resourceVersion), failed JSON patch ``test``
    ├── Forbidden             no    403, message names verb and resource
    │   └── Unauthorized      no    401 after one credential refresh
    ├── Invalid               no    422 and 400, with the API server's message
    ├── Gone                  no    410, resourceVersion or continue token too old
    └── Unavailable           yes   connect errors, timeouts, 5xx, 429

Usage::

    kube = await KubeClient.connect()
    try:
        read = await kube.read_secret_key("shop", "okta-client", "clientSecret")
        async with contextlib.aclosing(kube.watch_metadata(SECRETS, "shop")) as events:
            async for event in events:
                ...
    finally:
        await kube.aclose()
"""

from ._client import DEFAULT_FIELD_MANAGER, KubeClient, SecretRead
from ._config import ClusterConnection, Credentials, load_connection
from ._errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    Unauthorized,
    Unavailable,
)
from ._resources import CONFIGMAPS, EVENTS, SECRETS, ResourceKind
from ._watch import Backoff, MetadataEvent

__all__ = [
    "CONFIGMAPS",
    "DEFAULT_FIELD_MANAGER",
    "EVENTS",
    "SECRETS",
    "AlreadyExists",
    "Backoff",
    "ClusterConnection",
    "Conflict",
    "Credentials",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeClient",
    "KubeError",
    "MetadataEvent",
    "NotFound",
    "ResourceKind",
    "SecretRead",
    "Unauthorized",
    "Unavailable",
    "load_connection",
]
