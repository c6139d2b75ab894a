"""The stored OIDC client and its wire forms.

An :class:`OidcClient` is what the emulator keeps for one customer ID. Its client secret is not
part of it: the state keeps only a salted digest of the secret next to the record, so that no
object the emulator returns, logs or prints can carry the value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from typing import Any, Final

MICROSOFT_ENTRA: Final = "MicrosoftEntra"
OKTA: Final = "Okta"
GENERIC: Final = "Generic"

# The fields each IdP type needs besides clientId, clientSecret and usesPkce, in wire names.
IDP_TYPE_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    MICROSOFT_ENTRA: ("tenantId",),
    OKTA: ("ssoDomain",),
    GENERIC: ("authUrl", "tokenUrl", "userinfoUrl"),
}

SCIM_MATCHING_STRATEGIES: Final = frozenset(
    {
        "OidcSubToScimUsername",
        "OidcSubToScimExternalId",
        "OidcEmailToScimUsername",
        "OidcEmailUsernameToScimUsername",
        "OidcPreferredUsernameToScimUsername",
    }
)


@dataclasses.dataclass(frozen=True)
class OidcClient:
    """One OIDC client as the sidecar stores it, without its client secret.

    ``client_id`` is the client ID issued by the customer's identity provider; the protocol calls
    it ``oidcClientId`` when it identifies the client. ``idp_fields`` maps the IdP type's own wire
    fields (``tenantId``, ``ssoDomain`` or the three Generic URLs) to their values.
    """

    customer_id: str
    client_id: str
    idp_type: str
    idp_fields: dict[str, str]
    uses_pkce: bool
    redirect_url: str
    additional_redirect_urls: tuple[str, ...] = ()
    email_domain_allowlist: tuple[str, ...] = ()
    additional_scopes: tuple[str, ...] = ()
    display_name: str | None = None
    scim_matching_strategy: str | None = None

    def to_fetch_response(self) -> dict[str, Any]:
        """Build the ``FetchOidcClient`` response body: camelCase, no client secret."""
        idp_info: dict[str, Any] = {
            "idpType": self.idp_type,
            "clientId": self.client_id,
            "usesPkce": self.uses_pkce,
        }
        idp_info.update(self.idp_fields)

        response: dict[str, Any] = {
            "customerId": self.customer_id,
            "redirectUrl": self.redirect_url,
            "additionalRedirectUrls": list(self.additional_redirect_urls),
            "emailDomainAllowlist": list(self.email_domain_allowlist),
            "additionalScopes": list(self.additional_scopes),
            "idpInfoFromCustomer": idp_info,
        }
        if self.display_name is not None:
            response["displayName"] = self.display_name
        if self.scim_matching_strategy is not None:
            response["scimMatchingDefinition"] = {"strategy": self.scim_matching_strategy}
        return response

    def to_record(self) -> dict[str, Any]:
        """Serialise the client for the state file."""
        return {
            "customerId": self.customer_id,
            "clientId": self.client_id,
            "idpType": self.idp_type,
            "idpFields": dict(self.idp_fields),
            "usesPkce": self.uses_pkce,
            "redirectUrl": self.redirect_url,
            "additionalRedirectUrls": list(self.additional_redirect_urls),
            "emailDomainAllowlist": list(self.email_domain_allowlist),
            "additionalScopes": list(self.additional_scopes),
            "displayName": self.display_name,
            "scimMatchingStrategy": self.scim_matching_strategy,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> OidcClient:
        """Rebuild a client from :meth:`to_record` output."""
        return cls(
            customer_id=record["customerId"],
            client_id=record["clientId"],
            idp_type=record["idpType"],
            idp_fields=dict(record["idpFields"]),
            uses_pkce=bool(record["usesPkce"]),
            redirect_url=record["redirectUrl"],
            additional_redirect_urls=tuple(record["additionalRedirectUrls"]),
            email_domain_allowlist=tuple(record["emailDomainAllowlist"]),
            additional_scopes=tuple(record["additionalScopes"]),
            display_name=record["displayName"],
            scim_matching_strategy=record["scimMatchingStrategy"],
        )

    def registered_redirect_urls(self) -> tuple[str, ...]:
        """Return the redirect URL followed by the additional ones."""
        return (self.redirect_url, *self.additional_redirect_urls)


@dataclasses.dataclass(frozen=True, repr=False)
class SecretDigest:
    """A salted SHA-256 digest of a client secret, enough to check a candidate against it.

    The emulator never exchanges authorization codes, so it never needs the secret itself.
    """

    salt: bytes
    digest: bytes

    @classmethod
    def of(cls, secret: str) -> SecretDigest:
        """Digest ``secret`` with a fresh random salt."""
        salt = secrets.token_bytes(_SALT_BYTES)
        return cls(salt=salt, digest=_salted_sha256(salt, secret))

    def matches(self, secret: str) -> bool:
        """Tell whether ``secret`` is the digested secret, in constant time."""
        return hmac.compare_digest(self.digest, _salted_sha256(self.salt, secret))

    def __repr__(self) -> str:
        return "SecretDigest(...)"


_SALT_BYTES: Final = 16


def _salted_sha256(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode("utf-8")).digest()
