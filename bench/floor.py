"""The floor: the least work any controller must do per SSOClient, at the operator's concurrency.

The time ratios of the convergence and deletion scenarios are taken against this script, run
in the same benchmark run on the same control plane and emulator. For each new SSOClient it
sends exactly one finalizer write, one ``CreateOidcClient`` and one status write (Ready=True);
for each deleted SSOClient, one ``DeleteOidcClient`` and one finalizer removal. It learns about
objects from two list-and-watch streams: SSOClients, and Secrets with their data, so that no
Secret is read per object. It works on ``--workers`` objects at once (default 8, the default of
EXPERIO_SSO_WORKERS), with at most ``--sidecar-concurrency`` sidecar requests in flight
(default 16).

It validates nothing, handles no conflict and retries nothing: it is a lower bound, not an
operator. It exits once ``--count`` objects are done, or with status 1 after ``--timeout``.

The integration key is read from the FLOOR_SIDECAR_API_KEY environment variable, so that it
does not appear in the process list.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import datetime
import hashlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.kube import CLIENTS, SECRETS, Kube, ObjectWatch

logger = logging.getLogger("bench.floor")

FINALIZER = "auth.experio.cloud/finalizer"
REDIRECT_URL = "https://experio.example.com/api/auth/sso/callback"
API_KEY_VARIABLE = "FLOOR_SIDECAR_API_KEY"


def customer_id(body: dict[str, Any]) -> str:
    """Return a customer ID in the operator's form: first domain (or allow-all) and 8 hex."""
    domains = body["spec"].get("emailDomains") or []
    stem = domains[0].replace(".", "-") if domains else "allow-all"
    return f"{stem}-{hashlib.sha256(body['metadata']['uid'].encode()).hexdigest()[:8]}"


def idp_info(spec: dict[str, Any], client_secret: str) -> dict[str, Any]:
    """Return ``idpInfoFromCustomer`` for the spec's identity provider."""
    idp = spec["identityProvider"]
    info: dict[str, Any] = {
        "idpType": idp["type"],
        "clientId": idp["clientId"],
        "clientSecret": client_secret,
        "usesPkce": bool(idp.get("usesPkce", False)),
    }
    for name in ("tenantId", "ssoDomain", "authUrl", "tokenUrl", "userinfoUrl"):
        if name in idp:
            info[name] = idp[name]
    return info


