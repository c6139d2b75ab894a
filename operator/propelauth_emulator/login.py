"""The authorization URL that ``InitiateOidcLogin`` returns.

The URL is only a string in the response: the emulator never contacts an identity provider.
The endpoints are the providers' documented authorization endpoints:

- Microsoft Entra: ``https://login.microsoftonline.com/<tenantId>/oauth2/v2.0/authorize``
- Okta (org authorization server): ``https://<ssoDomain>/oauth2/v1/authorize``
- Generic: the client's ``authUrl``, keeping any query parameters it already has.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .models import GENERIC, MICROSOFT_ENTRA, OKTA, OidcClient

BASE_SCOPES: Final = ("openid", "email", "profile")


@dataclasses.dataclass(frozen=True, repr=False)
class LoginStart:
    """The URL to send the user to, and the opaque state for the caller's cookie."""

    send_user_to_idp_url: str
    state_for_cookie: str


def authorization_endpoint(client: OidcClient) -> str:
    """Return the IdP's authorization endpoint for the client's IdP type."""
    if client.idp_type == MICROSOFT_ENTRA:
        tenant_id = client.idp_fields["tenantId"]
        return f"https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/authorize"
    if client.idp_type == OKTA:
        return f"https://{client.idp_fields['ssoDomain']}/oauth2/v1/authorize"
    if client.idp_type == GENERIC:
        return client.idp_fields["authUrl"]
    raise ValueError(f"Unknown IdP type {client.idp_type!r}.")


def start_login(client: OidcClient, redirect_url: str) -> LoginStart:
    """Build the authorization request for ``client`` with a fresh state, nonce and PKCE pair.

    The scope is ``openid email profile`` followed by the client's additional scopes. With
    ``usesPkce`` the URL carries an S256 ``code_challenge``; the verifier is discarded because
    the emulator does not implement ``CompleteOidcLogin``.
    """
    scopes = list(BASE_SCOPES)
    scopes.extend(scope for scope in client.additional_scopes if scope not in scopes)

    parameters = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_url,
        "scope": " ".join(scopes),
        "state": secrets.token_urlsafe(24),
        "nonce": secrets.token_urlsafe(24),
    }
    if client.uses_pkce:
        verifier = secrets.token_urlsafe(48)
        challenge = hashlib.sha256(verifier.encode("ascii")).digest()
        parameters["code_challenge"] = base64.urlsafe_b64encode(challenge).rstrip(b"=").decode()
        parameters["code_challenge_method"] = "S256"

    endpoint = urlsplit(authorization_endpoint(client))
    query = parse_qsl(endpoint.query, keep_blank_values=True) + list(parameters.items())
    url = urlunsplit(endpoint._replace(query=urlencode(query)))
    return LoginStart(send_user_to_idp_url=url, state_for_cookie=secrets.token_urlsafe(32))
