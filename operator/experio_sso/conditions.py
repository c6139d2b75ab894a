"""Condition reasons and the one place where an outcome becomes status conditions.

Both kinds report the conditions that Kubernetes conventions and Flux's kstatus read:

- ``Ready`` is always present, and True only when the sidecar has exactly what the spec asks.
- ``Reconciling`` is present only while True: work in progress, or a temporary failure being
  retried with backoff.
- ``Stalled`` is present only while True: nothing changes until a person acts.

A controller decides an :class:`Outcome`; :func:`build_conditions` turns it into the list and
keeps each condition's ``lastTransitionTime`` while its status does not change, so that a status
written twice with the same outcome is byte-for-byte the same and need not be written at all.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"


class Reason(StrEnum):
    """Reasons of the Ready condition, one per scenario."""

    # The sidecar has exactly what the spec asks.
    SYNCED = "Synced"
    # No ExperioAuthSettings in the SSOClient's namespace; one must be applied.
    SETTINGS_NOT_FOUND = "SettingsNotFound"
    # The namespace's ExperioAuthSettings is not Ready, so there is no usable integration key.
    SETTINGS_NOT_READY = "SettingsNotReady"
    # A second ExperioAuthSettings in a namespace: the oldest one wins, this one is ignored.
    SETTINGS_CONFLICT = "SettingsConflict"
    # A referenced Secret does not exist.
    SECRET_NOT_FOUND = "SecretNotFound"
    # A referenced Secret exists but lacks the key, or its value is empty.
    SECRET_KEY_MISSING = "SecretKeyMissing"
    # The sidecar could not be reached, timed out, or returned an unexpected response.
    SIDECAR_UNAVAILABLE = "SidecarUnavailable"
    # The sidecar rejected the integration key.
    UNAUTHORIZED = "Unauthorized"
    # The integration key lacks the permission for a command; the message names it.
    COMMAND_NOT_ALLOWED = "CommandNotAllowed"
    # The sidecar rejected fields of the client; the message lists them.
    INVALID_FIELDS = "InvalidFields"
    # An older active allow-all client exists in the namespace.
    ALLOW_ALL_CONFLICT = "AllowAllConflict"
    # An older active client claims one of this client's email domains.
    DOMAIN_CONFLICT = "DomainConflict"
    # The resource is being deleted and its sidecar client is being removed.
    DELETING = "Deleting"
    # The setup secret is shorter than the sidecar accepts.
    SETUP_SECRET_TOO_SHORT = "SetupSecretTooShort"
    # The sidecar rejected the setup secret.
    SETUP_SECRET_REJECTED = "SetupSecretRejected"
    # The sidecar's initial setup was already done, and its key is not in the API key Secret.
    INITIAL_SETUP_ALREADY_DONE = "InitialSetupAlreadyDone"


@dataclass(frozen=True)
class Outcome:
    """The conclusion of one reconcile about an object.

    ``retrying`` marks a temporary failure that is retried with backoff (Reconciling=True);
    ``stalled`` marks a state that waits for a person (Stalled=True).
    """

    ready: bool
    reason: Reason
    message: str
    retrying: bool = False
    stalled: bool = False

    @classmethod
    def synced(cls, message: str) -> Outcome:
        return cls(ready=True, reason=Reason.SYNCED, message=message)

    @classmethod
    def stalled_on(cls, reason: Reason, message: str) -> Outcome:
        return cls(ready=False, reason=reason, message=message, stalled=True)

    @classmethod
    def retrying_on(cls, reason: Reason, message: str) -> Outcome:
        return cls(ready=False, reason=reason, message=message, retrying=True)


class OutcomeError(Exception):
    """Ends a reconcile pass early with the outcome to report."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


def now_rfc3339() -> str:
    """Return the current UTC time in the format Kubernetes uses for condition times."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_conditions(
    outcome: Outcome,
    generation: int,
    previous: list[dict[str, Any]] | None,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """Return the conditions for ``outcome``, keeping transition times from ``previous``."""
    timestamp = now or now_rfc3339()
    previous_by_type = {c.get("type"): c for c in previous or [] if isinstance(c, dict)}

    def condition(type_: str, status: bool) -> dict[str, Any]:
        status_text = "True" if status else "False"
        before = previous_by_type.get(type_)
        if before is not None and before.get("status") == status_text:
            transition = before.get("lastTransitionTime") or timestamp
        else:
            transition = timestamp
        return {
            "type": type_,
            "status": status_text,
            "observedGeneration": generation,
            "lastTransitionTime": transition,
            "reason": str(outcome.reason),
            "message": outcome.message,
        }

    conditions = [condition(READY, outcome.ready)]
    if outcome.retrying:
        conditions.append(condition(RECONCILING, True))
    if outcome.stalled:
        conditions.append(condition(STALLED, True))
    return conditions


def find_condition(status: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    """Return the condition of ``type_`` from a status, or None."""
    for item in (status or {}).get("conditions") or []:
        if isinstance(item, dict) and item.get("type") == type_:
            return item
    return None


def is_ready(status: dict[str, Any] | None, generation: int | None = None) -> bool:
    """Tell whether a status has Ready=True, for ``generation`` when given."""
    ready = find_condition(status, READY)
    if ready is None or ready.get("status") != "True":
        return False
    return generation is None or ready.get("observedGeneration") == generation


def ready_reason(status: dict[str, Any] | None) -> str | None:
    """Return the reason of a status's Ready condition, or None."""
    ready = find_condition(status, READY)
    return None if ready is None else str(ready.get("reason"))
