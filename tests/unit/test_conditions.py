"""Outcomes become Kubernetes conditions with stable transition times."""

from __future__ import annotations

from experio_sso.conditions import (
    Outcome,
    Reason,
    build_conditions,
    find_condition,
    is_ready,
    ready_reason,
)

EARLIER = "2026-01-01T00:00:00Z"
LATER = "2026-01-02T00:00:00Z"


def types(conditions: list[dict]) -> list[str]:
    return [c["type"] for c in conditions]


def test_synced_outcome_has_only_ready() -> None:
    conditions = build_conditions(Outcome.synced("ok"), 3, None, now=EARLIER)

    assert types(conditions) == ["Ready"]
    assert conditions[0]["status"] == "True"
    assert conditions[0]["reason"] == "Synced"
    assert conditions[0]["observedGeneration"] == 3


def test_retrying_outcome_adds_reconciling() -> None:
    outcome = Outcome.retrying_on(Reason.SIDECAR_UNAVAILABLE, "down")
    conditions = build_conditions(outcome, 1, None, now=EARLIER)

    assert types(conditions) == ["Ready", "Reconciling"]
    assert conditions[1]["status"] == "True"
    assert conditions[1]["reason"] == "SidecarUnavailable"


def test_stalled_outcome_adds_stalled_and_not_reconciling() -> None:
    outcome = Outcome.stalled_on(Reason.SECRET_NOT_FOUND, "missing")
    conditions = build_conditions(outcome, 1, None, now=EARLIER)

    assert types(conditions) == ["Ready", "Stalled"]
    assert conditions[0]["status"] == "False"


def test_transition_time_kept_while_status_unchanged() -> None:
    first = build_conditions(Outcome.stalled_on(Reason.SECRET_NOT_FOUND, "a"), 1, None, now=EARLIER)
    second = build_conditions(
        Outcome.stalled_on(Reason.SECRET_KEY_MISSING, "b"), 2, first, now=LATER
    )

    assert second[0]["lastTransitionTime"] == EARLIER
    assert second[0]["reason"] == "SecretKeyMissing"
    assert second[0]["observedGeneration"] == 2


def test_transition_time_changes_when_status_flips() -> None:
    first = build_conditions(Outcome.stalled_on(Reason.SECRET_NOT_FOUND, "a"), 1, None, now=EARLIER)
    second = build_conditions(Outcome.synced("ok"), 1, first, now=LATER)

    assert second[0]["lastTransitionTime"] == LATER
    assert types(second) == ["Ready"]


def test_same_outcome_builds_identical_conditions() -> None:
    outcome = Outcome.synced("ok")
    first = build_conditions(outcome, 4, None, now=EARLIER)

    assert build_conditions(outcome, 4, first, now=LATER) == first


def test_readiness_helpers_read_the_ready_condition() -> None:
    status = {"conditions": build_conditions(Outcome.synced("ok"), 5, None, now=EARLIER)}

    assert is_ready(status)
    assert is_ready(status, 5)
    assert not is_ready(status, 6)
    assert ready_reason(status) == "Synced"
    assert find_condition(status, "Stalled") is None
    assert not is_ready(None)
