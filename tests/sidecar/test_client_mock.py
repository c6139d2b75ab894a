"""The client against ``httpx.MockTransport``: request shapes, errors, malformed responses."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from experio_sso.sidecar import (
    ClientIdAlreadyTakenError,
    CommandNotAllowedError,
    CustomerIdAlreadyTakenError,
    FetchedOktaIdpInfo,
    InitialSetupAlreadyDoneError,
    InvalidField,
    InvalidFieldsError,
    InvalidSidecarUrlError,
    OidcClientNotFoundError,
    OktaIdpInfoPatch,
    PatchOidcClientRequest,
    SetupSecretRejectedError,
    SidecarClient,
    SidecarClients,
    SidecarClientSettings,
    SidecarError,
    SidecarTimeoutError,
    SidecarUnavailableError,
    UnauthorizedError,
    UnexpectedResponseError,
)

from .helpers import (
    CLIENT_SECRET_VALUE,
    INTEGRATION_KEY,
    INTEGRATION_KEY_VALUE,
    MINTED_KEY_VALUE,
    MOCK_URL,
    SETUP_SECRET_VALUE,
    entra_create_request,
    error_response,
    json_response,
    mock_client,
    request_body,
)

FETCHED_BODY = {
    "customerId": "acme-com-1a2b3c4d",
    "displayName": "Acme",
    "redirectUrl": "https://experio.example.com/api/auth/sso/callback",
    "additionalRedirectUrls": [],
    "emailDomainAllowlist": ["acme.com"],
    "additionalScopes": [],
    "idpInfoFromCustomer": {
        "idpType": "Okta",
        "clientId": "okta-client",
        "usesPkce": True,
        "ssoDomain": "acme.okta.com",
    },
}


class Recorder:
    """A MockTransport handler that records requests and returns a fixed response."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response


# Requests on the wire.


async def test_ping_sends_bearer_key() -> None:
    recorder = Recorder(json_response(200, {"timestamp": 1764876000}))
    async with mock_client(recorder) as client:
        timestamp = await client.ping(INTEGRATION_KEY)

    assert timestamp == 1764876000
    sent = recorder.requests[0]
    assert sent.method == "POST"
    assert sent.url == httpx.URL(f"{MOCK_URL}/run-command")
    assert sent.headers["authorization"] == f"Bearer {INTEGRATION_KEY_VALUE}"
    assert request_body(sent) == {"command": "Ping", "data": {}}


async def test_create_sends_full_request() -> None:
    recorder = Recorder(json_response(200, {"clientId": "oidc-client-1"}))
    async with mock_client(recorder) as client:
        client_id = await client.create_oidc_client(INTEGRATION_KEY, entra_create_request())

    assert client_id == "oidc-client-1"
    assert request_body(recorder.requests[0]) == {
        "command": "CreateOidcClient",
        "data": {
            "idpInfoFromCustomer": {
                "idpType": "MicrosoftEntra",
                "clientId": "entra-app-id",
                "clientSecret": CLIENT_SECRET_VALUE,
                "usesPkce": False,
                "tenantId": "tenant-1",
            },
            "customerId": "acme-com-1a2b3c4d",
            "redirectUrl": "https://experio.example.com/api/auth/sso/callback",
            "displayName": "Acme",
            "emailDomainAllowlist": ["acme.com"],
        },
    }


async def test_fetch_parses_client() -> None:
    recorder = Recorder(json_response(200, FETCHED_BODY))
    async with mock_client(recorder) as client:
        fetched = await client.fetch_oidc_client(INTEGRATION_KEY, "acme-com-1a2b3c4d")

    assert request_body(recorder.requests[0]) == {
        "command": "FetchOidcClient",
        "data": {"customerId": "acme-com-1a2b3c4d"},
    }
    assert fetched.customer_id == "acme-com-1a2b3c4d"
    assert fetched.idp_info_from_customer == FetchedOktaIdpInfo(
        client_id="okta-client", uses_pkce=True, sso_domain="acme.okta.com"
    )