class Floor:
    """The minimal controller; see the module docstring."""

    def __init__(self, arguments: argparse.Namespace, api_key: str) -> None:
        self.arguments = arguments
        self.namespace: str = arguments.namespace
        self.kube = Kube.from_kubeconfig(Path(arguments.kubeconfig), max_connections=32)
        self.sidecar = httpx.AsyncClient(
            base_url=arguments.sidecar_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=30.0,
            limits=httpx.Limits(max_connections=arguments.sidecar_concurrency),
            trust_env=False,
        )
        self.sidecar_slots = asyncio.Semaphore(arguments.sidecar_concurrency)
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.queued: set[str] = set()
        self.done = 0
        self.all_done = asyncio.Event()
        self.step_seconds: collections.defaultdict[str, float] = collections.defaultdict(float)
        self.secrets: ObjectWatch | None = None
        self.clients: ObjectWatch | None = None

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Add the time spent in a step to :attr:`step_seconds`, for the exit summary."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.step_seconds[name] += time.monotonic() - started

    def on_client(self, body: dict[str, Any]) -> None:
        """Queue a client once: when new (convergence) or when marked deleted (deletion)."""
        name = body["metadata"]["name"]
        if name in self.queued:
            return
        finalizers = body["metadata"].get("finalizers") or []
        if self.arguments.mode == "converge":
            wanted = "deletionTimestamp" not in body["metadata"]
        else:
            wanted = "deletionTimestamp" in body["metadata"] and FINALIZER in finalizers
        if wanted:
            self.queued.add(name)
            self.queue.put_nowait(name)

    async def run_command(self, command: str, data: dict[str, Any]) -> None:
        async with self.sidecar_slots:
            response = await self.sidecar.post(
                "/run-command", json={"command": command, "data": data}
            )
        if response.status_code != 200 and not (
            command == "DeleteOidcClient" and "OidcClientNotFound" in response.text
        ):
            raise RuntimeError(f"{command} failed with status {response.status_code}")

    async def client_secret(self, spec: dict[str, Any]) -> str:
        """Return the client secret from the Secret watch, waiting for the Secret to arrive."""
        assert self.secrets is not None
        reference = spec["identityProvider"]["clientSecretRef"]
        key = reference.get("key", "clientSecret")
        secrets = self.secrets
        await secrets.wait(lambda: reference["name"] in secrets.objects, 60, "the client Secret")
        encoded = secrets.objects[reference["name"]]["data"][key]
        return base64.b64decode(encoded).decode()

    async def converge(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        spec = body["spec"]
        with self.step("finalizer write"):
            await self.kube.patch(
                CLIENTS, self.namespace, name, {"metadata": {"finalizers": [FINALIZER]}}
            )
        identifier = customer_id(body)
        data: dict[str, Any] = {
            "customerId": identifier,
            "redirectUrl": REDIRECT_URL,
            "displayName": spec["displayName"],
        }
        with self.step("secret wait"):
            data["idpInfoFromCustomer"] = idp_info(spec, await self.client_secret(spec))
        if spec.get("emailDomains"):
            data["emailDomainAllowlist"] = spec["emailDomains"]
        with self.step("sidecar create"):
            await self.run_command("CreateOidcClient", data)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        generation = body["metadata"]["generation"]
        status = {
            "observedGeneration": generation,
            "customerId": identifier,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "observedGeneration": generation,
                    "lastTransitionTime": now,
                    "reason": "Synced",
                    "message": "Created by the benchmark floor.",
                }
            ],
        }
        with self.step("status write"):
            await self.kube.patch(CLIENTS, self.namespace, name, {"status": status}, sub="status")

    async def delete(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        identifier = (body.get("status") or {}).get("customerId") or customer_id(body)
        with self.step("sidecar delete"):
            await self.run_command("DeleteOidcClient", {"customerId": identifier})
        with self.step("finalizer removal"):
            await self.kube.patch(CLIENTS, self.namespace, name, {"metadata": {"finalizers": None}})

    async def worker(self) -> None:
        assert self.clients is not None
        while True:
            name = await self.queue.get()
            body = self.clients.objects.get(name)
            if body is not None:
                if self.arguments.mode == "converge":
                    await self.converge(body)
                else:
                    await self.delete(body)
            self.done += 1
            if self.done >= self.arguments.count:
                self.all_done.set()

    async def run(self) -> int:
        try:
            async with (
                ObjectWatch(self.kube, SECRETS, self.namespace) as secrets,
                ObjectWatch(self.kube, CLIENTS, self.namespace, self.on_client) as clients,
            ):
                self.secrets, self.clients = secrets, clients
                for body in list(clients.objects.values()):
                    self.on_client(body)
                # The driver starts its clock after this line, once both watches are synced.
                print("floor ready", flush=True)
                workers = [
                    asyncio.create_task(self.worker()) for _ in range(self.arguments.workers)
                ]
                try:
                    async with asyncio.timeout(self.arguments.timeout):
                        done_waiter = asyncio.create_task(self.all_done.wait())
                        finished, _ = await asyncio.wait(
                            [done_waiter, *workers], return_when=asyncio.FIRST_COMPLETED
                        )
                        for task in finished:
                            if task is not done_waiter:
                                # A worker can only end by raising: report that error.
                                task.result()
                except TimeoutError:
                    logger.error(
                        "The floor did %d of %d objects before its timeout.",
                        self.done,
                        self.arguments.count,
                    )
                    return 1
                finally:
                    for task in workers:
                        task.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
            logger.info(
                "Done with %d objects; seconds per step, summed over workers: %s",
                self.done,
                {name: round(seconds, 2) for name, seconds in self.step_seconds.items()},
            )
            return 0
        finally:
            await self.sidecar.aclose()
            await self.kube.aclose()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.floor", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--kubeconfig", required=True, help="admin kubeconfig of the control plane")
    parser.add_argument("--namespace", required=True, help="namespace whose SSOClients to handle")
    parser.add_argument("--sidecar-url", required=True, help="base URL of the sidecar emulator")
    parser.add_argument("--mode", choices=["converge", "delete"], required=True)
    parser.add_argument("--count", type=int, required=True, help="objects to handle before exiting")
    parser.add_argument("--workers", type=int, default=8, help="objects handled at once")
    parser.add_argument(
        "--sidecar-concurrency", type=int, default=16, help="sidecar requests in flight at most"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before giving up")
    return parser


def main() -> int:
    arguments = build_parser().parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    api_key = os.environ.get(API_KEY_VARIABLE)
    if not api_key:
        logger.error("%s is not set; it must hold the sidecar integration key.", API_KEY_VARIABLE)
        return 2
    return asyncio.run(Floor(arguments, api_key).run())


if __name__ == "__main__":
    sys.exit(main())
