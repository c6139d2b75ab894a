"""Fault injection: errors, latency, outages and dropped connections, switchable at run time.

Tests set faults through :meth:`EmulatorServer.set_faults` or the admin endpoint
``PUT /_emulator/faults``; both replace the whole :class:`FaultSettings`. The server requests a
:class:`FaultInjector` for a :class:`FaultPlan` once per API request (``/run-command`` and
``/api/initial_setup``; admin requests never get faults), then applies it in this order:

1. ``outage``: answer 503 with a plain-text body, as a proxy in front of a stopped sidecar
   would. The request is not run. The emulator keeps listening during an outage so that the
   admin endpoint can end it; stop the server to get "connection refused" instead.
2. Added latency: ``latency_ms`` always, plus ``latency_spike_ms`` with probability
   ``latency_spike_rate``.
3. Drop, with probability ``drop_rate``: close the connection without any response. With
   ``drop_after_command`` the command runs first, so its change is stored but the answer is
   lost (the case a client must handle by retrying an idempotent operation).
4. Error, with probability ``error_rate``: answer ``error_status`` with
   ``{"type": "UnexpectedError", "details": ...}``, without running the command.

``commands`` limits faults to the listed ``/run-command`` commands; initial setup requests then
get none. Random draws come from one ``random.Random`` seeded with ``seed``, so a run with a
fixed seed and a fixed request order injects the same faults.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Mapping
from typing import Any, Final

from . import protocol

_WIRE_NAMES: Final = {
    "error_rate": "errorRate",
    "error_status": "errorStatus",
    "latency_ms": "latencyMs",
    "latency_spike_rate": "latencySpikeRate",
    "latency_spike_ms": "latencySpikeMs",
    "outage": "outage",
    "drop_rate": "dropRate",
    "drop_after_command": "dropAfterCommand",
    "commands": "commands",
    "seed": "seed",
}


@dataclasses.dataclass(frozen=True)
class FaultSettings:
    """Fault injection settings. The defaults inject none.

    Rates are probabilities per request from 0 to 1; durations are milliseconds.
    Raises ``ValueError`` naming the field for a value out of range.
    """

    error_rate: float = 0.0
    """Probability of responding with ``error_status`` instead of running the request."""
    error_status: int = 500
    """HTTP status of injected errors, 400 to 599."""
    latency_ms: float = 0.0
    """Delay added to every request, in milliseconds."""
    latency_spike_rate: float = 0.0
    """Probability of adding ``latency_spike_ms`` on top of ``latency_ms``."""
    latency_spike_ms: float = 0.0
    """Extra delay of a latency spike, in milliseconds."""
    outage: bool = False
    """Respond to every request with a plain 503 until cleared."""
    drop_rate: float = 0.0
    """Probability of closing the connection without a response."""
    drop_after_command: bool = False
    """Drop only after the command ran and its change was stored."""
    commands: frozenset[str] | None = None
    """``/run-command`` commands that get faults; None for every API request."""
    seed: int | None = None
    """Seed of the random draws; None seeds from the operating system."""

    def __post_init__(self) -> None:
        for name in ("error_rate", "latency_spike_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}.")
        for name in ("latency_ms", "latency_spike_ms"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"{name} must be zero or more milliseconds, got {value!r}.")
        if not 400 <= self.error_status <= 599:
            raise ValueError(f"error_status must be from 400 to 599, got {self.error_status!r}.")
        if self.commands is not None:
            unknown = set(self.commands) - protocol.IMPLEMENTED_COMMANDS
            if unknown:
                raise ValueError(f"commands contains unknown commands: {sorted(unknown)}.")

    @classmethod
    def create(cls, commands: Iterable[str] | None = None, **fields: Any) -> FaultSettings:
        """Build settings, accepting any iterable for ``commands``."""
        return cls(commands=None if commands is None else frozenset(commands), **fields)

    @classmethod
    def from_wire(cls, body: Mapping[str, Any]) -> FaultSettings:
        """Build settings from the admin endpoint's camelCase JSON.

        Raises ``ValueError`` for unknown keys, wrong JSON types and values out of range.
        """
        by_wire_name = {wire: name for name, wire in _WIRE_NAMES.items()}
        unknown = set(body) - set(by_wire_name)
        if unknown:
            raise ValueError(f"Unknown fault settings: {sorted(unknown)}.")
        fields = {by_wire_name[wire]: value for wire, value in body.items()}
        _check_wire_types(fields)
        return cls.create(**fields)

    def to_wire(self) -> dict[str, Any]:
        """Return the settings as the admin endpoint's camelCase JSON."""
        wire: dict[str, Any] = {}
        for name, wire_name in _WIRE_NAMES.items():
            value = getattr(self, name)
            wire[wire_name] = sorted(value) if isinstance(value, frozenset) else value
        return wire

    def applies_to(self, command: str | None) -> bool:
        """Tell whether a request for ``command`` (None outside ``/run-command``) gets faults."""
        return self.commands is None or command in self.commands


def _check_wire_types(fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if name in ("outage", "drop_after_command"):
            valid = isinstance(value, bool)
        elif name in ("error_status", "seed"):
            valid = (value is None and name == "seed") or (
                isinstance(value, int) and not isinstance(value, bool)
            )
        elif name == "commands":
            valid = value is None or (
                isinstance(value, list) and all(isinstance(item, str) for item in value)
            )
        else:
            valid = isinstance(value, int | float) and not isinstance(value, bool)
        if not valid:
            raise ValueError(f"{_WIRE_NAMES[name]} has the wrong JSON type: {value!r}.")


@dataclasses.dataclass(frozen=True)
class FaultPlan:
    """The faults drawn for one request."""

    outage: bool = False
    delay_seconds: float = 0.0
    drop_before: bool = False
    drop_after: bool = False
    error_status: int | None = None

    @property
    def name(self) -> str | None:
        """The fault that decides the response, for the request log; None when there is none."""
        if self.outage:
            return "outage"
        if self.drop_before or self.drop_after:
            return "drop"
        if self.error_status is not None:
            return "error"
        if self.delay_seconds:
            return "latency"
        return None


NO_FAULTS: Final = FaultPlan()


class FaultInjector:
    """Holds the current settings and draws a plan per request."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self.settings = FaultSettings()
        self._random = random.Random()
        self.replace(settings or FaultSettings())

    def replace(self, settings: FaultSettings) -> None:
        """Switch to ``settings``, reseeding the random draws."""
        self.settings = settings
        self._random = random.Random(settings.seed)

    def plan(self, command: str | None) -> FaultPlan:
        """Draw the faults for one request for ``command``."""
        settings = self.settings
        if not settings.applies_to(command):
            return NO_FAULTS
        if settings.outage:
            return FaultPlan(outage=True)

        delay_ms = settings.latency_ms
        if settings.latency_spike_rate and self._random.random() < settings.latency_spike_rate:
            delay_ms += settings.latency_spike_ms

        drop = bool(settings.drop_rate) and self._random.random() < settings.drop_rate
        error = bool(settings.error_rate) and self._random.random() < settings.error_rate
        return FaultPlan(
            delay_seconds=delay_ms / 1000.0,
            drop_before=drop and not settings.drop_after_command,
            drop_after=drop and settings.drop_after_command,
            error_status=settings.error_status if error and not drop else None,
        )
