"""No secret reaches a log record, an exception message or a repr.

The fake sidecar here is hostile on purpose: it echoes the request, with its Authorization
header, into every error body it returns. The client must still keep every secret out of what
it logs and raises.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Awaitable, Callable

import httpx
import pytest
from pydantic import SecretStr

from experio_sso.sidecar import (
    GenericIdpInfoPatch,
    MicrosoftEntraIdpInfoPatch,
    PatchOidcClientRequest,
    SidecarClient,
    SidecarError,
)
from propelauth_emulator import EmulatorServer

from .helpers import (
    CLIENT_SECRET_VALUE,
    INTEGRATION_KEY_VALUE,
    MINTED_KEY_VALUE,
    SETUP_SECRET_VALUE,
    entra_create_request,
    error_response,
    json_response,
    mock_client,
)


def _echo(request: httpx.Request) -> str:
    """The whole request as text: body and Authorization header."""
    return json.dumps(
        {
            "body": request.content.decode(),
            "authorization": request.headers.get("authorization"),
        }
    )


def _hostile_responses(request: httpx.Request) -> list[httpx.Response]:
    echo = _echo(request)
    return [
        error_response(401, "IntegrationKeyNotFound", echo),
        error_response(403, "CommandNotAllowed", {"command": echo}),
        error_response(
            400,
            "InvalidFields",
            {"fields": [{"field": echo, "code": echo, "message": f"bad value {echo}"}]},
        ),
        error_response(404, "OidcClientNotFound", echo),
        error_response(409, "CustomerIdAlreadyTakenForEoidcClient", echo),
        error_response(409, "ClientIdAlreadyTaken", echo),
        error_response(500, "UnexpectedError", echo),
        error_response(400, "NewErrorType" + echo, echo),
        json_response(400, {"no": echo}),
        httpx.Response(502, text=f"<html>proxy saw {echo}</html>"),
        httpx.Response(200, text='{"clientId": "' + echo),
        json_response(200, {"clientId": {"nested": echo}, "apiKey": [echo], "timestamp": echo}),
    ]


class HostileSidecar:
    """Returns each hostile response in turn, then raises httpx errors that quote the request."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        responses = _hostile_responses(request)
        index = self.calls % (len(responses) + 2)
        self.calls += 1
        if index == len(responses):
            raise httpx.ConnectError(f"refused {_echo(request)}", request=request)
        if index == len(responses) + 1:
            raise httpx.RemoteProtocolError(f"broken {_echo(request)}", request=request)
        return responses[index]


def _texts_of(error: BaseException, *, with_chain: bool) -> list[str]:
    texts = [str(error), repr(error)]
    if with_chain:
        texts.append("".join(traceback.format_exception(error)))
    return texts


SECRET_SETS = [
    pytest.param((INTEGRATION_KEY_VALUE, CLIENT_SECRET_VALUE, SETUP_SECRET_VALUE), id="plain"),
    pytest.param(
        (
            'pakey_"QZKEYONE\\QZKEYTWO"',
            'idp-"QZCLIENTX"\\QZSECRETX-é-ü',
            'setup-QZSETUPXX-ÄÖÜ-"QZQUOTEDX"-\\-\n-QZENDXXX',
        ),
        id="JSON special characters",
    ),
]


def _markers(secret: str) -> list[str]:
    """The secret and its long alphanumeric runs, which survive any escaping of the rest."""
    return [secret, *re.findall(r"[A-Za-z0-9]{8,}", secret)]


@pytest.mark.parametrize("secrets", SECRET_SETS)
async def test_no_secret_in_logs_or_errors(
    caplog: pytest.LogCaptureFixture, secrets: tuple[str, str, str]
) -> None:
    caplog.set_level(logging.DEBUG)
    key_value, client_secret_value, setup_secret_value = secrets
    integration_key = SecretStr(key_value)
    hostile = HostileSidecar()
    texts: list[str] = []
    rounds = len(_hostile_responses(httpx.Request("POST", "http://x"))) + 2

    calls: list[Callable[[SidecarClient], Awaitable[object]]] = [
        lambda client: client.ping(integration_key),
        lambda client: client.create_oidc_client(
            integration_key, entra_create_request(client_secret=client_secret_value)
        ),
        lambda client: client.fetch_oidc_client(integration_key, "acme-com-1a2b3c4d"),
        lambda client: client.patch_oidc_client(
            integration_key,
            "acme-com-1a2b3c4d",
            PatchOidcClientRequest(
                idp_info_from_customer=GenericIdpInfoPatch(
                    client_secret=SecretStr(client_secret_value)
                )
            ),
        ),
        lambda client: client.delete_oidc_client(integration_key, "acme-com-1a2b3c4d"),
        lambda client: client.initial_setup(SecretStr(setup_secret_value)),
    ]

    failures = 0
    async with mock_client(hostile) as client:
        for call in calls:
            for _ in range(rounds):
                try:
                    result = await call(client)
                except SidecarError as error:
                    failures += 1
                    # The httpx errors planted above quote the request themselves, so only
                    # the client's own exceptions are checked for them, not the chain.
                    planted = isinstance(error.__cause__, httpx.HTTPError)
                    texts.extend(_texts_of(error, with_chain=not planted))
                else:
                    texts.append(repr(result))

        # A key that cannot be sent is rejected without echoing it.
        try:
            await client.ping(SecretStr(key_value + "\n"))
        except SidecarError as error:
            failures += 1
            texts.extend(_texts_of(error, with_chain=True))

    texts.extend(record.getMessage() for record in caplog.records)
    texts.extend(
        logging.Formatter().formatException(record.exc_info)
        for record in caplog.records
        if record.exc_info
    )
    request = entra_create_request(client_secret=client_secret_value)
    texts.extend([repr(request), str(request), request.model_dump_json()])

    assert failures > len(calls) * (rounds - 2)
    assert len(caplog.records) >= failures
    assert {record.levelno for record in caplog.records} >= {logging.DEBUG}
    assert hostile.calls > 0
    for secret in secrets:
        for marker in _markers(secret):
            leaks = [text for text in texts if marker in text]
            assert leaks == [], f"{marker[:12]}... leaked"


