"""Command line entry point: ``propelauth-emulator`` (or ``python -m propelauth_emulator``).

It serves until SIGINT or SIGTERM, then finishes the requests in progress, closes the state file
and exits with status 0. Once listening it prints one line to standard output,
``propelauth-emulator listening on http://127.0.0.1:<port>``, so that a parent process that
passed ``--port 0`` can read the port. Logs go to standard error.

Secrets may come from the environment instead of the command line, where other local users can
read them in the process list: ``PROPELAUTH_EMULATOR_SETUP_SECRET`` and
``PROPELAUTH_EMULATOR_ADMIN_TOKEN``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .faults import FaultSettings
from .server import DEFAULT_HOST, EmulatorServer
from .store import StateFileError

logger = logging.getLogger("propelauth_emulator")

READY_LINE_PREFIX = "propelauth-emulator listening on "
SETUP_SECRET_ENVIRONMENT_VARIABLE = "PROPELAUTH_EMULATOR_SETUP_SECRET"
ADMIN_TOKEN_ENVIRONMENT_VARIABLE = "PROPELAUTH_EMULATOR_ADMIN_TOKEN"


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the command line options."""
    parser = argparse.ArgumentParser(
        prog="propelauth-emulator",
        description="Emulated PropelAuth BYO sidecar for tests and demos. Listens on loopback.",
    )

    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to listen on (default: %(default)s)"
    )

    parser.add_argument(
        "--port", type=int, default=2884, help="TCP port; 0 picks a free one (default: %(default)s)"
    )

    parser.add_argument(
        "--state", type=Path, required=True, help="SQLite state file, created when missing"
    )

    parser.add_argument(
        "--setup-secret",
        default=os.environ.get(SETUP_SECRET_ENVIRONMENT_VARIABLE),
        help="secret that /api/initial_setup accepts once; without it initial setup is disabled "
        f"(default: ${SETUP_SECRET_ENVIRONMENT_VARIABLE})",
    )

    parser.add_argument(
        "--admin-token",
        default=os.environ.get(ADMIN_TOKEN_ENVIRONMENT_VARIABLE),
        help="bearer token of the /_emulator admin endpoint; without it the endpoint is disabled "
        f"(default: ${ADMIN_TOKEN_ENVIRONMENT_VARIABLE})",
    )

    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="delay added to every API request, in milliseconds",
    )

    parser.add_argument(
        "--post-login-redirect-origin",
        action="append",
        dest="post_login_redirect_origins",
        metavar="ORIGIN",
        help="allowed origin of postLoginRedirectUrl, such as https://app.example.com; "
        "repeatable; without it any http(s) URL is allowed",
    )

    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log line format (default: text)",
    )

    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
        help="lowest level logged (default: INFO)",
    )

    return parser


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(log_format: str, level: str) -> None:
    """Send log records to standard error in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


async def serve(arguments: argparse.Namespace) -> int:
    """Run the emulator until SIGINT or SIGTERM; return the exit status."""
    server = EmulatorServer(
        arguments.state,
        setup_secret=arguments.setup_secret,
        host=arguments.host,
        port=arguments.port,
        admin_token=arguments.admin_token,
        enable_admin=arguments.admin_token is not None,
        faults=FaultSettings(latency_ms=arguments.latency_ms),
        post_login_redirect_origins=arguments.post_login_redirect_origins,
    )
    try:
        await server.start()
    except StateFileError as error:
        logger.error("Cannot start: %s", error)
        return 1
    except OSError as error:
        logger.error("Cannot listen on %s port %s: %s", arguments.host, arguments.port, error)
        return 1

    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop_requested.set)

    print(READY_LINE_PREFIX + server.url, flush=True)
    try:
        await stop_requested.wait()
        logger.info("Stop requested; finishing the requests in progress.")
    finally:
        await server.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the emulator; return the exit status."""
    arguments = build_parser().parse_args(argv)
    if arguments.latency_ms < 0:
        build_parser().error("--latency-ms must be zero or more")
    configure_logging(arguments.log_format, arguments.log_level)
    return asyncio.run(serve(arguments))


if __name__ == "__main__":
    sys.exit(main())
