"""Adding the youngest client to a conflict index gives what a full recomputation gives."""

from __future__ import annotations

import random

import pytest

from experio_sso.routing import ClientRoute, ConflictIndex, find_conflicts

DOMAINS = ["a.com", "b.com", "c.com", "d.com"]


def random_client(rng: random.Random, number: int) -> ClientRoute:
    domains = tuple(rng.sample(DOMAINS, rng.randint(0, 2)))
    return ClientRoute(
        name=f"client-{number:03d}",
        customer_id=None,
        email_domains=domains,
        active=rng.random() > 0.2,
        ready=True,
        creation_timestamp=f"2026-01-01T00:00:{number // 3:02d}Z",
    )


@pytest.mark.parametrize("seed", range(50))
def test_incremental_additions_match_full_recomputation(seed: int) -> None:
    rng = random.Random(seed)
    clients = [random_client(rng, number) for number in range(25)]
    index = ConflictIndex()

    for client in clients:
        assert index.add_youngest(client)

    assert index.conflicts == find_conflicts(clients)


def test_older_client_is_not_added() -> None:
    newer = ClientRoute("b", None, ("a.com",), True, True, "2026-01-01T00:00:01Z")
    older = ClientRoute("a", None, ("a.com",), True, True, "2026-01-01T00:00:00Z")
    index = ConflictIndex([newer])

    assert not index.add_youngest(older)
    assert index.conflicts == {}
    assert set(find_conflicts([newer, older])) == {"b"}
