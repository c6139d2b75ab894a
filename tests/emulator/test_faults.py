"""Fault injection through the Python API and the admin endpoint."""

from __future__ import annotations

import time

import aiohttp
import pytest
from propelauth_byo import create_client, is_err

from propelauth_emulator import EmulatorServer, FaultSettings

from .helpers import admin_request, create_data, run_command


async def test_error_rate_one_fails_every_request(
    emulator: EmulatorServer, emulator_key: str
) -> None:
    emulator.set_faults(error_rate=1.0, error_status=503)

    statuses = [(await run_command(emulator.url, emulator_key, "Ping", {}))[0] for _ in range(5)]
    status, body = await run_command(emulator.url, emulator_key, "CreateOidcClient", create_data())

    assert statuses == [503] * 5
    assert status == 503
    assert body["type"] == "UnexpectedError"
    assert emulator.clients() == []
    assert emulator.counters["Ping"] == {"InjectedError": 5}


async def test_clear_faults_restores_service(emulator: EmulatorServer, emulator_key: str) -> None:
    emulator.set_faults(error_rate=1.0)
    failed_status, _ = await run_command(emulator.url, emulator_key, "Ping", {})

    emulator.clear_faults()
    status, _ = await run_command(emulator.url, emulator_key, "Ping", {})

    assert failed_status == 500
    assert status == 200
    assert emulator.faults == FaultSettings()


async def test_error_rate_half_fails_some(emulator: EmulatorServer, emulator_key: str) -> None:
    emulator.set_faults(error_rate=0.5, seed=7)

    statuses = [(await run_command(emulator.url, emulator_key, "Ping", {}))[0] for _ in range(200)]

    failures = statuses.count(500)
    assert 60 <= failures <= 140
    assert statuses.count(200) == 200 - failures


async def test_latency_delays_answer(emulator: EmulatorServer, emulator_key: str) -> None:
    emulator.set_faults(latency_ms=150)

    started = time.perf_counter()
    status, _ = await run_command(emulator.url, emulator_key, "Ping", {})
    elapsed = time.perf_counter() - started

    assert status == 200
    assert elapsed >= 0.15
    assert emulator.request_log[-1].latency_ms >= 150
    assert emulator.request_log[-1].fault == "latency"


async def test_latency_spike_adds_delay(emulator: EmulatorServer, emulator_key: str) -> None:
    emulator.set_faults(latency_spike_rate=1.0, latency_spike_ms=120)

    started = time.perf_counter()
    await run_command(emulator.url, emulator_key, "Ping", {})
    spiked = time.perf_counter() - started
    spiked_record = emulator.request_log[-1]
    emulator.set_faults(latency_spike_rate=0.0, latency_spike_ms=120)
    await run_command(emulator.url, emulator_key, "Ping", {})
    plain_record = emulator.request_log[-1]

    assert spiked >= 0.12
    assert spiked_record.fault == "latency"
    assert spiked_record.latency_ms >= 120
    assert plain_record.fault is None


async def test_outage_answers_plain_503(emulator: EmulatorServer, emulator_key: str) -> None:
    emulator.set_faults(outage=True)

    status, body = await run_command(emulator.url, emulator_key, "CreateOidcClient", create_data())
    sdk_result = await create_client(emulator.url, emulator_key).ping()
    emulator.clear_faults()
    after_status, _ = await run_command(emulator.url, emulator_key, "Ping", {})

    assert status == 503
    assert isinstance(body, str)
    assert emulator.clients() == []
    assert is_err(sdk_result)
    assert sdk_result.error.type == "UnexpectedError"
    assert emulator.counters["CreateOidcClient"] == {"Outage": 1}
    assert after_status == 200


async def test_outage_also_blocks_initial_setup(
    emulator: EmulatorServer, emulator_setup_secret: str
) -> None:
    emulator.set_faults(outage=True)

    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{emulator.url}/api/initial_setup", json={"setupSecret": emulator_setup_secret}
        ) as response,
    ):
        status = response.status

    assert status == 503
    assert not emulator.initial_setup_done


async def test_drop_closes_connection_without_answer(
    emulator: EmulatorServer, emulator_key: str
) -> None:
    emulator.set_faults(drop_rate=1.0)

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await run_command(emulator.url, emulator_key, "CreateOidcClient", create_data())

    assert emulator.clients() == []
    assert emulator.counters["CreateOidcClient"] == {"Dropped": 1}
    assert emulator.request_log[-1].status is None


async def test_drop_after_command_keeps_change(emulator: EmulatorServer, emulator_key: str) -> None:
    emulator.set_faults(drop_rate=1.0, drop_after_command=True)

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await run_command(emulator.url, emulator_key, "CreateOidcClient", create_data())
    emulator.clear_faults()
    status, body = await run_command(emulator.url, emulator_key, "CreateOidcClient", create_data())

    assert len(emulator.clients()) == 1
    assert status == 409
    assert body["type"] == "CustomerIdAlreadyTakenForEoidcClient"


async def test_faults_limited_to_listed_commands(
    emulator: EmulatorServer, emulator_key: str
) -> None:
    emulator.set_faults(error_rate=1.0, commands=["PatchOidcClient"])
    await run_command(emulator.url, emulator_key, "CreateOidcClient", create_data())

    ping_status, _ = await run_command(emulator.url, emulator_key, "Ping", {})
    patch_status, _ = await run_command(
        emulator.url, emulator_key, "PatchOidcClient", {"customerId": "acme-com-1a2b3c4d"}
    )

    assert ping_status == 200
    assert patch_status == 500
    assert len(emulator.clients()) == 1


async def test_admin_endpoint_sets_and_clears_faults(
    emulator: EmulatorServer, emulator_key: str
) -> None:
    token = emulator.admin_token
    assert token is not None

    put_status, put_body = await admin_request(
        emulator.url, token, "PUT", "faults", {"errorRate": 1.0, "errorStatus": 502}
    )
    failed_status, _ = await run_command(emulator.url, emulator_key, "Ping", {})
    get_status, get_body = await admin_request(emulator.url, token, "GET", "faults")
    delete_status, _ = await admin_request(emulator.url, token, "DELETE", "faults")
    ok_status, _ = await run_command(emulator.url, emulator_key, "Ping", {})

    assert put_status == 200
    assert put_body["errorRate"] == 1.0
    assert failed_status == 502
    assert get_status == 200
    assert get_body["errorStatus"] == 502
    assert delete_status == 200
    assert ok_status == 200


async def test_admin_endpoint_works_during_outage(emulator: EmulatorServer) -> None:
    token = emulator.admin_token
    assert token is not None
    emulator.set_faults(outage=True)

    status, body = await admin_request(emulator.url, token, "DELETE", "faults")

    assert status == 200
    assert body["outage"] is False


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"errorRate": 1.5}, id="rate above one"),
        pytest.param({"errorStatus": 200}, id="success status"),
        pytest.param({"latencyMs": -1}, id="negative latency"),
        pytest.param({"outage": "yes"}, id="outage not boolean"),
        pytest.param({"commands": ["Pong"]}, id="unknown command"),
        pytest.param({"errorrate": 1}, id="unknown field"),
    ],
)
async def test_admin_endpoint_rejects_bad_faults(emulator: EmulatorServer, body: object) -> None:
    token = emulator.admin_token
    assert token is not None

    status, answer = await admin_request(emulator.url, token, "PUT", "faults", body)

    assert status == 400
    assert answer["error"]
    assert emulator.faults == FaultSettings()


def test_fault_settings_name_bad_field() -> None:
    with pytest.raises(ValueError, match="drop_rate"):
        FaultSettings(drop_rate=-0.1)
