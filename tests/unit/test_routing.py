"""Routing rules as tables: conflicts, the routing table, and how an email resolves.

Case ids read as sentences, so that a failing case names the rule it breaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from experio_sso.conditions import Reason
from experio_sso.resources import parse_client_spec
from experio_sso.routing import (
    ONLY_ONE_ALLOW_ALL,
    SSO_NOT_CONFIGURED,
    SSO_NOT_ENABLED,
    ClientRoute,
    Route,
    RoutingTable,
    build_routing_table,
    find_conflicts,
    resolve_email,
    route_of,
)


def client(
    name: str,
    *domains: str,
    active: bool = True,
    ready: bool = True,
    created: str = "2026-01-01T00:00:00Z",
    customer_id: str | None = "",
) -> ClientRoute:
    """Return a client in routing's view; its customer ID defaults to ``<name>-id``."""
    return ClientRoute(
        name=name,
        customer_id=f"{name}-id" if customer_id == "" else customer_id,
        email_domains=domains,
        active=active,
        ready=ready,
        creation_timestamp=created,
    )


EARLY = "2026-01-01T00:00:00Z"
LATE = "2026-01-02T00:00:00Z"


# --- find_conflicts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConflictCase:
    clients: tuple[ClientRoute, ...]
    losers: dict[str, Reason]


CONFLICT_CASES = {
    "clients with distinct domains do not conflict": ConflictCase(
        (client("a", "acme.com"), client("b", "beta.com")), {}
    ),
    "one allow-all client next to domain clients does not conflict": ConflictCase(
        (client("all"), client("a", "acme.com")), {}
    ),
    "the younger of two allow-all clients loses": ConflictCase(
        (client("young", created=LATE), client("old", created=EARLY)),
        {"young": Reason.ALLOW_ALL_CONFLICT},
    ),
    "with equal creation times the later name loses": ConflictCase(
        (client("b"), client("a")), {"b": Reason.ALLOW_ALL_CONFLICT}
    ),
    "the younger client sharing a domain loses": ConflictCase(
        (client("old", "acme.com", created=EARLY), client("young", "acme.com", created=LATE)),
        {"young": Reason.DOMAIN_CONFLICT},
    ),
    "sharing one of several domains loses them all": ConflictCase(
        (
            client("old", "acme.com", created=EARLY),
            client("young", "beta.com", "acme.com", created=LATE),
        ),
        {"young": Reason.DOMAIN_CONFLICT},
    ),
    "an inactive older client claims nothing": ConflictCase(
        (client("old", "acme.com", active=False, created=EARLY), client("young", "acme.com")),
        {},
    ),
    "an inactive allow-all client leaves room for another": ConflictCase(
        (client("old", active=False, created=EARLY), client("young", created=LATE)), {}
    ),
    "a loser's domains are not claimed against a third client": ConflictCase(
        (
            client("first", "acme.com", created="2026-01-01T00:00:00Z"),
            client("second", "acme.com", "beta.com", created="2026-01-02T00:00:00Z"),
            client("third", "beta.com", created="2026-01-03T00:00:00Z"),
        ),
        {"second": Reason.DOMAIN_CONFLICT},
    ),
}


@pytest.mark.parametrize("case", CONFLICT_CASES.values(), ids=CONFLICT_CASES.keys())
def test_find_conflicts(case: ConflictCase) -> None:
    conflicts = find_conflicts(case.clients)

    assert {name: conflict.reason for name, conflict in conflicts.items()} == case.losers


def test_allow_all_conflict_names_the_winner() -> None:
    conflicts = find_conflicts([client("old", created=EARLY), client("young", created=LATE)])

    conflict = conflicts["young"]
    assert ONLY_ONE_ALLOW_ALL in conflict.message
    assert "'old'" in conflict.message
    assert conflict.winner == "old"


def test_domain_conflict_names_domain_and_field() -> None:
    conflicts = find_conflicts(
        [client("old", "acme.com", created=EARLY), client("young", "acme.com", created=LATE)]
    )

    conflict = conflicts["young"]
    assert "spec.emailDomains" in conflict.message
    assert "acme.com" in conflict.message
    assert conflict.winner == "old"


# --- build_routing_table ----------------------------------------------------------------------


@dataclass(frozen=True)
class TableCase:
    clients: tuple[ClientRoute, ...]
    domains: dict[str, tuple[str, bool]]
    allow_all: tuple[str, bool] | None


TABLE_CASES = {
    "no clients give an empty table": TableCase((), {}, None),
    "a ready client routes its domains as active": TableCase(
        (client("a", "acme.com", "acme.org"),),
        {"acme.com": ("a", True), "acme.org": ("a", True)},
        None,
    ),
    "a client not ready yet is routed but inactive": TableCase(
        (client("a", "acme.com", ready=False),), {"acme.com": ("a", False)}, None
    ),
    "an inactive client keeps its domains as inactive": TableCase(
        (client("a", "acme.com", active=False),), {"acme.com": ("a", False)}, None
    ),
    "an active client takes a domain from an inactive one": TableCase(
        (
            client("old", "acme.com", active=False, created=EARLY),
            client("young", "acme.com", created=LATE),
        ),
        {"acme.com": ("young", True)},
        None,
    ),
    "the allow-all client is the fallback": TableCase(
        (client("all"), client("a", "acme.com")), {"acme.com": ("a", True)}, ("all", True)
    ),
    "an inactive allow-all client is no fallback": TableCase(
        (client("all", active=False),), {}, None
    ),
    "a conflict loser is not routed": TableCase(
        (
            client("old", "acme.com", created=EARLY),
            client("young", "acme.com", "beta.com", created=LATE),
        ),
        {"acme.com": ("old", True)},
        None,
    ),
    "a client without a customer ID yet is left out": TableCase(
        (client("a", "acme.com", customer_id=None),), {}, None
    ),
}


