"""Run the benchmark scenarios and write their figures to bench/results/ (``make bench``).

One control plane (etcd and kube-apiserver on loopback) and one in-process sidecar emulator
serve every scenario. Each scenario gets fresh namespaces and its own operator subprocess
(``experio-sso run --namespace``), so that scenarios do not see each other's objects. The floor
(``bench/floor.py``) runs against the same control plane and emulator just before the operator,
and the time ratios are taken against it.

Counting: Kubernetes requests come from the API server's ``apiserver_request_total`` (by verb,
resource and subresource) minus the requests this driver sent itself (see ``bench.kube``);
sidecar requests from the emulator's counters and request log; operator CPU time from
/proc/<pid>/stat and peak resident memory from VmHWM in /proc/<pid>/status.

``--scale`` multiplies every object count and the idle duration, for a quick run while
developing; the default (1.0) is the full benchmark. ``--only`` picks scenarios.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import datetime
import json
import logging
import math
import os
import platform
import secrets
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tests.support.control_plane import REPOSITORY_ROOT, ControlPlane

from bench.kube import (
    CLIENTS,
    NAMESPACES,
    READ_VERBS,
    SECRETS,
    SETTINGS,
    WRITE_VERBS,
    Kube,
    ObjectWatch,
    RequestKey,
)
from bench.processes import Child, cpu_seconds, memory_kib, start_floor, start_operator
from propelauth_emulator import EmulatorServer

logger = logging.getLogger("bench")

SCENARIOS = ("convergence", "latency", "idle", "memory", "rotation", "scaling", "deletion")
RESULTS_DIR = REPOSITORY_ROOT / "bench" / "results"
APPLY_CONCURRENCY = 16
"""Creates and deletes the driver sends at once when it applies objects "at once"."""
QUIET_SECONDS = 3.0
"""A namespace counts as settled once no Kubernetes write has happened for this long."""
API_SERVER_OWN_RESOURCES = frozenset({"leases"})
"""Resources only the API server itself writes here: its identity lease, renewed every 10 s.

The operator runs without peering in these scenarios, so it writes no lease."""
DEFAULT_IDLE_DRIFT_SECONDS = 300
"""The operator's default drift interval; a shorter one shows the spread over more rounds."""
DRIFT_COMMANDS = frozenset({"FetchOidcClient", "Ping"})
"""Sidecar reads of the drift schedule: a Fetch per client and a Ping per settings, per interval."""
BUCKET_SECONDS = 10
UNRELATED_SECRET_BYTES = 100 * 1024


def convergence_limit(count: int) -> float:
    """Seconds to wait for ``count`` objects before the scenario fails: generous, but bounded."""
    return 120.0 + 0.5 * count


# --- results -----------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured figure, with its target and whether the target was met."""

    scenario: str
    name: str
    value: float | None
    unit: str
    target: str = ""
    met: bool | None = None
    latency_ms: float | None = None
    load_average: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def result(self) -> str:
        if self.value is None:
            return "not measured"
        shown = f"{self.value:.3g}" if abs(self.value) < 1000 else f"{self.value:.0f}"
        verdict = ""
        if self.met is not None:
            verdict = " (met)" if self.met else " (MISSED)"
        return f"{shown} {self.unit}{verdict}".strip()


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def load_average() -> float:
    return os.getloadavg()[0]


# --- the benchmark ---------------------------------------------------------------------------


@dataclass
class Population:
    """One namespace with settings, N clients and their operator."""

    namespace: str
    names: list[str]
    operator: Child | None
    watch: ObjectWatch


