"""Integration key errors, per-command permissions and initial setup."""

from __future__ import annotations

from pathlib import Path

import pytest

from propelauth_emulator import KEY_PREFIX, EmulatorServer

from .helpers import create_data, post_json, run_command


@pytest.mark.parametrize(
    ("headers", "expected_type"),
    [
        pytest.param({}, "NoIntegrationKeyFoundInHeader", id="no header"),
        pytest.param(
            {"Authorization": "Basic dXNlcjpwYXNz"},
            "NoIntegrationKeyFoundInHeader",
            id="basic scheme",
        ),
        pytest.param(
            {"Authorization": "Bearer "}, "NoIntegrationKeyFoundInHeader", id="empty token"
        ),
        pytest.param(
            {"Authorization": "Bearer api_key_from_elsewhere"}, "InvalidPrefix", id="wrong prefix"
        ),
        pytest.param(
            {"Authorization": f"Bearer {KEY_PREFIX}guessed"},
            "IntegrationKeyNotFound",
            id="unknown key",
        ),
    ],
)
async def test_key_errors(
    emulator: EmulatorServer, headers: dict[str, str], expected_type: str
) -> None:
    status, body = await post_json(
        f"{emulator.url}/run-command", {"command": "Ping", "data": {}}, headers
    )

    assert status == 401
    assert body["type"] == expected_type
    assert "api_key_from_elsewhere" not in str(body)
    assert emulator.counters["Ping"] == {expected_type: 1}


async def test_revoked_key_not_found(emulator: EmulatorServer) -> None:
    key = await emulator.mint_key()
    await emulator.revoke_key(key)

    status, body = await run_command(emulator.url, key, "Ping", {})

    assert status == 401
    assert body == {"type": "IntegrationKeyNotFound"}


async def test_key_format_has_prefix(emulator: EmulatorServer) -> None:
    first = await emulator.mint_key()
    second = await emulator.mint_key()

    assert first.startswith(KEY_PREFIX)
    assert len(first) == len(KEY_PREFIX) + 43
    assert first != second


async def test_limited_key_runs_listed_commands(emulator: EmulatorServer) -> None:
    key = await emulator.mint_key(["Ping", "CreateOidcClient"])

    ping_status, _ = await run_command(emulator.url, key, "Ping", {})
    create_status, _ = await run_command(emulator.url, key, "CreateOidcClient", create_data())
    delete_status, delete_body = await run_command(
        emulator.url, key, "DeleteOidcClient", {"customerId": "acme-com-1a2b3c4d"}
    )

    assert ping_status == 200
    assert create_status == 200
    assert delete_status == 403
    assert delete_body == {
        "type": "CommandNotAllowed",
        "details": {"command_name": "DeleteOidcClient"},
    }
    assert len(emulator.clients()) == 1


async def test_mint_key_rejects_unknown_command(emulator: EmulatorServer) -> None:
    with pytest.raises(ValueError, match="CreateSesion"):
        await emulator.mint_key(["CreateSesion"])


async def test_initial_setup_first_call_mints_key(
    emulator: EmulatorServer, emulator_setup_secret: str
) -> None:
    status, body = await post_json(
        f"{emulator.url}/api/initial_setup", {"setupSecret": emulator_setup_secret}
    )
    ping_status, _ = await run_command(emulator.url, body["apiKey"], "Ping", {})
    create_status, _ = await run_command(
        emulator.url, body["apiKey"], "CreateOidcClient", create_data()
    )

    assert status == 200
    assert body["apiKey"].startswith(KEY_PREFIX)
    assert ping_status == 200
    assert create_status == 200
    assert emulator.initial_setup_calls == 1
    assert emulator.initial_setup_done


async def test_initial_setup_wrong_secret(
    emulator: EmulatorServer, emulator_setup_secret: str
) -> None:
    wrong_status, wrong_body = await post_json(
        f"{emulator.url}/api/initial_setup", {"setupSecret": emulator_setup_secret + "x"}
    )
    missing_status, _ = await post_json(f"{emulator.url}/api/initial_setup", {})
    right_status, _ = await post_json(
        f"{emulator.url}/api/initial_setup", {"setupSecret": emulator_setup_secret}
    )

    assert wrong_status == 401
    assert wrong_body["type"] == "InvalidSetupSecret"
    assert emulator_setup_secret not in str(wrong_body)
    assert missing_status == 401
    assert right_status == 200
    assert emulator.initial_setup_calls == 3


async def test_initial_setup_repeated_is_conflict(
    emulator: EmulatorServer, emulator_setup_secret: str
) -> None:
    url = f"{emulator.url}/api/initial_setup"
    await post_json(url, {"setupSecret": emulator_setup_secret})

    repeated_status, repeated_body = await post_json(url, {"setupSecret": emulator_setup_secret})
    wrong_status, _ = await post_json(url, {"setupSecret": "wrong-secret-after-setup"})

    assert repeated_status == 409
    assert repeated_body["type"] == "InitialSetupAlreadyDone"
    assert "apiKey" not in repeated_body
    assert wrong_status == 409


async def test_initial_setup_after_restart(tmp_path: Path) -> None:
    state_path = tmp_path / "state.sqlite3"
    setup_secret = "restart-setup-secret-0123"
    first = EmulatorServer(state_path, setup_secret=setup_secret)
    await first.start()
    _, body = await post_json(f"{first.url}/api/initial_setup", {"setupSecret": setup_secret})
    await first.stop()

    second = EmulatorServer(state_path, setup_secret=setup_secret)
    await second.start()
    try:
        status, answer = await post_json(
            f"{second.url}/api/initial_setup", {"setupSecret": setup_secret}
        )
        ping_status, _ = await run_command(second.url, body["apiKey"], "Ping", {})
    finally:
        await second.stop()

    assert status == 409
    assert answer["type"] == "InitialSetupAlreadyDone"
    assert ping_status == 200


async def test_initial_setup_disabled_without_secret(tmp_path: Path) -> None:
    server = EmulatorServer(tmp_path / "state.sqlite3")
    await server.start()
    try:
        status, body = await post_json(f"{server.url}/api/initial_setup", {"setupSecret": "x"})
    finally:
        await server.stop()

    assert status == 404
    assert body["type"] == "InitialSetupNotEnabled"


async def test_initial_setup_malformed_body(emulator: EmulatorServer) -> None:
    status, body = await post_json(f"{emulator.url}/api/initial_setup", ["not", "an", "object"])

    assert status == 400
    assert body["type"] == "InvalidRequest"
