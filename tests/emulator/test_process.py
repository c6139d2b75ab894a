"""The ``propelauth-emulator`` console script: restarts, signals, options and log output."""

from __future__ import annotations

import ast
import json
import logging
import signal
import sqlite3
from pathlib import Path

import pytest

import propelauth_emulator
from propelauth_emulator import EmulatorServer
from propelauth_emulator.__main__ import build_parser, main
from propelauth_emulator.store import StateFileError
from tests.fixtures.emulator import EmulatorProcess, EmulatorProcessError

from .helpers import admin_request, create_data, post_json, run_command

SETUP_SECRET = "process-setup-secret-4d2f8a"


async def test_restart_keeps_clients_keys_and_setup(tmp_path: Path) -> None:
    state_path = tmp_path / "state.sqlite3"
    process = EmulatorProcess(state_path, setup_secret=SETUP_SECRET)

    url = await process.start()
    _, setup = await post_json(f"{url}/api/initial_setup", {"setupSecret": SETUP_SECRET})
    key = setup["apiKey"]
    create_status, _ = await run_command(url, key, "CreateOidcClient", create_data(secret="s1"))
    first_exit = await process.stop()

    url = await process.start()
    try:
        fetch_status, fetched = await run_command(
            url, key, "FetchOidcClient", {"customerId": "acme-com-1a2b3c4d"}
        )
        setup_status, _ = await post_json(f"{url}/api/initial_setup", {"setupSecret": SETUP_SECRET})
        _, matches = await admin_request(
            url,
            process.admin_token,
            "POST",
            "secret-matches",
            {"customerId": "acme-com-1a2b3c4d", "secret": "s1"},
        )
    finally:
        second_exit = await process.stop()

    assert create_status == 200
    assert first_exit == 0
    assert fetch_status == 200
    assert fetched["idpInfoFromCustomer"]["clientId"] == "0oa-okta-client"
    assert setup_status == 409
    assert matches == {"matches": True}
    assert second_exit == 0


async def test_killed_process_keeps_answered_changes(tmp_path: Path) -> None:
    state_path = tmp_path / "state.sqlite3"
    process = EmulatorProcess(state_path)
    url = await process.start()
    _, minted = await admin_request(url, process.admin_token, "POST", "keys", {"commands": None})
    await run_command(url, minted["apiKey"], "CreateOidcClient", create_data())

    killed_status = await process.stop(signal.SIGKILL)
    url = await process.start()
    try:
        status, _ = await run_command(
            url, minted["apiKey"], "FetchOidcClient", {"customerId": "acme-com-1a2b3c4d"}
        )
    finally:
        await process.stop()

    assert killed_status == -signal.SIGKILL
    assert status == 200


async def test_sigint_stops_cleanly(tmp_path: Path) -> None:
    process = EmulatorProcess(tmp_path / "state.sqlite3")
    await process.start()

    exit_status = await process.stop(signal.SIGINT)

    assert exit_status == 0
    assert any("has stopped" in line for line in process.log_lines)


async def test_listens_on_loopback_by_default(tmp_path: Path) -> None:
    async with EmulatorProcess(tmp_path / "state.sqlite3") as process:
        url = process.url

    assert url is not None
    assert url.startswith("http://127.0.0.1:")
    assert build_parser().parse_args(["--state", "x"]).host == "127.0.0.1"


async def test_latency_option_sets_faults(tmp_path: Path) -> None:
    process = EmulatorProcess(tmp_path / "state.sqlite3", extra_arguments=["--latency-ms", "25"])
    async with process:
        assert process.url is not None
        status, faults = await admin_request(process.url, process.admin_token, "GET", "faults")

    assert status == 200
    assert faults["latencyMs"] == 25


async def test_json_log_lines_parse(tmp_path: Path) -> None:
    process = EmulatorProcess(tmp_path / "state.sqlite3", extra_arguments=["--log-format", "json"])
    async with process:
        assert process.url is not None
        await run_command(process.url, None, "Ping", {})

    entries = [json.loads(line) for line in process.log_lines]
    assert entries
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    assert any("NoIntegrationKeyFoundInHeader" in entry["message"] for entry in entries)