async def test_patch_sends_customer_id_and_changes() -> None:
    recorder = Recorder(json_response(200, {"clientId": "oidc-client-1"}))
    request = PatchOidcClientRequest(
        idp_info_from_customer=OktaIdpInfoPatch(client_secret=SecretStr(CLIENT_SECRET_VALUE)),
        display_name="Acme Inc.",
    )
    async with mock_client(recorder) as client:
        client_id = await client.patch_oidc_client(INTEGRATION_KEY, "acme-com-1a2b3c4d", request)

    assert client_id == "oidc-client-1"
    assert request_body(recorder.requests[0]) == {
        "command": "PatchOidcClient",
        "data": {
            "customerId": "acme-com-1a2b3c4d",
            "displayName": "Acme Inc.",
            "idpInfoFromCustomer": {"idpType": "Okta", "clientSecret": CLIENT_SECRET_VALUE},
        },
    }


async def test_delete_sends_customer_id() -> None:
    recorder = Recorder(json_response(200, {}))
    async with mock_client(recorder) as client:
        await client.delete_oidc_client(INTEGRATION_KEY, "acme-com-1a2b3c4d")

    assert request_body(recorder.requests[0]) == {
        "command": "DeleteOidcClient",
        "data": {"customerId": "acme-com-1a2b3c4d"},
    }


async def test_initial_setup_returns_minted_key() -> None:
    recorder = Recorder(json_response(200, {"apiKey": MINTED_KEY_VALUE}))
    async with mock_client(recorder) as client:
        key = await client.initial_setup(SecretStr(SETUP_SECRET_VALUE))

    assert key.get_secret_value() == MINTED_KEY_VALUE
    sent = recorder.requests[0]
    assert sent.url == httpx.URL(f"{MOCK_URL}/api/initial_setup")
    assert "authorization" not in sent.headers
    assert request_body(sent) == {"setupSecret": SETUP_SECRET_VALUE}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(401, SetupSecretRejectedError, id="wrong secret is rejected"),
        pytest.param(409, InitialSetupAlreadyDoneError, id="second setup is already done"),
        pytest.param(500, UnexpectedResponseError, id="server error is unexpected"),
    ],
)
async def test_initial_setup_errors(status: int, expected: type[SidecarError]) -> None:
    recorder = Recorder(httpx.Response(status, text="whatever the body"))
    async with mock_client(recorder) as client:
        with pytest.raises(expected) as caught:
            await client.initial_setup(SecretStr(SETUP_SECRET_VALUE))

    assert caught.value.command == "InitialSetup"
    assert caught.value.retryable is (expected is UnexpectedResponseError)


async def test_base_url_path_is_kept() -> None:
    recorder = Recorder(json_response(200, {"timestamp": 1}))
    client = SidecarClient(
        "http://sidecar.invalid/prefix/", transport=httpx.MockTransport(recorder)
    )
    async with client:
        await client.ping(INTEGRATION_KEY)

    assert recorder.requests[0].url.path == "/prefix/run-command"


# Error bodies: every error type maps to its exception.

INVALID_FIELDS_DETAILS = {
    "fields": [
        {"field": "redirectUrl", "code": "InvalidUrl", "message": "must be an https URL"},
        {"field": "idpInfoFromCustomer.tenantId", "code": "Required", "message": "missing"},
    ]
}

