"""Emulator of the PropelAuth BYO sidecar for tests and the demo; never imported by the operator.

The real sidecar is a licensed image, so tests and the demo run this emulator instead. It serves
the ``/run-command`` commands the operator needs (``Ping``, ``CreateOidcClient``,
``FetchOidcClient``, ``PatchOidcClient``, ``DeleteOidcClient``) plus ``InitiateOidcLogin``, and
``/api/initial_setup``, over real HTTP on loopback. Request and response shapes follow the
``propelauth-byo`` 1.0.12 Python SDK, whose parsers accept every response (the contract tests
under ``tests/emulator`` check this). State lives in a SQLite file and survives restarts.

In-process use::

    server = EmulatorServer(tmp_path / "state.sqlite3", setup_secret="at-least-16-chars")
    await server.start()
    key = await server.mint_key()                # full access; mint_key(["Ping"]) limits it
    ...                                          # point a client at server.url
    await server.stop()

Sync or async: methods that only read memory are plain (``clients``, ``secret_matches``,
``counters``, ``request_log``, ``reset_counters``, ``set_faults``, ``clear_faults``,
``initial_setup_calls``); methods that write the state file are coroutines (``start``, ``stop``,
``mint_key``, ``revoke_key``). The emulator keeps an in-memory copy of the state file for reads,
and SQLite calls run on one worker thread, never on the event loop.

Modules: :mod:`.server` (HTTP and the Python API), :mod:`.commands` (command handlers),
:mod:`.validation`, :mod:`.models`, :mod:`.login` (authorization URLs), :mod:`.keys`,
:mod:`.state` and :mod:`.store` (memory and SQLite), :mod:`.faults`, :mod:`.metrics`,
:mod:`.admin` (the ``/_emulator`` endpoint), :mod:`.protocol` (wire names).
"""

from .faults import FaultSettings
from .keys import KEY_PREFIX
from .metrics import RequestRecord
from .server import EmulatorServer

__all__ = ["KEY_PREFIX", "EmulatorServer", "FaultSettings", "RequestRecord"]