async def test_process_log_has_no_secrets(tmp_path: Path) -> None:
    process = EmulatorProcess(
        tmp_path / "state.sqlite3",
        setup_secret=SETUP_SECRET,
        extra_arguments=["--log-level", "DEBUG"],
    )
    client_secret = "client-secret-in-process-81d2"
    async with process:
        url = process.url
        assert url is not None
        await post_json(f"{url}/api/initial_setup", {"setupSecret": "wrong-" + SETUP_SECRET})
        _, setup = await post_json(f"{url}/api/initial_setup", {"setupSecret": SETUP_SECRET})
        key = setup["apiKey"]
        await run_command(url, key, "CreateOidcClient", create_data(secret=client_secret))
        await run_command(url, key + "typo", "Ping", {})
        await admin_request(url, process.admin_token, "PUT", "faults", {"latencyMs": 1})

    log_text = "\n".join(process.log_lines)
    assert "CreateOidcClient" in log_text
    for secret in (SETUP_SECRET, client_secret, key, process.admin_token):
        assert secret not in log_text


async def test_refuses_newer_state_file(tmp_path: Path) -> None:
    state_path = tmp_path / "state.sqlite3"
    connection = sqlite3.connect(state_path)
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    process = EmulatorProcess(state_path)

    with pytest.raises(EmulatorProcessError, match="exited before it was ready"):
        await process.start()

    # NB: not "== 1". Python 3.11's asyncio child watcher sometimes loses the status of a child
    # that exits this fast and reports 255; test_main_exits_one_on_bad_state checks the status.
    assert process.returncode != 0
    assert any("schema version 99" in line for line in process.log_lines)


def test_main_exits_one_on_bad_state(tmp_path: Path) -> None:
    state_path = tmp_path / "state.sqlite3"
    connection = sqlite3.connect(state_path)
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    try:
        exit_status = main(["--state", str(state_path), "--port", "0"])
    finally:
        # main() installs its own log handler; give pytest its handlers back.
        root.handlers[:] = handlers
        root.setLevel(level)

    assert exit_status == 1


async def test_admin_endpoint_can_be_disabled(tmp_path: Path) -> None:
    server = EmulatorServer(tmp_path / "state.sqlite3", enable_admin=False)
    await server.start()
    try:
        status, _ = await post_json(f"{server.url}/_emulator/reset-counters", {})
    finally:
        await server.stop()

    assert server.admin_token is None
    assert status == 404


async def test_second_emulator_on_same_state_fails(tmp_path: Path) -> None:
    state_path = tmp_path / "state.sqlite3"
    first = EmulatorServer(state_path)
    second = EmulatorServer(state_path)
    await first.start()
    try:
        with pytest.raises(StateFileError, match="in use by another emulator"):
            await second.start()
    finally:
        await first.stop()

    await second.start()
    await second.stop()


async def test_restart_in_process_keeps_state(tmp_path: Path) -> None:
    state_path = tmp_path / "state.sqlite3"
    first = EmulatorServer(state_path)
    await first.start()
    limited_key = await first.mint_key(["FetchOidcClient"])
    full_key = await first.mint_key()
    revoked_key = await first.mint_key()
    await first.revoke_key(revoked_key)
    await run_command(first.url, full_key, "CreateOidcClient", create_data(secret="kept-secret"))
    clients_before = first.clients()
    await first.stop()

    second = EmulatorServer(state_path)
    await second.start()
    try:
        fetch_status, _ = await run_command(
            second.url, limited_key, "FetchOidcClient", {"customerId": "acme-com-1a2b3c4d"}
        )
        ping_status, _ = await run_command(second.url, limited_key, "Ping", {})
        revoked_status, _ = await run_command(second.url, revoked_key, "Ping", {})
        clients_after = second.clients()
        secret_kept = second.secret_matches("acme-com-1a2b3c4d", "kept-secret")
    finally:
        await second.stop()

    assert fetch_status == 200
    assert ping_status == 403
    assert revoked_status == 401
    assert clients_after == clients_before
    assert secret_kept


def imported_modules(package: Path) -> set[str]:
    """Return the top-level names of every module imported by the package's sources."""
    names: set[str] = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_emulator_and_operator_stay_apart() -> None:
    operator_directory = Path(propelauth_emulator.__file__).parents[1]

    emulator_imports = imported_modules(operator_directory / "propelauth_emulator")
    operator_imports = imported_modules(operator_directory / "experio_sso")

    assert "experio_sso" not in emulator_imports
    assert "propelauth_emulator" not in operator_imports
