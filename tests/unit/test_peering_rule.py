"""The peering gate applies kopf's rule: run unless a live peer has an equal or higher priority."""

from __future__ import annotations

import datetime

import pytest

from experio_sso.peering import may_run

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


def peer(priority: int, seconds_ago: int, lifetime: int = 20) -> dict[str, object]:
    lastseen = (NOW - datetime.timedelta(seconds=seconds_ago)).isoformat()
    return {"priority": priority, "lifetime": lifetime, "lastseen": lastseen}


@pytest.mark.parametrize(
    ("peers", "allowed"),
    [
        ({}, True),
        ({"me": peer(10, 0)}, True),
        ({"me": peer(10, 0), "other": peer(5, 0)}, True),
        ({"me": peer(10, 0), "other": peer(20, 0)}, False),
        ({"me": peer(10, 0), "other": peer(10, 0)}, False),
        ({"me": peer(10, 0), "other": peer(20, 30)}, True),
        ({"me": peer(10, 0), "other": {"priority": 20}}, True),
    ],
    ids=[
        "no peers at all lets it run",
        "only itself lets it run",
        "a lower priority peer lets it run",
        "a higher priority live peer pauses it",
        "an equal priority live peer pauses it",
        "an expired higher priority peer lets it run",
        "a malformed peer entry is ignored",
    ],
)
def test_may_run(peers: dict[str, object], allowed: bool) -> None:
    assert may_run(peers, "me", 10, NOW) is allowed