ERROR_TABLE = [
    pytest.param(401, "InvalidPrefix", None, UnauthorizedError, False, id="invalid prefix"),
    pytest.param(
        401, "IntegrationKeyNotFound", None, UnauthorizedError, False, id="unknown key"
    ),
    pytest.param(
        401, "NoIntegrationKeyFoundInHeader", None, UnauthorizedError, False, id="missing key"
    ),
    pytest.param(
        403, "CommandNotAllowed", "CreateOidcClient", CommandNotAllowedError, False,
        id="command not allowed",
    ),
    pytest.param(
        400, "InvalidFields", INVALID_FIELDS_DETAILS, InvalidFieldsError, False,
        id="invalid fields",
    ),
    pytest.param(
        404, "OidcClientNotFound", None, OidcClientNotFoundError, False, id="client not found"
    ),
    pytest.param(
        409, "CustomerIdAlreadyTakenForEoidcClient", None, CustomerIdAlreadyTakenError, False,
        id="customer ID taken",
    ),
    pytest.param(
        409, "ClientIdAlreadyTaken", None, ClientIdAlreadyTakenError, False, id="client ID taken"
    ),
    pytest.param(
        500, "UnexpectedError", "database unavailable", UnexpectedResponseError, True,
        id="sidecar unexpected error",
    ),
    pytest.param(
        400, "BrandNewErrorType", {"x": 1}, UnexpectedResponseError, True,
        id="unknown error type",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("status", "error_type", "details", "expected", "retryable"), ERROR_TABLE)
async def test_error_type_maps_to_exception(
    status: int,
    error_type: str,
    details: Any,
    expected: type[SidecarError],
    retryable: bool,
) -> None:
    recorder = Recorder(error_response(status, error_type, details))
    async with mock_client(recorder) as client:
        with pytest.raises(expected) as caught:
            await client.create_oidc_client(INTEGRATION_KEY, entra_create_request())

    error = caught.value
    assert type(error) is expected
    assert error.retryable is retryable
    assert error.command == "CreateOidcClient"


async def test_unauthorized_keeps_error_type() -> None:
    recorder = Recorder(error_response(401, "IntegrationKeyNotFound"))
    async with mock_client(recorder) as client:
        with pytest.raises(UnauthorizedError) as caught:
            await client.ping(INTEGRATION_KEY)

    assert caught.value.error_type == "IntegrationKeyNotFound"


@pytest.mark.parametrize(
    ("details", "denied"),
    [
        pytest.param("DeleteOidcClient", "DeleteOidcClient", id="details as string"),
        pytest.param({"command": "DeleteOidcClient"}, "DeleteOidcClient", id="details as object"),
        pytest.param(None, "FetchOidcClient", id="no details names the sent command"),
    ],
)
async def test_command_not_allowed_names_command(details: Any, denied: str) -> None:
    recorder = Recorder(error_response(403, "CommandNotAllowed", details))
    async with mock_client(recorder) as client:
        with pytest.raises(CommandNotAllowedError) as caught:
            await client.fetch_oidc_client(INTEGRATION_KEY, "acme-com-1a2b3c4d")

    assert caught.value.denied_command == denied
    assert denied in str(caught.value)


async def test_invalid_fields_lists_fields() -> None:
    recorder = Recorder(error_response(400, "InvalidFields", INVALID_FIELDS_DETAILS))
    async with mock_client(recorder) as client:
        with pytest.raises(InvalidFieldsError) as caught:
            await client.create_oidc_client(INTEGRATION_KEY, entra_create_request())

    assert caught.value.fields == (
        InvalidField("redirectUrl", "InvalidUrl", "must be an https URL"),
        InvalidField("idpInfoFromCustomer.tenantId", "Required", "missing"),
    )
    assert "redirectUrl (InvalidUrl): must be an https URL" in str(caught.value)


async def test_not_found_names_customer_id() -> None:
    recorder = Recorder(error_response(404, "OidcClientNotFound"))
    async with mock_client(recorder) as client:
        with pytest.raises(OidcClientNotFoundError) as caught:
            await client.delete_oidc_client(INTEGRATION_KEY, "acme-com-1a2b3c4d")

    assert caught.value.customer_id == "acme-com-1a2b3c4d"
    assert "acme-com-1a2b3c4d" in str(caught.value)


# Malformed responses.

PROXY_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    "</h1></center><hr><center>nginx</center>" + "<!-- padding -->" * 100 + "</body></html>"
)

MALFORMED_ANSWERS = [
    pytest.param(httpx.Response(502, text=PROXY_PAGE), 502, id="proxy error page"),
    pytest.param(httpx.Response(200, text='{"clientId": "oidc-cl'), 200, id="truncated JSON"),
    pytest.param(httpx.Response(200, content=b""), 200, id="empty body"),
    pytest.param(httpx.Response(200, content=b"\xff\xfe{}"), 200, id="bytes not UTF-8"),
    pytest.param(json_response(200, ["clientId"]), 200, id="JSON list"),
    pytest.param(json_response(200, {"clientID": "x"}), 200, id="success without client ID"),
    pytest.param(json_response(200, {"clientId": 7}), 200, id="client ID not a string"),
    pytest.param(json_response(400, {"error": "bad"}), 400, id="error without type"),
    pytest.param(json_response(500, "Internal Server Error"), 500, id="error as JSON string"),
    pytest.param(
        error_response(400, "InvalidFields", {"fields": "redirectUrl"}), 400,
        id="invalid fields without list",
    ),
    pytest.param(
        error_response(400, "InvalidFields", {"fields": [{"field": "x"}]}), 400,
        id="invalid field without code",
    ),
    pytest.param(httpx.Response(302, headers={"location": "/login"}), 302, id="redirect"),
    pytest.param(httpx.Response(204), 204, id="no content"),
]  # fmt: skip


