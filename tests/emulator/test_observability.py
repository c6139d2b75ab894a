"""Counters, the request log, secret checks, the admin endpoint, and secrets kept out of logs."""

from __future__ import annotations

import asyncio
import logging

import pytest

from propelauth_emulator import EmulatorServer

from .helpers import admin_request, create_data, post_json, run_command


async def test_counters_count_outcomes(emulator: EmulatorServer, emulator_key: str) -> None:
    await run_command(emulator.url, emulator_key, "Ping", {})
    await run_command(emulator.url, emulator_key, "Ping", {})
    await run_command(emulator.url, emulator_key, "CreateOidcClient", create_data())
    await run_command(emulator.url, emulator_key, "CreateOidcClient", create_data())
    await run_command(emulator.url, emulator_key, "FetchOidcClient", {"customerId": "nobody"})

    assert emulator.counters == {
        "Ping": {"ok": 2},
        "CreateOidcClient": {"ok": 1, "CustomerIdAlreadyTakenForEoidcClient": 1},
        "FetchOidcClient": {"OidcClientNotFound": 1},
    }


async def test_reset_counters_clears_everything(
    emulator: EmulatorServer, emulator_key: str, emulator_setup_secret: str
) -> None:
    await run_command(emulator.url, emulator_key, "Ping", {})
    await post_json(f"{emulator.url}/api/initial_setup", {"setupSecret": emulator_setup_secret})

    emulator.reset_counters()

    assert emulator.counters == {}
    assert emulator.request_log == ()
    assert emulator.initial_setup_calls == 0


async def test_request_log_records_each_request(
    emulator: EmulatorServer, emulator_key: str
) -> None:
    await run_command(emulator.url, emulator_key, "CreateOidcClient", create_data())
    await run_command(emulator.url, emulator_key, "CreateOidcClient", create_data())

    first, second = emulator.request_log

    assert first.endpoint == "/run-command"
    assert first.command == "CreateOidcClient"
    assert first.outcome == "ok"
    assert first.status == 200
    assert first.latency_ms > 0
    assert first.fault is None
    assert second.outcome == "CustomerIdAlreadyTakenForEoidcClient"
    assert second.status == 409
    assert second.started_at >= first.started_at


async def test_secret_matches_only_stored_secret(
    emulator: EmulatorServer, emulator_key: str
) -> None:
    await run_command(emulator.url, emulator_key, "CreateOidcClient", create_data(secret="s3cret"))

    assert emulator.secret_matches("acme-com-1a2b3c4d", "s3cret")
    assert not emulator.secret_matches("acme-com-1a2b3c4d", "s3cret ")
    assert not emulator.secret_matches("acme-com-1a2b3c4d", "")
    assert not emulator.secret_matches("unknown-customer", "s3cret")


async def test_concurrent_creates_store_one_client(
    emulator: EmulatorServer, emulator_key: str
) -> None:
    results = await asyncio.gather(
        *(
            run_command(
                emulator.url, emulator_key, "CreateOidcClient", create_data(client_id=f"c{index}")
            )
            for index in range(20)
        )
    )

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 19
    assert len(emulator.clients()) == 1


async def test_admin_endpoint_rejects_integration_key(
    emulator: EmulatorServer, emulator_key: str
) -> None:
    status, body = await admin_request(emulator.url, emulator_key, "GET", "counters")

    assert status == 403
    assert "Integration keys" in body["error"]


async def test_admin_endpoint_rejects_wrong_token(emulator: EmulatorServer) -> None:
    status, _ = await admin_request(emulator.url, "not-the-admin-token", "GET", "counters")

    assert status == 401


