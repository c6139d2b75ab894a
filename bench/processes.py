"""Child processes of the benchmark (the operator and the floor) and what /proc says about them."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.control_plane import free_port

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STOP_TIMEOUT_SECONDS = 20.0


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time of a process, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name in brackets may hold spaces; the fields after it are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    user_ticks, system_ticks = int(fields[11]), int(fields[12])
    return (user_ticks + system_ticks) / CLOCK_TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """Return VmHWM (peak resident set) and VmRSS of a process in KiB, from /proc/<pid>/status."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            values[name] = int(rest.split()[0])
    return values


@dataclass
class Child:
    """One child process with its output in a log file."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    async def stop(self) -> int:
        """Send SIGTERM, wait, and kill the process after ``STOP_TIMEOUT_SECONDS``."""
        if self.process.returncode is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                return await self.process.wait()
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()


async def start_operator(
    kubeconfig: Path,
    namespace: str,
    log_path: Path,
    environment: dict[str, str],
    profile_path: Path | None = None,
) -> Child:
    """Start ``experio-sso run --namespace`` at INFO level, as a Deployment would run it.

    With ``profile_path`` the operator runs under cProfile, which writes its statistics there
    when the operator exits after SIGTERM.
    """
    profiler = ["-m", "cProfile", "-o", str(profile_path)] if profile_path else []
    arguments = [
        sys.executable,
        *profiler,
        "-m",
        "experio_sso.cli",
        "run",
        f"--kubeconfig={kubeconfig}",
        f"--namespace={namespace}",
        f"--liveness-url=http://127.0.0.1:{free_port()}/healthz",
        "--log-level=INFO",
    ]
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *arguments,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env={**os.environ, **environment},
        )
    return Child("operator", process, log_path)


async def start_floor(
    kubeconfig: Path,
    namespace: str,
    sidecar_url: str,
    api_key: str,
    mode: str,
    count: int,
    log_path: Path,
) -> Child:
    """Start ``python -m bench.floor`` and wait for its line saying that its watches are synced."""
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.floor",
            f"--kubeconfig={kubeconfig}",
            f"--namespace={namespace}",
            f"--sidecar-url={sidecar_url}",
            f"--mode={mode}",
            f"--count={count}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env={**os.environ, "FLOOR_SIDECAR_API_KEY": api_key},
        )
    assert process.stdout is not None
    async with asyncio.timeout(60):
        line = await process.stdout.readline()
    if not line.startswith(b"floor ready"):
        raise RuntimeError(f"the floor did not start; see {log_path}")
    return Child("floor", process, log_path)
