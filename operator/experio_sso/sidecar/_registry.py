"""Registry of one ``SidecarClient`` per sidecar URL, shared by every handler of the operator.

Each ``ExperioAuthSettings`` names its sidecar URL, and most namespaces use the same one, so
clients are kept per URL: the handlers of all resources share one connection pool and one
concurrency limit per sidecar. The operator creates one registry at start-up and closes it at
shutdown.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from ._client import SidecarClient, SidecarClientSettings, normalize_sidecar_url


class SidecarClients:
    """Registry of one ``SidecarClient`` per sidecar URL.

    ``transport_factory`` builds the httpx transport for a URL; tests pass one that returns
    ``httpx.MockTransport``. Closing the registry closes every client it created.
    """

    def __init__(
        self,
        settings: SidecarClientSettings | None = None,
        *,
        transport_factory: Callable[[str], httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.settings = settings or SidecarClientSettings()
        self._transport_factory = transport_factory
        self._clients: dict[str, SidecarClient] = {}

    def get(self, url: str) -> SidecarClient:
        """Return the client of ``url``, creating it on first use.

        URLs that differ only in a trailing slash share a client. Raises
        ``InvalidSidecarUrlError`` for a URL that cannot be used.
        """
        key = normalize_sidecar_url(url)
        client = self._clients.get(key)
        if client is None:
            transport = self._transport_factory(key) if self._transport_factory else None
            client = SidecarClient(key, settings=self.settings, transport=transport)
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        """Close every client; a later ``get`` creates fresh ones."""
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.aclose()
