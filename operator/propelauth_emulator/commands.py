"""The ``/run-command`` commands: each takes the request's ``data`` and returns the response body.

The server authenticates the caller and then calls :meth:`CommandRunner.run`. A handler raises
:class:`~propelauth_emulator.protocol.CommandError` for every failure, and only with the error
types that the SDK's parser for that command accepts (see :mod:`propelauth_emulator.protocol`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any
from urllib.parse import urlsplit

from . import protocol
from .login import start_login
from .models import OidcClient
from .state import EmulatorState
from .validation import is_valid_url, parse_create, parse_patch, read_client_identifier

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def _invalid_fields_for_identifier(message: str) -> protocol.CommandError:
    """Build the error for a bad client identifier in a patch.

    The SDK's patch parser accepts ``InvalidFields`` but no request error of its own.
    """
    return protocol.CommandError(
        protocol.INVALID_FIELDS,
        {"fields": [{"field": "oidcClientId", "code": "required", "message": message}]},
    )


class CommandRunner:
    """Runs the implemented commands against the emulator's state."""

    def __init__(
        self, state: EmulatorState, post_login_redirect_origins: Collection[str] | None = None
    ) -> None:
        """``post_login_redirect_origins``: allowed origins of ``postLoginRedirectUrl``
        (``scheme://host[:port]``); None allows any http(s) URL."""
        self._state = state
        self._post_login_redirect_origins = (
            None
            if post_login_redirect_origins is None
            else frozenset(origin.rstrip("/") for origin in post_login_redirect_origins)
        )
        self._handlers: dict[str, Handler] = {
            protocol.PING: self.ping,
            protocol.CREATE_OIDC_CLIENT: self.create_oidc_client,
            protocol.FETCH_OIDC_CLIENT: self.fetch_oidc_client,
            protocol.PATCH_OIDC_CLIENT: self.patch_oidc_client,
            protocol.DELETE_OIDC_CLIENT: self.delete_oidc_client,
            protocol.INITIATE_OIDC_LOGIN: self.initiate_oidc_login,
        }

    async def run(self, command: str, data: dict[str, Any]) -> dict[str, Any]:
        """Run ``command`` with ``data`` and return its response body."""
        return await self._handlers[command](data)

    async def ping(self, data: dict[str, Any]) -> dict[str, Any]:
        """Return the current time in Unix seconds."""
        return {"timestamp": int(time.time())}

    async def create_oidc_client(self, data: dict[str, Any]) -> dict[str, Any]:
        """Validate and store a new client; return its client ID."""
        client, secret = parse_create(data)
        await self._state.create_client(client, secret)
        return {"clientId": client.client_id}

    async def fetch_oidc_client(self, data: dict[str, Any]) -> dict[str, Any]:
        """Return the client without its secret; ``OidcClientNotFound`` when there is none."""
        client = self._find(data, protocol.invalid_request, protocol.OIDC_CLIENT_NOT_FOUND)
        return client.to_fetch_response()

    async def patch_oidc_client(self, data: dict[str, Any]) -> dict[str, Any]:
        """Apply the present fields to the client; return its client ID."""
        current = self._find(data, _invalid_fields_for_identifier, protocol.OIDC_CLIENT_NOT_FOUND)
        patched, secret = parse_patch(data, current)
        await self._state.replace_client(patched, secret)
        return {"clientId": patched.client_id}

    async def delete_oidc_client(self, data: dict[str, Any]) -> dict[str, Any]:
        """Delete the client; ``OidcClientNotFound`` when there is none."""
        client = self._find(data, protocol.invalid_request, protocol.OIDC_CLIENT_NOT_FOUND)
        await self._state.delete_client(client.customer_id)
        return {}

    async def initiate_oidc_login(self, data: dict[str, Any]) -> dict[str, Any]:
        """Return the IdP authorization URL and the state for the caller's cookie.

        ``redirectUrl`` picks one of the client's registered redirect URLs (the main one when
        absent). ``postLoginRedirectUrl`` is checked but not kept, because the emulator does not
        implement ``CompleteOidcLogin``.
        """
        client = self._find(data, protocol.invalid_request, protocol.CLIENT_NOT_FOUND)

        redirect_url = data.get("redirectUrl")
        if redirect_url is None:
            redirect_url = client.redirect_url
        elif redirect_url not in client.registered_redirect_urls():
            raise protocol.CommandError(
                protocol.OIDC_REDIRECT_URL_NOT_REGISTERED,
                {"message": "redirectUrl is not one of the client's registered redirect URLs."},
            )

        post_login_redirect_url = data.get("postLoginRedirectUrl")
        if post_login_redirect_url is not None:
            self._check_post_login_redirect_url(post_login_redirect_url)

        login = start_login(client, redirect_url)
        return {
            "sendUserToIdpUrl": login.send_user_to_idp_url,
            "stateForCookie": login.state_for_cookie,
        }

    def _check_post_login_redirect_url(self, url: object) -> None:
        if not isinstance(url, str) or not is_valid_url(url):
            raise protocol.CommandError(
                protocol.REDIRECT_URL_INVALID,
                {"message": "postLoginRedirectUrl must be an absolute http or https URL."},
            )
        if self._post_login_redirect_origins is None:
            return
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._post_login_redirect_origins:
            raise protocol.CommandError(
                protocol.REDIRECT_URL_INVALID,
                {"message": f"The origin {origin} of postLoginRedirectUrl is not allowed."},
            )

    def _find(
        self,
        data: dict[str, Any],
        on_bad_identifier: Callable[[str], protocol.CommandError],
        not_found_type: str,
    ) -> OidcClient:
        identifier, value = read_client_identifier(data, on_bad_identifier)
        client = self._state.find_client(identifier, value)
        if client is None:
            raise protocol.CommandError(not_found_type)
        return client