class Bench:
    """The control plane, the emulator, the driver's API client and the figures so far."""

    def __init__(self, arguments: argparse.Namespace, cluster: ControlPlane) -> None:
        self.arguments = arguments
        self.scale: float = arguments.scale
        self.cluster = cluster
        self.kube = Kube.from_kubeconfig(cluster.kubeconfig, max_connections=APPLY_CONCURRENCY * 2)
        self.emulator = EmulatorServer(
            arguments.run_dir / "emulator.sqlite3", setup_secret=secrets.token_urlsafe(24)
        )
        self.figures: list[Figure] = []
        self.latency_ms = 0.0
        self.api_keys: dict[str, str] = {}
        self._namespace_numbers = iter(range(1, 10_000))
        self.children: list[Child] = []

    def count(self, full: int) -> int:
        return max(1, round(full * self.scale))

    def add(self, scenario: str, name: str, value: float | None, unit: str, **extra: Any) -> Figure:
        figure = Figure(
            scenario, name, value, unit, latency_ms=self.latency_ms, load_average=load_average()
        )
        for key, item in extra.items():
            setattr(figure, key, item)
        self.figures.append(figure)
        logger.info("%s / %s: %s", scenario, name, figure.result())
        return figure

    # --- namespaces and objects ------------------------------------------------------------

    async def new_namespace(self, label: str) -> str:
        namespace = f"bench-{label}-{next(self._namespace_numbers)}"
        await self.kube.create(NAMESPACES, None, {"metadata": {"name": namespace}})
        return namespace

    async def create_settings(self, namespace: str) -> None:
        """Create the API key Secret and settings that can become Ready in ``namespace``."""
        key = await self.emulator.mint_key()
        self.api_keys[namespace] = key
        await self.kube.create(SECRETS, namespace, secret_body("propelauth-api-key", "apiKey", key))
        await self.kube.create(
            SETTINGS,
            namespace,
            {
                "apiVersion": "auth.experio.cloud/v1alpha1",
                "kind": "ExperioAuthSettings",
                "metadata": {"name": "experio"},
                "spec": {
                    "publicUrl": "https://experio.example.com",
                    "useSSO": True,
                    "allowHybridLogin": True,
                    "sidecar": {"url": self.emulator.url},
                },
            },
        )

    async def wait_settings_ready(self, namespace: str) -> None:
        async with ObjectWatch(self.kube, SETTINGS, namespace) as watch:
            await watch.wait(lambda: "experio" in watch.ready, 120, "the settings to be Ready")

    async def apply_clients(self, namespace: str, names: Iterable[str]) -> None:
        """Create each client's Secret and then the client, ``APPLY_CONCURRENCY`` at a time."""
        slots = asyncio.Semaphore(APPLY_CONCURRENCY)

        async def one(name: str) -> None:
            async with slots:
                await self.kube.create(
                    SECRETS, namespace, secret_body(f"{name}-idp", "clientSecret", f"{name}-v1")
                )
                await self.kube.create(CLIENTS, namespace, client_body(namespace, name))

        await asyncio.gather(*(one(name) for name in names))

    async def delete_clients(self, namespace: str, names: Iterable[str]) -> None:
        slots = asyncio.Semaphore(APPLY_CONCURRENCY)

        async def one(name: str) -> None:
            async with slots:
                await self.kube.delete(CLIENTS, namespace, name)

        await asyncio.gather(*(one(name) for name in names))

    async def operator(self, namespace: str, drift_seconds: float | None = None) -> Child:
        environment = {}
        if drift_seconds is not None:
            environment["EXPERIO_SSO_DRIFT_INTERVAL_SECONDS"] = str(drift_seconds)
        profile = None
        if self.arguments.profile:
            # A restarted operator gets a new file, so each profile covers one process.
            profile = self.arguments.run_dir / f"operator-{namespace}-{len(self.children)}.prof"
        child = await start_operator(
            self.cluster.kubeconfig,
            namespace,
            self.arguments.run_dir / f"operator-{namespace}.log",
            environment,
            profile,
        )
        self.children.append(child)
        return child

    # --- counting ------------------------------------------------------------------------------

    async def snapshot(
        self,
    ) -> tuple[collections.Counter[RequestKey], collections.Counter[RequestKey]]:
        return await self.kube.request_totals(), collections.Counter(self.kube.sent)

    async def others_since(
        self, before: tuple[collections.Counter[RequestKey], collections.Counter[RequestKey]]
    ) -> collections.Counter[RequestKey]:
        """Return the API requests since ``before`` that this driver did not send."""
        server_before, sent_before = before
        server_after, sent_after = await self.snapshot()
        others = server_after.copy()
        others.subtract(server_before)
        others.subtract(sent_after)
        others.update(sent_before)
        return collections.Counter(
            {
                key: value
                for key, value in others.items()
                if value > 0 and key[1] not in API_SERVER_OWN_RESOURCES
            }
        )

    async def wait_quiet(self, limit_seconds: float = 60.0) -> None:
        """Wait until the API server saw no write for ``QUIET_SECONDS``, or ``limit_seconds`` pass.

        Only writes from others count: the driver's own and the API server's lease renewals
        are left out.
        """
        start = await self.snapshot()
        deadline = time.monotonic() + limit_seconds
        last = -1
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            current = writes_of(await self.others_since(start))
            if current != last:
                last, quiet_since = current, time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_SECONDS:
                return
            await asyncio.sleep(0.5)
        logger.warning("Writes had not stopped after %.0f s; measuring anyway.", limit_seconds)

    # --- convergence -------------------------------------------------------------------------

    async def converge(
        self, label: str, count: int, *, floor: bool = False
    ) -> tuple[Population, dict[str, Any]]:
        """Apply ``count`` clients at once to a fresh namespace; time until all are Ready.

        With ``floor`` the floor handles them instead of the operator.
        """
        namespace = await self.new_namespace(label)
        names = [f"c{index:05d}" for index in range(count)]
        operator = None
        floor_process = None
        if floor:
            self.api_keys[namespace] = await self.emulator.mint_key()
            floor_process = await start_floor(
                self.cluster.kubeconfig,
                namespace,
                self.emulator.url,
                self.api_keys[namespace],
                "converge",
                count,
                self.arguments.run_dir / f"floor-{namespace}.log",
            )
        else:
            await self.create_settings(namespace)
            operator = await self.operator(namespace)
            await self.wait_settings_ready(namespace)
            await self.wait_quiet()

        watch = ObjectWatch(self.kube, CLIENTS, namespace)
        await watch.__aenter__()
        before = await self.snapshot()
        self.emulator.reset_counters()
        cpu_before = cpu_seconds(operator.pid) if operator else 0.0
        started = time.monotonic()
        await self.apply_clients(namespace, names)
        applied = time.monotonic()
        finished = await watch.wait(
            lambda: len(watch.ready) >= count, convergence_limit(count), f"{count} clients Ready"
        )
        cpu_after = cpu_seconds(operator.pid) if operator else 0.0
        if floor_process is not None:
            async with asyncio.timeout(60):
                await floor_process.process.wait()
        await self.wait_quiet()
        others = await self.others_since(before)
        result = {
            "namespace": namespace,
            "count": count,
            "seconds": finished - started,
            "apply_seconds": applied - started,
            "writes": writes_of(others),
            "writes_by_request": by_request(others, WRITE_VERBS),
            "reads_by_request": by_request(others, READ_VERBS),
            "sidecar": self.emulator.counters,
            "operator_cpu_seconds": cpu_after - cpu_before,
        }
        return Population(namespace, names, operator, watch), result

    async def floor_delete(self, population: Population) -> float:
        """Delete a floor population's clients; return seconds until gone from both sides."""
        namespace = population.namespace
        count = len(population.names)
        customer_ids = customer_ids_of(population)
        floor_process = await start_floor(
            self.cluster.kubeconfig,
            namespace,
            self.emulator.url,
            self.api_keys[namespace],
            "delete",
            count,
            self.arguments.run_dir / f"floor-delete-{namespace}.log",
        )
        seconds = await self.timed_delete(population, customer_ids)
        async with asyncio.timeout(60):
            await floor_process.process.wait()
        return seconds

    async def timed_delete(self, population: Population, customer_ids: set[str]) -> float:
        watch = population.watch
        names = set(population.names)
        started = time.monotonic()
        await self.delete_clients(population.namespace, population.names)
        await watch.wait(
            lambda: not names & watch.objects.keys(),
            convergence_limit(len(names)),
            "clients to be gone",
        )

        async def sidecar_empty() -> bool:
            stored = {client.get("customerId") for client in self.emulator.clients()}
            return not stored & customer_ids

        deadline = time.monotonic() + 120
        while not await sidecar_empty():
            if time.monotonic() > deadline:
                raise TimeoutError("sidecar clients were not deleted within 120 s")
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    # --- scenarios -------------------------------------------------------------------------------

    def report_convergence(
        self, label: str, result: dict[str, Any], floor_result: dict[str, Any] | None
    ) -> None:
        count = result["count"]
        self.add(
            label,
            f"time to Ready, {count} clients",
            result["seconds"],
            "s",
            detail={"apply_seconds": result["apply_seconds"]},
        )
        if floor_result is not None:
            ratio = result["seconds"] / floor_result["seconds"]
            self.add(label, "floor time to Ready", floor_result["seconds"], "s")
            self.add(label, "time / floor", ratio, "x", target="<= 1.5x", met=ratio <= 1.5)
        writes = result["writes"] / count
        event_writes = sum(
            value
            for request, value in result["writes_by_request"].items()
            if request.split()[1] == "events"
        )
        self.add(
            label,
            "Kubernetes writes per object",
            writes,
            "writes",
            target="<= 4",
            met=writes <= 4,
            detail={"operator": result["writes_by_request"], "events": event_writes},
        )
        if floor_result is not None:
            self.add(
                label,
                "floor Kubernetes writes per object",
                floor_result["writes"] / count,
                "writes",
                detail={"floor": floor_result["writes_by_request"]},
            )
        calls = sum(sum(outcomes.values()) for outcomes in result["sidecar"].values())
        self.add(
            label, "sidecar calls per object", calls / count, "calls", detail=result["sidecar"]
        )
        self.add(label, "operator CPU time", result["operator_cpu_seconds"], "s")

    async def scenario_latency(self, population: Population) -> None:
        """Create one client at a time while the population exists; time apply to Ready."""
        trials = max(5, self.count(50))
        watch = population.watch
        durations = []
        for trial in range(trials):
            name = f"lat{self.latency_ms:.0f}-{trial:03d}"
            started = time.monotonic()
            await self.apply_clients(population.namespace, [name])
            finished = await watch.wait(partial(set.__contains__, watch.ready, name), 60, name)
            durations.append(finished - started)
        target = "< 1 s at 0 ms" if self.latency_ms == 0 else ""
        p95 = percentile(durations, 0.95)
        self.add(
            "latency",
            f"p95 apply to Ready ({trials} trials, {len(population.names)} existing)",
            p95,
            "s",
            target=target,
            met=(p95 < 1.0) if self.latency_ms == 0 else None,
            detail={"durations": durations},
        )
        self.add("latency", "median apply to Ready", statistics.median(durations), "s")
        self.add("latency", "max apply to Ready", max(durations), "s")
        await self.wait_quiet()

    async def scenario_rotation(self, population: Population) -> None:
        """Change a client's Secret; time until the sidecar stores the new client secret."""
        trials = max(5, self.count(20))
        ids = {
            name: population.watch.objects[name]["status"]["customerId"]
            for name in population.names
        }
        durations = []
        for trial in range(trials):
            name = population.names[trial % len(population.names)]
            value = f"{name}-rotated-{self.latency_ms:.0f}-{trial}"
            started = time.monotonic()
            await self.kube.patch(
                SECRETS,
                population.namespace,
                f"{name}-idp",
                {"data": {"clientSecret": base64.b64encode(value.encode()).decode()}},
            )
            deadline = started + 30
            while not self.emulator.secret_matches(ids[name], value):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the sidecar did not get the new secret of {name} in 30 s")
                await asyncio.sleep(0.01)
            durations.append(time.monotonic() - started)
        p95 = percentile(durations, 0.95)
        self.add(
            "rotation",
            f"p95 Secret change to sidecar ({trials} trials)",
            p95,
            "s",
            target="< 2 s",
            met=p95 < 2.0,
            detail={"durations": durations},
        )
        self.add("rotation", "median Secret change to sidecar", statistics.median(durations), "s")
        # The status write that records the new Secret version follows the sidecar patch.
        await self.wait_quiet()

    async def scenario_idle(self, population: Population) -> None:
        """Restart the operator with the idle drift interval and measure a quiet window."""
        assert population.operator is not None
        await population.operator.stop()
        before = await self.snapshot()
        self.emulator.reset_counters()
        started = time.monotonic()
        population.operator = await self.operator(
            population.namespace, drift_seconds=self.arguments.idle_drift_seconds
        )
        await self.wait_quiet()
        restart = await self.others_since(before)
        self.add(
            "idle",
            "writes after a restart with all clients Ready",
            writes_of(restart),
            "writes",
            detail={
                "writes": by_request(restart, WRITE_VERBS),
                "reads": by_request(restart, READ_VERBS),
                "sidecar": self.emulator.counters,
                "seconds_until_quiet": time.monotonic() - started,
            },
        )

        duration = self.arguments.idle_seconds or max(60.0, 300.0 * self.scale)
        pid = population.operator.pid
        before = await self.snapshot()
        self.emulator.reset_counters()
        cpu_before = cpu_seconds(pid)
        window_start = time.time()
        started = time.monotonic()
        # Nothing changes during the window: measuring idle cost is the point of waiting here.
        await asyncio.sleep(duration)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(pid) - cpu_before
        others = await self.others_since(before)
        records = [r for r in self.emulator.request_log if r.started_at >= window_start]
        fetches = [r.started_at for r in records if r.command in DRIFT_COMMANDS]
        other_calls = collections.Counter(
            str(r.command) for r in records if r.command not in DRIFT_COMMANDS
        )
        buckets = collections.Counter(int((t - window_start) // BUCKET_SECONDS) for t in fetches)
        bucket_count = max(1, int(elapsed // BUCKET_SECONDS))
        counts = [buckets.get(index, 0) for index in range(bucket_count)]
        mean = statistics.fmean(counts) if counts else 0.0
        # One Fetch per client and one Ping for the settings per drift interval.
        expected = (len(population.watch.objects) + 1) * elapsed / self.arguments.idle_drift_seconds
        writes = writes_of(others)
        self.add(
            "idle",
            f"Kubernetes writes in {elapsed:.0f} s",
            writes,
            "writes",
            target="0",
            met=writes == 0,
            detail={
                "writes": by_request(others, WRITE_VERBS),
                "reads": by_request(others, READ_VERBS),
            },
        )
        self.add(
            "idle",
            "sidecar drift reads (Fetch and Ping)",
            len(fetches),
            "reads",
            detail={"expected": expected, "other_commands": dict(other_calls)},
        )
        self.add(
            "idle",
            "other sidecar calls (writes)",
            sum(other_calls.values()),
            "calls",
            target="0",
            met=not other_calls,
        )
        peak_ratio = max(counts) / mean if mean else 0.0
        self.add(
            "idle",
            f"max / mean sidecar reads per {BUCKET_SECONDS} s bucket",
            peak_ratio,
            "x",
            detail={"buckets": counts, "mean": mean},
        )
        cpu_percent = 100.0 * cpu / elapsed
        self.add(
            "idle",
            "operator CPU (share of one core)",
            cpu_percent,
            "%",
            target="< 2%",
            met=cpu_percent < 2.0,
        )

    async def scenario_deletion(self, population: Population, floor: Population) -> None:
        floor_seconds = await self.floor_delete(floor)
        await self.wait_quiet()
        before = await self.snapshot()
        self.emulator.reset_counters()
        seconds = await self.timed_delete(population, customer_ids_of(population))
        await self.wait_quiet()
        others = await self.others_since(before)
        count = len(population.names)
        ratio = seconds / floor_seconds
        self.add(
            "deletion",
            f"time to delete {count} clients",
            seconds,
            "s",
            detail={
                "writes": by_request(others, WRITE_VERBS),
                "reads": by_request(others, READ_VERBS),
                "sidecar": self.emulator.counters,
            },
        )
        self.add("deletion", "Kubernetes writes per object", writes_of(others) / count, "writes")
        self.add("deletion", "floor time to delete", floor_seconds, "s")
        self.add("deletion", "time / floor", ratio, "x", target="<= 1.5x", met=ratio <= 1.5)

    async def scenario_scaling_and_memory(self, selected: set[str]) -> None:
        sizes = [self.count(size) for size in (100, 500, 1000, 2000)]
        if "scaling" not in selected:
            sizes = sizes[-1:]
        per_object: dict[int, float] = {}
        largest: Population | None = None
        for size in sizes:
            population, result = await self.converge(f"scale{size}", size)
            per_object[size] = result["seconds"] / size
            if "scaling" in selected:
                self.add(
                    "scaling",
                    f"time to Ready, {size} clients",
                    result["seconds"],
                    "s",
                    detail={"per_object_ms": 1000 * per_object[size]},
                )
            if size == sizes[-1]:
                largest = population
            else:
                await self.retire(population)
        if "scaling" in selected:
            ratio = per_object[sizes[-1]] / per_object[sizes[0]]
            self.add(
                "scaling",
                f"time per object at {sizes[-1]} / at {sizes[0]}",
                ratio,
                "x",
                target="<= 1.3x",
                met=ratio <= 1.3,
                detail={"per_object_ms": {str(k): 1000 * v for k, v in per_object.items()}},
            )
        assert largest is not None
        if "memory" in selected:
            await self.scenario_memory(largest)
        await self.retire(largest)

    async def scenario_memory(self, population: Population) -> None:
        assert population.operator is not None
        pid = population.operator.pid
        memory = memory_kib(pid)
        count = len(population.names)
        peak = memory["VmHWM"] / 1024
        self.add(
            "memory",
            f"peak RSS with {count} Ready clients",
            peak,
            "MB",
            target="< 150 MB",
            met=peak < 150,
            detail={"rss_mb": memory["VmRSS"] / 1024},
        )

        unrelated = self.count(2000)
        payload = base64.b64encode(os.urandom(UNRELATED_SECRET_BYTES * 3 // 4)).decode()
        slots = asyncio.Semaphore(APPLY_CONCURRENCY)

        async def one(index: int) -> None:
            async with slots:
                await self.kube.create(
                    SECRETS,
                    population.namespace,
                    {"metadata": {"name": f"unrelated-{index:05d}"}, "data": {"blob": payload}},
                )

        await asyncio.gather(*(one(index) for index in range(unrelated)))
        await self.wait_rss_stable(pid)
        after = memory_kib(pid)
        growth = (after["VmHWM"] - memory["VmHWM"]) / 1024
        self.add(
            "memory",
            f"peak RSS growth with {unrelated} unrelated 100 KB Secrets",
            growth,
            "MB",
            target="< 20 MB",
            met=growth < 20,
            detail={"peak_mb": after["VmHWM"] / 1024, "rss_mb": after["VmRSS"] / 1024},
        )

    async def wait_rss_stable(self, pid: int, limit_seconds: float = 60.0) -> None:
        """Wait until the peak resident set has not grown for 5 s, at most ``limit_seconds``."""
        deadline = time.monotonic() + limit_seconds
        last = memory_kib(pid)["VmHWM"]
        stable_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - stable_since < 5:
            await asyncio.sleep(0.5)
            current = memory_kib(pid)["VmHWM"]
            if current != last:
                last, stable_since = current, time.monotonic()

    async def retire(self, population: Population) -> None:
        """Stop a population's operator and watch; its objects stay (no namespace controller)."""
        if population.operator is not None:
            await population.operator.stop()
        await population.watch.__aexit__(None, None, None)

    async def run(self) -> None:
        selected = set(self.arguments.only)
        needs_main = selected & {"convergence", "latency", "idle", "rotation", "deletion"}
        count = self.count(500)
        await self.emulator.start()
        try:
            for latency in self.arguments.latency_ms:
                self.latency_ms = latency
                self.emulator.set_faults(latency_ms=latency)
                if needs_main:
                    floor = None
                    floor_result = None
                    if selected & {"convergence", "deletion"}:
                        floor, floor_result = await self.converge("floor", count, floor=True)
                    main, result = await self.converge("main", count)
                    if "convergence" in selected:
                        self.report_convergence("convergence", result, floor_result)
                    if "latency" in selected:
                        await self.scenario_latency(main)
                    if "rotation" in selected:
                        await self.scenario_rotation(main)
                    if "idle" in selected and latency == self.arguments.latency_ms[0]:
                        await self.scenario_idle(main)
                    if "deletion" in selected:
                        assert floor is not None
                        await self.scenario_deletion(main, floor)
                    if floor is not None:
                        await self.retire(floor)
                    await self.retire(main)
                if selected & {"scaling", "memory"} and latency == self.arguments.latency_ms[0]:
                    await self.scenario_scaling_and_memory(selected)
        finally:
            for child in self.children:
                await child.stop()
            await self.emulator.stop()
            await self.kube.aclose()


# --- manifests and helpers ---------------------------------------------------------------------


def secret_body(name: str, key: str, value: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode()},
    }


def client_body(namespace: str, name: str) -> dict[str, Any]:
    """Return an SSOClient; IdP client IDs are unique per sidecar, so they name the namespace."""
    return {
        "apiVersion": "auth.experio.cloud/v1alpha1",
        "kind": "SSOClient",
        "metadata": {"name": name},
        "spec": {
            "displayName": f"Bench {name}",
            "emailDomains": [f"{name}.bench.example.com"],
            "identityProvider": {
                "type": "MicrosoftEntra",
                "clientId": f"{namespace}-{name}",
                "tenantId": "11111111-2222-3333-4444-555555555555",
                "clientSecretRef": {"name": f"{name}-idp"},
            },
        },
    }


def customer_ids_of(population: Population) -> set[str]:
    return {
        str(population.watch.objects[name]["status"]["customerId"])
        for name in population.names
        if name in population.watch.objects
    }


def writes_of(totals: collections.Counter[RequestKey]) -> int:
    return sum(value for (verb, _, _), value in totals.items() if verb in WRITE_VERBS)


def by_request(totals: collections.Counter[RequestKey], verbs: frozenset[str]) -> dict[str, int]:
    """Return ``{"PATCH ssoclients/status": 500, ...}`` for the given verbs."""
    counts = {}
    for (verb, resource, subresource), value in sorted(totals.items()):
        if verb not in verbs:
            continue
        path = f"{resource}/{subresource}" if subresource else resource
        counts[f"{verb} {path}"] = value
    return counts


# --- output ------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def write_results(bench: Bench, started: datetime.datetime, load_before: float) -> Path:
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    host = machine()
    record: dict[str, Any] = {
        "started": started.isoformat(),
        "arguments": {
            "scale": bench.scale,
            "only": bench.arguments.only,
            "latency_ms": bench.arguments.latency_ms,
        },
        "machine": host,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "figures": [asdict(figure) for figure in bench.figures],
    }
    json_path = RESULTS_DIR / f"bench-{stamp}.json"
    json_path.write_text(json.dumps(record, indent=2, default=str))

    lines = [
        f"# Benchmark run {started.isoformat(timespec='seconds')}",
        "",
        f"Scale {bench.scale}; {host['cpus']} CPUs ({host['cpu_model']}); 1-minute load "
        f"average {load_before:.1f} before, {record['load_average_after']:.1f} after.",
        "",
        "| scenario | sidecar latency | figure | target | result | load |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for figure in bench.figures:
        lines.append(
            f"| {figure.scenario} | {figure.latency_ms:.0f} ms | {figure.name} | "
            f"{figure.target or '-'} | {figure.result()} | {figure.load_average:.1f} |"
        )
    markdown_path = RESULTS_DIR / f"bench-{stamp}.md"
    markdown_path.write_text("\n".join(lines) + "\n")
    return markdown_path


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply object counts and the idle duration by this (default 1.0, the full run)",
    )
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run, from: {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--latency-ms",
        default="0,20",
        help="comma-separated emulated sidecar latencies in ms; idle, scaling and memory run "
        "at the first only (default: 0,20)",
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=None,
        help="length of the idle window in seconds (default: 300 times the scale, at least 60)",
    )
    parser.add_argument(
        "--idle-drift-seconds",
        type=float,
        default=DEFAULT_IDLE_DRIFT_SECONDS,
        help="the operator's drift interval during the idle window, in seconds (default 300, "
        "the operator's default; 60 shows the spread of drift reads over more rounds)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run each operator under cProfile; statistics go next to its log",
    )
    arguments = parser.parse_args(argv)
    arguments.only = [name.strip() for name in arguments.only.split(",") if name.strip()]
    unknown = set(arguments.only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    arguments.latency_ms = [float(value) for value in arguments.latency_ms.split(",")]
    if not 0 < arguments.scale <= 10:
        parser.error("--scale must be more than 0 and at most 10")
    return arguments


async def main_async(arguments: argparse.Namespace) -> int:
    started = datetime.datetime.now(datetime.UTC)
    load_before = load_average()
    arguments.run_dir = RESULTS_DIR / f"run-{started.strftime('%Y%m%dT%H%M%SZ')}"
    arguments.run_dir.mkdir(parents=True, exist_ok=True)
    cluster = ControlPlane(work_dir=arguments.run_dir / "control-plane")
    await asyncio.to_thread(cluster.start)
    try:
        cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "-k", str(REPOSITORY_ROOT / "crds")
        )
        cluster.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/experioauthsettings.auth.experio.cloud",
            "crd/ssoclients.auth.experio.cloud",
        )
        bench = Bench(arguments, cluster)
        status = 0
        try:
            await bench.run()
        except Exception:
            logger.exception("The benchmark failed; writing the figures measured so far.")
            status = 1
        path = write_results(bench, started, load_before)
        print(path.read_text())
        print(f"Results: {path} and {path.with_suffix('.json')}; logs in {arguments.run_dir}")
        return status
    finally:
        await asyncio.to_thread(cluster.stop)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("propelauth_emulator").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return asyncio.run(main_async(parse_arguments(argv)))


if __name__ == "__main__":
    sys.exit(main())
