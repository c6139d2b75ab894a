"""The emulator's state: OIDC clients, integration keys and initial setup.

Reads come from memory; every change is first committed to the SQLite file through
:class:`~propelauth_emulator.store.StateStore` and only then applied in memory, so the memory
copy never shows a change that a crash would lose. Changes run one at a time under an
``asyncio.Lock``, which makes check-then-write sequences (such as "customer ID not taken, so
insert") atomic while the event loop keeps serving other requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from . import protocol
from .keys import KeyGrant, digest_key, generate_key
from .models import OidcClient, SecretDigest
from .store import StateStore

MINTED: str = "minted"
INITIAL_SETUP: str = "initial_setup"


class EmulatorState:
    """The stored clients and keys, with the rules that keep them consistent."""

    def __init__(self, path: Path) -> None:
        self._store = StateStore(path)
        self._lock = asyncio.Lock()
        self._clients: dict[str, tuple[OidcClient, SecretDigest]] = {}
        self._customer_ids_by_client_id: dict[str, str] = {}
        self._keys: dict[str, KeyGrant] = {}
        self.initial_setup_done = False

    async def open(self) -> None:
        """Load the state file, creating it when it does not exist."""
        snapshot = await self._store.open()
        self._clients = snapshot.clients
        self._customer_ids_by_client_id = {
            client.client_id: customer_id for customer_id, (client, _) in self._clients.items()
        }
        self._keys = snapshot.keys
        self.initial_setup_done = snapshot.initial_setup_done

    async def close(self) -> None:
        """Close the state file once the changes in progress are committed."""
        async with self._lock:
            await self._store.close()

    # Reads.

    def find_client(self, identifier: str, value: str) -> OidcClient | None:
        """Return the client named by ``oidcClientId`` or ``customerId``, or None."""
        customer_id = (
            value if identifier == "customerId" else self._customer_ids_by_client_id.get(value)
        )
        if customer_id is None or customer_id not in self._clients:
            return None
        return self._clients[customer_id][0]

    def clients(self) -> list[OidcClient]:
        """Return every stored client, ordered by customer ID."""
        return [self._clients[customer_id][0] for customer_id in sorted(self._clients)]

    def secret_matches(self, customer_id: str, secret: str) -> bool:
        """Tell whether ``secret`` is the client secret stored for ``customer_id``."""
        entry = self._clients.get(customer_id)
        return entry is not None and entry[1].matches(secret)

    def find_key(self, key: str) -> KeyGrant | None:
        """Return what ``key`` may do, or None when it is not a stored key."""
        return self._keys.get(digest_key(key))

    # Changes.

    async def create_client(self, client: OidcClient, secret: str) -> None:
        """Store a new client.

        Raises ``CustomerIdAlreadyTakenForEoidcClient`` before ``ClientIdAlreadyTaken``, so that
        a repeated create of the same client reports the customer ID, which a caller can adopt.
        """
        async with self._lock:
            if client.customer_id in self._clients:
                raise protocol.CommandError(protocol.CUSTOMER_ID_ALREADY_TAKEN)
            if client.client_id in self._customer_ids_by_client_id:
                raise protocol.CommandError(protocol.CLIENT_ID_ALREADY_TAKEN)

            digest = SecretDigest.of(secret)
            await self._store.save_client(client, digest)
            self._clients[client.customer_id] = (client, digest)
            self._customer_ids_by_client_id[client.client_id] = client.customer_id

    async def replace_client(self, client: OidcClient, secret: str | None) -> None:
        """Store a patched client under its customer ID, with a new secret unless None.

        Raises ``OidcClientNotFound`` when the client was deleted since it was read.
        """
        async with self._lock:
            current = self._clients.get(client.customer_id)
            if current is None:
                raise protocol.CommandError(protocol.OIDC_CLIENT_NOT_FOUND)
            digest = current[1] if secret is None else SecretDigest.of(secret)
            await self._store.save_client(client, digest)
            self._clients[client.customer_id] = (client, digest)

    async def delete_client(self, customer_id: str) -> None:
        """Delete the client of ``customer_id``; raises ``OidcClientNotFound`` if there is none."""
        async with self._lock:
            entry = self._clients.get(customer_id)
            if entry is None:
                raise protocol.CommandError(protocol.OIDC_CLIENT_NOT_FOUND)
            await self._store.delete_client(customer_id)
            del self._clients[customer_id]
            self._customer_ids_by_client_id.pop(entry[0].client_id, None)

    async def mint_key(self, commands: Iterable[str] | None, *, origin: str = MINTED) -> str:
        """Create and store a key for ``commands`` (None for all) and return it."""
        grant = KeyGrant(commands=None if commands is None else frozenset(commands), origin=origin)
        key = generate_key()
        async with self._lock:
            await self._store.add_key(digest_key(key), grant)
            self._keys[digest_key(key)] = grant
        return key

    async def revoke_key(self, key: str) -> None:
        """Delete ``key``, so that it gets ``IntegrationKeyNotFound``; unknown keys are ignored."""
        digest = digest_key(key)
        async with self._lock:
            await self._store.remove_key(digest)
            self._keys.pop(digest, None)

    async def complete_initial_setup(self) -> str | None:
        """Mint the full-access initial setup key, or return None when setup was already done."""
        grant = KeyGrant(commands=None, origin=INITIAL_SETUP)
        key = generate_key()
        async with self._lock:
            if self.initial_setup_done:
                return None
            await self._store.add_key(digest_key(key), grant, initial_setup=True)
            self._keys[digest_key(key)] = grant
            self.initial_setup_done = True
        return key