async def test_minted_key_stays_masked(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async with mock_client(lambda request: json_response(200, {"apiKey": MINTED_KEY_VALUE})) as c:
        key = await c.initial_setup(SecretStr(SETUP_SECRET_VALUE))

    assert key.get_secret_value() == MINTED_KEY_VALUE
    assert MINTED_KEY_VALUE not in repr(key)
    assert MINTED_KEY_VALUE not in str(key)
    assert any("Initial setup" in record.getMessage() for record in caplog.records)
    for record in caplog.records:
        assert MINTED_KEY_VALUE not in record.getMessage()
        assert SETUP_SECRET_VALUE not in record.getMessage()


async def test_no_secret_leaks_against_emulator(
    caplog: pytest.LogCaptureFixture, emulator: EmulatorServer, emulator_setup_secret: str
) -> None:
    caplog.set_level(logging.DEBUG)
    key_value = await emulator.mint_key()
    key = SecretStr(key_value)
    first_secret = "QZFIRSTCLIENTSECRET-4f1e2d3c"
    rotated_secret = "QZROTATEDCLIENTSECRET-9a8b7c6d"
    unknown_key = "emu_ik_QZUNKNOWNKEY-0a1b2c3d4e5f"
    wrong_prefix_key = "QZWRONGPREFIXKEY-5e6f7a8b9c0d"
    wrong_setup_secret = "QZWRONGSETUPSECRET-1c2d3e4f"
    texts: list[str] = []
    outcomes: list[str] = []

    async def attempt(call: Awaitable[object]) -> object:
        try:
            result = await call
        except SidecarError as error:
            outcomes.append(type(error).__name__)
            texts.extend(_texts_of(error, with_chain=True))
            return None
        outcomes.append("ok")
        texts.append(repr(result))
        return result

    customer_id = "acme-com-1a2b3c4d"
    async with SidecarClient(emulator.url) as client:
        await attempt(client.ping(key))
        await attempt(
            client.create_oidc_client(key, entra_create_request(customer_id, first_secret))
        )
        await attempt(
            client.create_oidc_client(key, entra_create_request(customer_id, first_secret))
        )
        invalid = entra_create_request("other-customer", first_secret).model_copy(
            update={"redirect_url": first_secret}
        )
        await attempt(client.create_oidc_client(key, invalid))
        await attempt(client.fetch_oidc_client(key, customer_id))
        rotate = PatchOidcClientRequest(
            idp_info_from_customer=MicrosoftEntraIdpInfoPatch(
                client_secret=SecretStr(rotated_secret)
            )
        )
        await attempt(client.patch_oidc_client(key, customer_id, rotate))
        await attempt(client.ping(SecretStr(unknown_key)))
        await attempt(client.ping(SecretStr(wrong_prefix_key)))
        await attempt(client.initial_setup(SecretStr(wrong_setup_secret)))
        minted = await attempt(client.initial_setup(SecretStr(emulator_setup_secret)))
        await attempt(client.initial_setup(SecretStr(emulator_setup_secret)))
        emulator.set_faults(outage=True)
        await attempt(client.ping(key))
        emulator.set_faults(error_rate=1.0)
        await attempt(client.ping(key))
        emulator.set_faults(drop_rate=1.0)
        await attempt(client.ping(key))
        emulator.clear_faults()
        await attempt(client.delete_oidc_client(key, customer_id))
        await attempt(client.fetch_oidc_client(key, customer_id))

    assert isinstance(minted, SecretStr)
    assert outcomes == [
        "ok",
        "ok",
        "CustomerIdAlreadyTakenError",
        "InvalidFieldsError",
        "ok",
        "ok",
        "UnauthorizedError",
        "UnauthorizedError",
        "SetupSecretRejectedError",
        "ok",
        "InitialSetupAlreadyDoneError",
        "UnexpectedResponseError",
        "UnexpectedResponseError",
        "UnexpectedResponseError",
        "ok",
        "OidcClientNotFoundError",
    ]
    assert len(caplog.records) >= len(outcomes)
    texts.extend(record.getMessage() for record in caplog.records)
    texts.extend(
        logging.Formatter().formatException(record.exc_info)
        for record in caplog.records
        if record.exc_info
    )
    secrets = [
        key_value,
        minted.get_secret_value(),
        emulator_setup_secret,
        first_secret,
        rotated_secret,
        unknown_key,
        wrong_prefix_key,
        wrong_setup_secret,
    ]
    for secret in secrets:
        for marker in _markers(secret):
            leaks = [text for text in texts if marker in text]
            assert leaks == [], f"{marker[:12]}... leaked"