@pytest.mark.parametrize(("response", "status"), MALFORMED_ANSWERS)
async def test_malformed_response_is_unexpected(response: httpx.Response, status: int) -> None:
    async with mock_client(Recorder(response)) as client:
        with pytest.raises(UnexpectedResponseError) as caught:
            await client.create_oidc_client(INTEGRATION_KEY, entra_create_request())

    assert caught.value.status_code == status
    assert caught.value.retryable is True


async def test_fetch_with_unknown_idp_type_is_unexpected() -> None:
    body = {**FETCHED_BODY, "idpInfoFromCustomer": {"idpType": "Auth0", "clientId": "c"}}
    async with mock_client(Recorder(json_response(200, body))) as client:
        with pytest.raises(UnexpectedResponseError) as caught:
            await client.fetch_oidc_client(INTEGRATION_KEY, "acme-com-1a2b3c4d")

    assert "idpInfoFromCustomer" in str(caught.value)


async def test_foreign_body_is_cut_short() -> None:
    async with mock_client(Recorder(httpx.Response(502, text=PROXY_PAGE))) as client:
        with pytest.raises(UnexpectedResponseError) as caught:
            await client.ping(INTEGRATION_KEY)

    message = str(caught.value)
    assert "502 Bad Gateway" in message
    assert len(message) < 400
    assert len(PROXY_PAGE) > 1000


async def test_long_error_details_are_cut_short() -> None:
    details = "stack frame\n" * 1000
    async with mock_client(Recorder(error_response(500, "UnexpectedError", details))) as client:
        with pytest.raises(UnexpectedResponseError) as caught:
            await client.ping(INTEGRATION_KEY)

    assert len(str(caught.value)) < 400
    assert caught.value.error_type == "UnexpectedError"


# httpx errors of every kind are translated.


def _all_httpx_exception_types() -> list[type[Exception]]:
    found: set[type[Exception]] = set()
    for value in vars(httpx).values():
        if isinstance(value, type) and issubclass(value, Exception):
            found.add(value)
    pending = list(found)
    while pending:
        for subclass in pending.pop().__subclasses__():
            if subclass.__module__.startswith("httpx") and subclass not in found:
                found.add(subclass)
                pending.append(subclass)
    return sorted(found, key=lambda cls: cls.__name__)


def _instantiate(cls: type[Exception], request: httpx.Request) -> Exception:
    if issubclass(cls, httpx.HTTPStatusError):
        return cls("boom", request=request, response=httpx.Response(500, request=request))
    if issubclass(cls, httpx.RequestError):
        return cls("boom", request=request)
    try:
        return cls("boom")
    except TypeError:
        return cls()


EXPECTED_TRANSLATION: dict[str, type[SidecarError]] = {
    "ConnectTimeout": SidecarTimeoutError,
    "ReadTimeout": SidecarTimeoutError,
    "WriteTimeout": SidecarTimeoutError,
    "PoolTimeout": SidecarTimeoutError,
    "TimeoutException": SidecarTimeoutError,
    "ConnectError": SidecarUnavailableError,
    "ReadError": SidecarUnavailableError,
    "WriteError": SidecarUnavailableError,
    "CloseError": SidecarUnavailableError,
    "NetworkError": SidecarUnavailableError,
    "ProxyError": SidecarUnavailableError,
    "UnsupportedProtocol": InvalidSidecarUrlError,
    "InvalidURL": InvalidSidecarUrlError,
    "RemoteProtocolError": UnexpectedResponseError,
    "DecodingError": UnexpectedResponseError,
}

HTTPX_EXCEPTION_TYPES = _all_httpx_exception_types()


