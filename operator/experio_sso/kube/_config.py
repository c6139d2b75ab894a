"""Where the API server is and how to authenticate to it, loaded by the ``kubernetes`` library.

The ``kubernetes`` package's loaders understand every kubeconfig the field uses (client
certificates, tokens and token files, exec plugins, auth providers) and the in-cluster service
account. They read files and may run an exec plugin, so they run in a worker thread, never on
the event loop. Their result is a ``kubernetes.client.Configuration``, whose
``refresh_api_key_hook`` re-reads a rotated in-cluster token (at most once a minute, in
``kubernetes`` 37) or re-runs an exec plugin whose credential expired. :class:`Credentials` calls
that hook in a thread, at most once per ``refresh_interval`` and again after a 401.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client as kubernetes_client
from kubernetes import config as kubernetes_config

from ._errors import KubeError

__all__ = ["ClusterConnection", "Credentials", "load_connection"]

logger = logging.getLogger("experio_sso.kube")

IN_CLUSTER_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"
DEFAULT_KUBECONFIG = "~/.kube/config"


class Credentials:
    """The ``Authorization`` header value of a ``Configuration``, kept fresh through its hook.

    The value is never logged and never part of a repr.
    """

    def __init__(self, configuration: Any, *, refresh_interval: float = 60.0) -> None:
        self._configuration = configuration
        self._refresh_interval = refresh_interval
        self._lock = asyncio.Lock()
        self._header: str | None = None
        self._refreshed_at = float("-inf")

    def __repr__(self) -> str:
        return f"<Credentials token={'set' if self._header else 'none'}>"

    def _read_header(self) -> str | None:
        # Runs in a worker thread: the hook may read a token file or run an exec plugin.
        value = self._configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
        return str(value) if value else None

    def refresh_blocking(self) -> None:
        """Run the refresh hook in the calling thread; used once while loading, off the loop."""
        self._header = self._read_header()
        self._refreshed_at = time.monotonic()

    async def authorization(self) -> str | None:
        """Return the ``Authorization`` header value, or ``None`` for certificate-only users."""
        if time.monotonic() - self._refreshed_at >= self._refresh_interval:
            await self.refresh()
        return self._header

    async def refresh(self) -> bool:
        """Run the refresh hook now; return whether the header value changed."""
        async with self._lock:
            previous = self._header
            try:
                self._header = await asyncio.to_thread(self._read_header)
            except Exception as exc:
                # An exec plugin failed or a token file vanished. The old value is kept because
                # a 401 shows whether it still works.
                logger.warning(
                    "Refreshing the Kubernetes credentials failed (%s); using the previous ones",
                    type(exc).__name__,
                )
            self._refreshed_at = time.monotonic()
            return self._header != previous


@dataclass(frozen=True)
class ClusterConnection:
    """The API server's URL, the TLS settings for it, and the credentials to present."""

    server: str
    ssl_context: ssl.SSLContext
    credentials: Credentials
    source: str
    """The origin of the configuration (``in-cluster`` or a kubeconfig path), for logs."""
    tls_server_name: str | None = None
    proxy: str | None = None


def _in_pod() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.isfile(IN_CLUSTER_TOKEN_PATH)


def _ssl_context(configuration: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if configuration.verify_ssl is False:
        # NB: only when the kubeconfig sets insecure-skip-tls-verify: true.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    return context


def _load_connection_blocking(kubeconfig: str | None) -> ClusterConnection:
    configuration = kubernetes_client.Configuration()
    if kubeconfig is None and _in_pod():
        kubernetes_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        source = "in-cluster"
    else:
        path = kubeconfig or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
        kubernetes_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, client_configuration=configuration, persist_config=False
        )
        source = path
    credentials = Credentials(configuration)
    credentials.refresh_blocking()
    return ClusterConnection(
        server=str(configuration.host).rstrip("/"),
        ssl_context=_ssl_context(configuration),
        credentials=credentials,
        source=source,
        tls_server_name=getattr(configuration, "tls_server_name", None) or None,
        proxy=configuration.proxy or None,
    )


async def load_connection(kubeconfig: str | None = None) -> ClusterConnection:
    """Load the connection settings, in a worker thread.

    ``kubeconfig`` wins when given. Otherwise the in-cluster service account is used when
    running in a Pod, else ``$KUBECONFIG`` (a colon-separated list) or ``~/.kube/config``.
    Raises :class:`KubeError` when no usable configuration is found.
    """
    try:
        return await asyncio.to_thread(_load_connection_blocking, kubeconfig)
    except (kubernetes_config.ConfigException, OSError, ssl.SSLError, ValueError) as exc:
        raise KubeError(
            f"Loading the Kubernetes configuration failed ({type(exc).__name__}: {exc}); "
            "pass a kubeconfig path, set KUBECONFIG, or run in a Pod with a service account"
        ) from exc
