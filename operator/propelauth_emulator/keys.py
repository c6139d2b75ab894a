"""Integration keys: their format, how they are stored, and how a request presents one.

An emulator key is ``emu_ik_`` followed by 43 URL-safe base64 characters (32 random bytes),
for example ``emu_ik_Q2h...``. The real sidecar's key format is not published. A fixed prefix
lets the emulator return ``InvalidPrefix`` for a token that cannot be one of its keys, as the
sidecar does. Only the SHA-256 digest of a key is stored, so neither the state file nor the
process memory after minting contains a usable key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from typing import Final

from . import protocol

KEY_PREFIX: Final = "emu_ik_"
_KEY_RANDOM_BYTES: Final = 32


@dataclasses.dataclass(frozen=True)
class KeyGrant:
    """The permission of one stored key: all commands when ``commands`` is None, else those."""

    commands: frozenset[str] | None
    origin: str

    def allows(self, command: str) -> bool:
        """Tell whether the key may run ``command``."""
        return self.commands is None or command in self.commands


def generate_key() -> str:
    """Return a new random integration key with :data:`KEY_PREFIX`."""
    return KEY_PREFIX + secrets.token_urlsafe(_KEY_RANDOM_BYTES)


def digest_key(key: str) -> str:
    """Return the hex SHA-256 digest under which a key is stored.

    A plain hash is enough because a key carries 256 random bits, so it cannot be guessed from
    its digest.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_from_header(authorization: str | None) -> str:
    """Return the integration key from an ``Authorization`` header value.

    Raises ``NoIntegrationKeyFoundInHeader`` when the header is absent, uses another scheme or
    carries no token, and ``InvalidPrefix`` when the token lacks :data:`KEY_PREFIX`. Neither
    error repeats the token.
    """
    if authorization is None:
        raise protocol.CommandError(protocol.NO_INTEGRATION_KEY_FOUND_IN_HEADER)
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise protocol.CommandError(protocol.NO_INTEGRATION_KEY_FOUND_IN_HEADER)
    if not token.startswith(KEY_PREFIX):
        raise protocol.CommandError(
            protocol.INVALID_PREFIX,
            f"Integration keys start with {KEY_PREFIX!r}; the bearer token does not.",
        )
    return token