def test_httpx_exception_list_is_complete() -> None:
    names = {cls.__name__ for cls in HTTPX_EXCEPTION_TYPES}

    assert set(EXPECTED_TRANSLATION) <= names
    assert {"HTTPError", "StreamError", "CookieConflict", "LocalProtocolError"} <= names


@pytest.mark.parametrize("httpx_error", HTTPX_EXCEPTION_TYPES, ids=lambda cls: cls.__name__)
async def test_httpx_error_is_translated(httpx_error: type[Exception]) -> None:
    raised: list[Exception] = []

    def handler(request: httpx.Request) -> httpx.Response:
        error = _instantiate(httpx_error, request)
        raised.append(error)
        raise error

    async with mock_client(handler) as client:
        with pytest.raises(SidecarError) as caught:
            await client.ping(INTEGRATION_KEY)

    expected = EXPECTED_TRANSLATION.get(httpx_error.__name__, UnexpectedResponseError)
    assert type(caught.value) is expected
    assert caught.value.__cause__ is raised[0]
    assert caught.value.command == "Ping"


# The integration key is checked before it goes into a header.


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param(INTEGRATION_KEY_VALUE + "\n", id="trailing newline"),
        pytest.param("pakey with space", id="inner space"),
        pytest.param("pakey_é", id="non-ASCII"),
    ],
)
async def test_unsendable_key_is_rejected_locally(key: str) -> None:
    recorder = Recorder(json_response(200, {"timestamp": 1}))
    async with mock_client(recorder) as client:
        with pytest.raises(UnauthorizedError) as caught:
            await client.ping(SecretStr(key))

    assert recorder.requests == []
    assert caught.value.error_type is None
    if key:
        assert key.strip() not in str(caught.value)


# Concurrency limit.


async def test_calls_in_flight_are_limited() -> None:
    limit = 3
    gate = asyncio.Event()
    limit_reached = asyncio.Event()
    in_flight = 0
    max_in_flight = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, max_in_flight
        in_flight += 1
        max_in_flight = max(max_in_flight, in_flight)
        if in_flight == limit:
            limit_reached.set()
        await gate.wait()
        in_flight -= 1
        return json_response(200, {"timestamp": 1})

    settings = SidecarClientSettings(max_concurrent_requests=limit)
    async with mock_client(handler, settings) as client:
        calls = [asyncio.create_task(client.ping(INTEGRATION_KEY)) for _ in range(20)]
        await limit_reached.wait()
        # Give the queued calls many chances to run: none may pass the semaphore.
        for _ in range(100):
            await asyncio.sleep(0)
        assert in_flight == limit
        gate.set()
        results = await asyncio.gather(*calls)

    assert results == [1] * 20
    assert max_in_flight == limit


def test_concurrency_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_concurrent_requests"):
        SidecarClient(MOCK_URL, settings=SidecarClientSettings(max_concurrent_requests=0))


# Registry of clients.


async def test_registry_shares_client_per_url() -> None:
    clients = SidecarClients()
    first = clients.get("http://propelauth:2884")
    same = clients.get("http://propelauth:2884/")
    other = clients.get("http://propelauth.other:2884")

    assert first is same
    assert first is not other
    await clients.aclose()


async def test_registry_aclose_closes_clients() -> None:
    recorder = Recorder(json_response(200, {"timestamp": 1}))
    clients = SidecarClients(transport_factory=lambda url: httpx.MockTransport(recorder))
    client = clients.get(MOCK_URL)
    await client.ping(INTEGRATION_KEY)

    await clients.aclose()

    # Using a closed client is a programming error, not a sidecar failure.
    with pytest.raises(RuntimeError, match="closed"):
        await client.ping(INTEGRATION_KEY)
    assert clients.get(MOCK_URL) is not client
    await clients.aclose()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ftp://propelauth:2884", id="wrong scheme"),
        pytest.param("propelauth:2884", id="no scheme"),
        pytest.param("http://", id="no host"),
        pytest.param("http://[::1", id="unparsable"),
        pytest.param("http://admin:hunter2-password@propelauth:2884", id="user info"),
    ],
)
def test_registry_rejects_invalid_url(url: str) -> None:
    clients = SidecarClients()

    with pytest.raises(InvalidSidecarUrlError) as caught:
        clients.get(url)

    assert caught.value.retryable is False
    assert "hunter2-password" not in str(caught.value)
