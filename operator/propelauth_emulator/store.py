"""The SQLite state file, written through one dedicated worker thread.

:class:`StateStore` is used only by :mod:`propelauth_emulator.state`, which keeps an in-memory
copy of everything for reads and calls the store to make each change durable. Each method
passes its SQLite work to ``_call``, which runs it on a single-thread executor, so the event
loop does not wait on disk. sqlite3's ``check_same_thread`` (on by default) raises if any other
thread touches the connection.

Each change is one transaction, committed before the call returns, so a client that got an
answer finds the change again after a restart, including after ``kill -9``.

Tables (schema version 1, kept in ``PRAGMA user_version``):

- ``clients``: one row per customer ID with the client as JSON and the client secret's salted
  digest.
- ``integration_keys``: SHA-256 digests of the keys, with the commands each may run (JSON list,
  NULL for all) and how it was made (``initial_setup`` or ``minted``).
- ``settings``: ``initial_setup_done_at`` once initial setup has minted its key.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import fcntl
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TextIO, TypeVar

from .keys import KeyGrant
from .models import OidcClient, SecretDigest

_SCHEMA_VERSION: Final = 1
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS clients (
    customer_id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL,
    secret_salt BLOB NOT NULL,
    secret_digest BLOB NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS integration_keys (
    digest TEXT PRIMARY KEY,
    commands TEXT,
    origin TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_INITIAL_SETUP_DONE_AT: Final = "initial_setup_done_at"

T = TypeVar("T")


class StateFileError(RuntimeError):
    """The state file cannot be used, for example because a newer emulator wrote it."""


@dataclasses.dataclass
class Snapshot:
    """Everything the state file contains, as loaded at start."""

    clients: dict[str, tuple[OidcClient, SecretDigest]]
    keys: dict[str, KeyGrant]
    initial_setup_done: bool


class StateStore:
    """Durable state in one SQLite file, reached only through :meth:`_call`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None
        self._lock_file: TextIO | None = None

    async def open(self) -> Snapshot:
        """Open or create the state file and load its contents.

        Raises :class:`StateFileError` for a file with an unknown schema version.
        """
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="emulator-sqlite"
        )
        try:
            await self._call(self._connect)
            return await self._call(self._load)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the connection and stop the worker thread; safe to call twice."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(executor, self._disconnect)
        # The only job has finished, so waiting for the thread is immediate.
        executor.shutdown(wait=True)

    async def save_client(self, client: OidcClient, secret: SecretDigest) -> None:
        """Insert the client, or replace the row of its customer ID."""

        def save() -> None:
            with self._transaction() as connection:
                connection.execute(
                    "INSERT OR REPLACE INTO clients VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        client.customer_id,
                        client.client_id,
                        json.dumps(client.to_record()),
                        secret.salt,
                        secret.digest,
                        time.time(),
                    ),
                )

        await self._call(save)

    async def delete_client(self, customer_id: str) -> None:
        """Delete the client of ``customer_id``; nothing happens when there is none."""

        def delete() -> None:
            with self._transaction() as connection:
                connection.execute("DELETE FROM clients WHERE customer_id = ?", (customer_id,))

        await self._call(delete)

    async def add_key(self, digest: str, grant: KeyGrant, *, initial_setup: bool = False) -> None:
        """Store a key digest; with ``initial_setup``, also mark initial setup as done."""

        def add() -> None:
            commands = None if grant.commands is None else json.dumps(sorted(grant.commands))
            with self._transaction() as connection:
                connection.execute(
                    "INSERT INTO integration_keys VALUES (?, ?, ?, ?)",
                    (digest, commands, grant.origin, time.time()),
                )
                if initial_setup:
                    connection.execute(
                        "INSERT INTO settings VALUES (?, ?)",
                        (_INITIAL_SETUP_DONE_AT, str(time.time())),
                    )

        await self._call(add)

    async def remove_key(self, digest: str) -> None:
        """Delete a key digest; nothing happens when it is not stored."""

        def remove() -> None:
            with self._transaction() as connection:
                connection.execute("DELETE FROM integration_keys WHERE digest = ?", (digest,))

        await self._call(remove)

    # Everything below runs on the worker thread.

    async def _call(self, function: Callable[[], T]) -> T:
        if self._executor is None:
            raise StateFileError("The state file is closed.")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function)

    def _connect(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_state_file()
        connection = sqlite3.connect(self._path, isolation_level=None)
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, _SCHEMA_VERSION):
            connection.close()
            self._unlock_state_file()
            raise StateFileError(
                f"The state file {self._path} has schema version {version}, but this emulator "
                f"reads version {_SCHEMA_VERSION}; use a new state file."
            )
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        connection.executescript(_SCHEMA)
        connection.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        self._connection = connection

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
        self._unlock_state_file()

    def _lock_state_file(self) -> None:
        """Take an exclusive lock next to the state file, so that a second emulator fails.

        Each emulator serves from its own memory copy, so two on one file would diverge. The
        kernel releases the lock when the process dies, including on ``kill -9``.
        """
        lock_path = self._path.with_name(self._path.name + ".lock")
        lock_file = open(lock_path, "a")  # noqa: SIM115 - kept open while the lock is held
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise StateFileError(
                f"The state file {self._path} is in use by another emulator; stop it or use "
                "another state file."
            ) from None
        self._lock_file = lock_file

    def _unlock_state_file(self) -> None:
        lock_file, self._lock_file = self._lock_file, None
        if lock_file is not None:
            lock_file.close()

    def _transaction(self) -> _Transaction:
        if self._connection is None:
            raise StateFileError("The state file is closed.")
        return _Transaction(self._connection)

    def _load(self) -> Snapshot:
        assert self._connection is not None
        connection = self._connection

        clients: dict[str, tuple[OidcClient, SecretDigest]] = {}
        for record, salt, digest in connection.execute(
            "SELECT record, secret_salt, secret_digest FROM clients"
        ):
            client = OidcClient.from_record(json.loads(record))
            clients[client.customer_id] = (client, SecretDigest(salt=salt, digest=digest))

        keys: dict[str, KeyGrant] = {}
        for key_digest, commands, origin in connection.execute(
            "SELECT digest, commands, origin FROM integration_keys"
        ):
            allowed = None if commands is None else frozenset(json.loads(commands))
            keys[key_digest] = KeyGrant(commands=allowed, origin=origin)

        done = connection.execute(
            "SELECT 1 FROM settings WHERE name = ?", (_INITIAL_SETUP_DONE_AT,)
        ).fetchone()
        return Snapshot(clients=clients, keys=keys, initial_setup_done=done is not None)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` when the block raises."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self._connection.execute("BEGIN IMMEDIATE")
        return self._connection

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is None:
            self._connection.execute("COMMIT")
        else:
            self._connection.execute("ROLLBACK")
