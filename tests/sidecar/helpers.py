"""Distinctive secrets, sample requests and a factory of clients backed by ``MockTransport``."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from pydantic import SecretStr

from experio_sso.sidecar import (
    CreateOidcClientRequest,
    MicrosoftEntraIdpInfo,
    SidecarClient,
    SidecarClientSettings,
)

# Each value is long and unlike anything else in a message, so finding it is proof of a leak.
INTEGRATION_KEY_VALUE = "pakey_INTEGRATION-KEY-7f3a9c21e0d84b56"
CLIENT_SECRET_VALUE = "idp-CLIENT-SECRET-b81e44f09a2c7d13"
SETUP_SECRET_VALUE = "setup-SECRET-VALUE-5d2c10e7b49a6f38"
MINTED_KEY_VALUE = "pakey_MINTED-KEY-0c9d8e7f6a5b4c3d"

INTEGRATION_KEY = SecretStr(INTEGRATION_KEY_VALUE)

# A URL that MockTransport serves; nothing is sent over the network.
MOCK_URL = "http://sidecar.invalid:2884"

Handler = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
)


def entra_create_request(
    customer_id: str = "acme-com-1a2b3c4d", client_secret: str = CLIENT_SECRET_VALUE
) -> CreateOidcClientRequest:
    return CreateOidcClientRequest(
        idp_info_from_customer=MicrosoftEntraIdpInfo(
            client_id="entra-app-id",
            client_secret=SecretStr(client_secret),
            tenant_id="tenant-1",
        ),
        customer_id=customer_id,
        redirect_url="https://experio.example.com/api/auth/sso/callback",
        display_name="Acme",
        email_domain_allowlist=["acme.com"],
    )


def mock_client(handler: Handler, settings: SidecarClientSettings | None = None) -> SidecarClient:
    return SidecarClient(MOCK_URL, settings=settings, transport=httpx.MockTransport(handler))


def json_response(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode())


def error_response(status: int, error_type: str, details: Any = None) -> httpx.Response:
    return json_response(status, {"type": error_type, "details": details})


def request_body(request: httpx.Request) -> Any:
    return json.loads(request.content)