@pytest.mark.parametrize("case", TABLE_CASES.values(), ids=TABLE_CASES.keys())
def test_build_routing_table(case: TableCase) -> None:
    table = build_routing_table(case.clients)

    assert {d: (r.client, r.active) for d, r in table.domains.items()} == case.domains
    allow_all = (table.allow_all.client, table.allow_all.active) if table.allow_all else None
    assert allow_all == case.allow_all


def test_routing_table_round_trips_through_json() -> None:
    table = build_routing_table(
        [client("all"), client("a", "acme.com"), client("g", "gamma.com", active=False)]
    )

    text = table.to_json()

    assert RoutingTable.from_json(text) == table
    assert (
        build_routing_table(
            [client("g", "gamma.com", active=False), client("a", "acme.com"), client("all")]
        ).to_json()
        == text
    )


# --- resolve_email ----------------------------------------------------------------------------

ACME = Route(client="acme", customer_id="acme-id", active=True)
GAMMA = Route(client="gamma", customer_id="gamma-id", active=False)
FALLBACK = Route(client="fallback", customer_id="fallback-id", active=True)
DORMANT_FALLBACK = Route(client="fallback", customer_id="fallback-id", active=False)

WITH_FALLBACK = RoutingTable(domains={"acme.com": ACME, "gamma.com": GAMMA}, allow_all=FALLBACK)
WITHOUT_FALLBACK = RoutingTable(domains={"acme.com": ACME, "gamma.com": GAMMA}, allow_all=None)


@dataclass(frozen=True)
class ResolveCase:
    email: str
    table: RoutingTable
    route: Route | None
    error: str | None


RESOLVE_CASES = {
    "a routed domain resolves to its client": ResolveCase(
        "jane@acme.com", WITH_FALLBACK, ACME, None
    ),
    "the domain is matched case-insensitively": ResolveCase(
        "Jane@ACME.Com", WITH_FALLBACK, ACME, None
    ),
    "only the part after the last at sign is the domain": ResolveCase(
        '"odd@name"@acme.com', WITH_FALLBACK, ACME, None
    ),
    "an inactive client's domain is not enabled": ResolveCase(
        "joe@gamma.com", WITHOUT_FALLBACK, GAMMA, SSO_NOT_ENABLED
    ),
    "an inactive domain does not fall back to allow-all": ResolveCase(
        "joe@gamma.com", WITH_FALLBACK, GAMMA, SSO_NOT_ENABLED
    ),
    "an unknown domain falls back to the allow-all client": ResolveCase(
        "sam@unknown.org", WITH_FALLBACK, FALLBACK, None
    ),
    "a subdomain is not its parent domain": ResolveCase(
        "sam@eu.acme.com", WITHOUT_FALLBACK, None, SSO_NOT_CONFIGURED
    ),
    "an unknown domain without allow-all is not configured": ResolveCase(
        "sam@unknown.org", WITHOUT_FALLBACK, None, SSO_NOT_CONFIGURED
    ),
    "an allow-all client not ready yet is no fallback": ResolveCase(
        "sam@unknown.org",
        RoutingTable(domains={}, allow_all=DORMANT_FALLBACK),
        None,
        SSO_NOT_CONFIGURED,
    ),
    "an empty table is not configured": ResolveCase(
        "sam@acme.com", RoutingTable(domains={}, allow_all=None), None, SSO_NOT_CONFIGURED
    ),
}


@pytest.mark.parametrize("case", RESOLVE_CASES.values(), ids=RESOLVE_CASES.keys())
def test_resolve_email(case: ResolveCase) -> None:
    resolution = resolve_email(case.email, case.table)

    assert resolution.route == case.route
    assert resolution.error == case.error
    assert resolution.email == case.email


@pytest.mark.parametrize("email", ["", "no-at-sign", "trailing@", "  "])
def test_resolve_email_rejects_invalid_email(email: str) -> None:
    with pytest.raises(ValueError, match="invalid email"):
        resolve_email(email, WITH_FALLBACK)


# --- route_of ---------------------------------------------------------------------------------


def ssoclient(
    *,
    domains: list[str] | None = None,
    status: dict[str, Any] | None = None,
    deleting: bool = False,
    generation: int = 1,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": "acme",
        "namespace": "ns",
        "generation": generation,
        "creationTimestamp": EARLY,
    }
    if deleting:
        metadata["deletionTimestamp"] = LATE
    spec: dict[str, Any] = {
        "displayName": "Acme",
        "identityProvider": {
            "type": "Okta",
            "clientId": "c",
            "ssoDomain": "acme.okta.com",
            "clientSecretRef": {"name": "s"},
        },
    }
    if domains is not None:
        spec["emailDomains"] = domains
    return {"metadata": metadata, "spec": spec, "status": status or {}}


def route_of_body(body: dict[str, Any]) -> ClientRoute | None:
    return route_of(body, parse_client_spec(body["spec"]))


def ready_status(generation: int) -> dict[str, Any]:
    return {
        "customerId": "acme-com-12345678",
        "conditions": [{"type": "Ready", "status": "True", "observedGeneration": generation}],
    }


def test_route_of_reads_status_and_spec() -> None:
    route = route_of_body(ssoclient(domains=["Acme.com"], status=ready_status(1)))

    assert route == client("acme", "acme.com", customer_id="acme-com-12345678", created=EARLY)


def test_route_of_stale_ready_is_not_ready() -> None:
    route = route_of_body(ssoclient(domains=["acme.com"], status=ready_status(1), generation=2))

    assert route is not None
    assert route.ready is False


def test_route_of_deleting_client_is_none() -> None:
    assert route_of_body(ssoclient(status=ready_status(1), deleting=True)) is None
