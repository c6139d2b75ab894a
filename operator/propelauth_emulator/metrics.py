"""Counters and the request log, for tests and benchmarks.

Every API request adds one :class:`RequestRecord` and, for ``/run-command``, one count under
``command -> outcome``. The outcome is ``"ok"``, the protocol error type that was returned
(``InvalidFields``, ``IntegrationKeyNotFound``, ...), or for injected faults ``"InjectedError"``,
``"Outage"`` or ``"Dropped"``. A record contains names, statuses and timings only: never a header,
a request body, a key or a secret.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Final

OK: Final = "ok"
INJECTED_ERROR: Final = "InjectedError"
OUTAGE: Final = "Outage"
DROPPED: Final = "Dropped"

# The oldest records are discarded beyond this many, so a long benchmark cannot exhaust memory.
DEFAULT_REQUEST_LOG_SIZE: Final = 100_000


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One API request as the emulator saw it."""

    started_at: float
    """Unix time in seconds when the request arrived."""
    endpoint: str
    """``/run-command`` or ``/api/initial_setup``."""
    command: str | None
    """The command name; None outside ``/run-command`` or when the body named none."""
    outcome: str
    """``ok``, the returned error type, or the injected fault (see the module docstring)."""
    status: int | None
    """HTTP status sent; None when the connection was dropped."""
    latency_ms: float
    """Time from arrival to the response, including injected latency."""
    fault: str | None = None
    """``outage``, ``drop``, ``error`` or ``latency`` when a fault was injected."""

    def to_wire(self) -> dict[str, Any]:
        """Return the record as the admin endpoint's camelCase JSON."""
        return {
            "startedAt": self.started_at,
            "endpoint": self.endpoint,
            "command": self.command,
            "outcome": self.outcome,
            "status": self.status,
            "latencyMs": self.latency_ms,
            "fault": self.fault,
        }


class RequestMetrics:
    """The counters and the bounded request log of one server."""

    def __init__(self, max_records: int = DEFAULT_REQUEST_LOG_SIZE) -> None:
        self._counters: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self._records: collections.deque[RequestRecord] = collections.deque(maxlen=max_records)
        self.initial_setup_calls = 0

    def record(self, record: RequestRecord) -> None:
        """Add one request to the log and, for a command, to the counters."""
        self._records.append(record)
        if record.endpoint == "/run-command":
            self._counters[record.command or "<none>"][record.outcome] += 1
        else:
            self.initial_setup_calls += 1

    def counters(self) -> dict[str, dict[str, int]]:
        """Return a copy of ``command -> outcome -> count``."""
        return {command: dict(outcomes) for command, outcomes in self._counters.items()}

    def records(self) -> tuple[RequestRecord, ...]:
        """Return a copy of the request log, oldest first."""
        return tuple(self._records)

    def reset(self) -> None:
        """Clear the counters, the request log and the initial setup count."""
        self._counters.clear()
        self._records.clear()
        self.initial_setup_calls = 0
