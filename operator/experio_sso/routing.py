"""Routing of emails to SSOClients: conflict rules, the routing table, and email resolution.

Pure functions, shared by the controllers (to decide which clients are routed and to render
``sso-routes.json``) and by ``experio-sso resolve`` (to resolve one email). There is exactly
one resolution function, :func:`resolve_email`, and both the table and the command use it.

Rules, per namespace:

- Only active clients claim anything. The oldest (creation time, then name) wins.
- At most one active allow-all client (a client without email domains).
- Each email domain is claimed by at most one active client. A client that would share any of
  its domains with an older one loses as a whole: none of its domains are routed.
- A loser recovers by itself once the older client is gone, deactivated or changed.
- An email's domain (lowercased) is looked up among the routed domains. A match whose client is
  inactive (or not Ready) rejects the login; no match falls back to the active allow-all client.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from experio_sso.conditions import Reason, is_ready
from experio_sso.resources import ClientSpec

SSO_NOT_ENABLED = "SSO not enabled for this organization"
SSO_NOT_CONFIGURED = "SSO not configured for this organization"
ONLY_ONE_ALLOW_ALL = "Only one allow-all client is supported"


@dataclass(frozen=True)
class ClientRoute:
    """One SSOClient with the fields that routing reads."""

    name: str
    customer_id: str | None
    email_domains: tuple[str, ...]
    active: bool
    ready: bool
    creation_timestamp: str

    @property
    def allows_all_domains(self) -> bool:
        return not self.email_domains

    @property
    def age_key(self) -> tuple[str, str]:
        # RFC 3339 timestamps in UTC with a fixed format sort correctly as strings.
        return (self.creation_timestamp, self.name)


def route_of(body: Mapping[str, Any], spec: ClientSpec | None) -> ClientRoute | None:
    """Return the routing view of an SSOClient object and its parsed spec.

    None while the object is being deleted or its spec does not parse.
    """
    metadata = body["metadata"]
    if metadata.get("deletionTimestamp") or spec is None:
        return None
    status = body.get("status") or {}
    return ClientRoute(
        name=str(metadata["name"]),
        customer_id=status.get("customerId") or spec.customer_id,
        email_domains=spec.email_domains,
        active=spec.active,
        ready=is_ready(status, metadata.get("generation")),
        creation_timestamp=str(metadata.get("creationTimestamp") or ""),
    )


@dataclass(frozen=True)
class Conflict:
    """Why a client is not routed: the reason and a message naming the older client."""

    reason: Reason
    message: str
    winner: str


class ConflictIndex:
    """The conflicts of one namespace, with the owners of the allow-all slot and of each domain.

    The index is built from all clients at once, or extended by :meth:`add_youngest` with a
    client younger than every client in it. Such a client cannot change an older client's
    outcome, so adding it costs a look-up of its own domains instead of a namespace pass.
    """

    def __init__(self, clients: Iterable[ClientRoute] = ()) -> None:
        self.conflicts: dict[str, Conflict] = {}
        self._allow_all_owner: str | None = None
        self._domain_owners: dict[str, str] = {}
        self._youngest: tuple[str, str] | None = None
        for client in sorted(clients, key=lambda c: c.age_key):
            self._add(client)

    def add_youngest(self, client: ClientRoute) -> bool:
        """Add a client younger than all others; return False (and add nothing) otherwise."""
        if self._youngest is not None and client.age_key <= self._youngest:
            return False
        self._add(client)
        return True

    def _add(self, client: ClientRoute) -> None:
        self._youngest = client.age_key
        if not client.active:
            return

        if client.allows_all_domains:
            if self._allow_all_owner is None:
                self._allow_all_owner = client.name
            else:
                self.conflicts[client.name] = Conflict(
                    reason=Reason.ALLOW_ALL_CONFLICT,
                    message=(
                        f"{ONLY_ONE_ALLOW_ALL} per namespace: the older SSOClient "
                        f"'{self._allow_all_owner}' allows all domains. Set spec.emailDomains, "
                        "set spec.active to false, or remove one of the two."
                    ),
                    winner=self._allow_all_owner,
                )
            return

        taken = [domain for domain in client.email_domains if domain in self._domain_owners]
        if taken:
            owner = self._domain_owners[taken[0]]
            self.conflicts[client.name] = Conflict(
                reason=Reason.DOMAIN_CONFLICT,
                message=(
                    f"spec.emailDomains: {', '.join(taken)} already claimed by the older "
                    f"SSOClient '{owner}'. Remove the domain from one of them or deactivate one."
                ),
                winner=owner,
            )
            return
        for domain in client.email_domains:
            self._domain_owners[domain] = client.name


def find_conflicts(clients: Iterable[ClientRoute]) -> dict[str, Conflict]:
    """Return the losing clients by name; every active client not in the result is routed."""
    return ConflictIndex(clients).conflicts


@dataclass(frozen=True)
class Route:
    """A routing table entry: which client serves a domain, and whether it takes logins."""

    client: str
    customer_id: str
    active: bool

    def to_json(self) -> dict[str, Any]:
        return {"client": self.client, "customerId": self.customer_id, "active": self.active}


@dataclass(frozen=True)
class RoutingTable:
    """The content of ``sso-routes.json``."""

    domains: Mapping[str, Route]
    allow_all: Route | None

    def to_json(self) -> str:
        """Serialise deterministically, so an unchanged table renders the same bytes."""
        document = {
            "domains": {domain: route.to_json() for domain, route in sorted(self.domains.items())},
            "allowAll": self.allow_all.to_json() if self.allow_all else None,
        }
        return json.dumps(document, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RoutingTable:
        document = json.loads(text)

        def route(item: dict[str, Any]) -> Route:
            return Route(
                client=str(item["client"]),
                customer_id=str(item["customerId"]),
                active=bool(item["active"]),
            )

        allow_all = document.get("allowAll")
        return cls(
            domains={domain: route(item) for domain, item in document.get("domains", {}).items()},
            allow_all=route(allow_all) if allow_all else None,
        )


def build_routing_table(clients: Iterable[ClientRoute]) -> RoutingTable:
    """Return the routing table for one namespace's clients.

    Routed active clients take logins only once Ready (their sidecar client exists as
    specified). Inactive clients keep their domains in the table, marked inactive, unless an
    active client claims the domain, so that their users get "SSO not enabled" instead of
    falling through to the allow-all client.
    """
    clients = sorted(clients, key=lambda c: c.age_key)
    conflicts = find_conflicts(clients)
    domains: dict[str, Route] = {}
    allow_all: Route | None = None

    for client in clients:
        if not client.active or client.name in conflicts or client.customer_id is None:
            continue
        route = Route(client=client.name, customer_id=client.customer_id, active=client.ready)
        if client.allows_all_domains:
            allow_all = route
        for domain in client.email_domains:
            domains[domain] = route

    for client in clients:
        if client.active or client.customer_id is None:
            continue
        for domain in client.email_domains:
            domains.setdefault(
                domain, Route(client=client.name, customer_id=client.customer_id, active=False)
            )

    return RoutingTable(domains=domains, allow_all=allow_all)


@dataclass(frozen=True)
class Resolution:
    """Destination of an email's login: a client, or the error the login page shows."""

    email: str
    route: Route | None
    error: str | None


def resolve_email(email: str, table: RoutingTable) -> Resolution:
    """Resolve an email to the client that serves its domain, or to the login error.

    Raises ValueError when ``email`` has no ``@`` followed by a domain.
    """
    _, separator, domain = email.strip().rpartition("@")
    if not separator or not domain:
        raise ValueError(f"invalid email {email!r}: expected local-part@domain")
    domain = domain.lower()

    route = table.domains.get(domain)
    if route is not None:
        if route.active:
            return Resolution(email=email, route=route, error=None)
        return Resolution(email=email, route=route, error=SSO_NOT_ENABLED)

    if table.allow_all is not None and table.allow_all.active:
        return Resolution(email=email, route=table.allow_all, error=None)
    return Resolution(email=email, route=None, error=SSO_NOT_CONFIGURED)