async def test_admin_endpoint_reports_state(emulator: EmulatorServer) -> None:
    token = emulator.admin_token
    assert token is not None

    _, minted = await admin_request(emulator.url, token, "POST", "keys", {"commands": None})
    key = minted["apiKey"]
    await run_command(emulator.url, key, "CreateOidcClient", create_data(secret="s3cret"))
    _, counters = await admin_request(emulator.url, token, "GET", "counters")
    _, requests = await admin_request(emulator.url, token, "GET", "requests")
    _, clients = await admin_request(emulator.url, token, "GET", "clients")
    _, matches = await admin_request(
        emulator.url,
        token,
        "POST",
        "secret-matches",
        {"customerId": "acme-com-1a2b3c4d", "secret": "s3cret"},
    )
    _, mismatch = await admin_request(
        emulator.url,
        token,
        "POST",
        "secret-matches",
        {"customerId": "acme-com-1a2b3c4d", "secret": "other"},
    )
    revoke_status, _ = await admin_request(
        emulator.url, token, "POST", "keys/revoke", {"apiKey": key}
    )
    revoked_status, _ = await run_command(emulator.url, key, "Ping", {})
    reset_status, _ = await admin_request(emulator.url, token, "POST", "reset-counters")

    assert counters == {"counters": {"CreateOidcClient": {"ok": 1}}, "initialSetupCalls": 0}
    assert requests["requests"][0]["command"] == "CreateOidcClient"
    assert requests["requests"][0]["status"] == 200
    assert clients["clients"] == emulator.clients()
    assert matches == {"matches": True}
    assert mismatch == {"matches": False}
    assert revoke_status == 200
    assert revoked_status == 401
    assert reset_status == 200
    assert emulator.counters == {}


async def test_admin_endpoint_mints_limited_key(emulator: EmulatorServer) -> None:
    token = emulator.admin_token
    assert token is not None

    _, minted = await admin_request(emulator.url, token, "POST", "keys", {"commands": ["Ping"]})
    ping_status, _ = await run_command(emulator.url, minted["apiKey"], "Ping", {})
    fetch_status, _ = await run_command(
        emulator.url, minted["apiKey"], "FetchOidcClient", {"customerId": "x"}
    )

    assert ping_status == 200
    assert fetch_status == 403


async def test_no_secret_in_logs_or_request_log(
    emulator: EmulatorServer,
    emulator_key: str,
    emulator_setup_secret: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client_secret = "client-secret-7f3a9c"
    rotated_secret = "rotated-secret-5b21e0"
    foreign_token = "sk_live_foreign_token_e41d"
    wrong_setup_secret = "wrong-setup-secret-93c1"
    setup_url = f"{emulator.url}/api/initial_setup"
    token = emulator.admin_token
    assert token is not None

    await run_command(
        emulator.url, emulator_key, "CreateOidcClient", create_data(secret=client_secret)
    )
    await run_command(
        emulator.url,
        emulator_key,
        "PatchOidcClient",
        {
            "customerId": "acme-com-1a2b3c4d",
            "idpInfoFromCustomer": {"idpType": "Okta", "clientSecret": rotated_secret},
        },
    )
    await run_command(
        emulator.url,
        emulator_key,
        "CreateOidcClient",
        create_data(secret=client_secret, redirectUrl="bad"),
    )
    await run_command(emulator.url, foreign_token, "Ping", {})
    await run_command(emulator.url, emulator_key + "x", "Ping", {})
    await post_json(setup_url, {"setupSecret": wrong_setup_secret})
    _, setup = await post_json(setup_url, {"setupSecret": emulator_setup_secret})
    await run_command(emulator.url, setup["apiKey"], "Ping", {})
    await admin_request(emulator.url, token, "GET", "requests")
    emulator.set_faults(error_rate=1.0)
    await run_command(emulator.url, emulator_key, "Ping", {})

    log_text = caplog.text
    request_log_text = repr(emulator.request_log)
    assert len(emulator.request_log) == 9
    secrets_used = [
        client_secret,
        rotated_secret,
        foreign_token,
        wrong_setup_secret,
        emulator_setup_secret,
        emulator_key,
        setup["apiKey"],
        token,
    ]
    for secret in secrets_used:
        assert secret not in log_text
        assert secret not in request_log_text
    assert "CreateOidcClient" in log_text
    assert repr(emulator).count("emu_ik_") == 0
