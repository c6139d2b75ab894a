"""Run the whole product locally: control plane, sidecar emulator, operator, and the examples.

``make demo`` runs this script. It starts etcd and kube-apiserver on loopback, the sidecar
emulator with the examples' setup secret, and ``experio-sso run`` against them; installs the
CRDs; applies ``deploy/examples/`` with the settings' sidecar URL pointed at the emulator; waits
until every resource is Ready; prints what a platform engineer would look at; and then keeps
running until Ctrl-C (or stops at once with ``--exit``).

Everything listens on 127.0.0.1. State lives in ``.demo/`` and is removed on exit.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY_ROOT))

from tests.support.control_plane import (  # noqa: E402
    ControlPlane,
    free_port,
    locate_assets,
    start_process,
    stop_process,
    tail,
)

EXAMPLES_DIR = REPOSITORY_ROOT / "deploy" / "examples"
CRDS_DIR = REPOSITORY_ROOT / "crds"
WORK_DIR = REPOSITORY_ROOT / ".demo"
READY_TIMEOUT_SECONDS = 120.0
BIN = Path(sys.executable).parent


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)


def load_examples(kubectl: Path) -> list[dict[str, Any]]:
    """Render deploy/examples/ with its kustomization, as ``kubectl apply -k`` would."""
    rendered = subprocess.run(
        [str(kubectl), "kustomize", str(EXAMPLES_DIR)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    if not documents:
        raise SystemExit(f"demo: no manifests found in {EXAMPLES_DIR}")
    return documents


def secret_value(documents: list[dict[str, Any]], namespace: str, name: str, key: str) -> str:
    for document in documents:
        metadata = document.get("metadata") or {}
        if (
            document.get("kind") == "Secret"
            and metadata.get("name") == name
            and (metadata.get("namespace") in (None, namespace))
        ):
            if key in (document.get("stringData") or {}):
                return str(document["stringData"][key])
            if key in (document.get("data") or {}):
                return base64.b64decode(document["data"][key]).decode()
    raise SystemExit(f"demo: the examples lack Secret {namespace}/{name} with key {key!r}")


def wait_until_ready(control_plane: ControlPlane, operator_log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    pending: list[str] = []
    while time.monotonic() < deadline:
        listing = control_plane.kubectl(
            "get", "experioauthsettings,ssoclients", "-A", "-o", "json"
        ).stdout
        items = json.loads(listing)["items"]
        pending = []
        for item in items:
            conditions = (item.get("status") or {}).get("conditions") or []
            ready = next((c for c in conditions if c.get("type") == "Ready"), None)
            if not ready or ready.get("status") != "True":
                reason = ready.get("reason") if ready else "no status yet"
                pending.append(f"{item['kind']} {item['metadata']['name']} ({reason})")
        if items and not pending:
            return
        time.sleep(0.5)
    raise SystemExit(
        f"demo: not Ready after {READY_TIMEOUT_SECONDS:.0f} s: {', '.join(pending)}\n"
        f"last lines of the operator log:\n{tail(operator_log)}"
    )


def control_plane_processes(control_plane: ControlPlane) -> list[subprocess.Popen[bytes]]:
    return [p for p in (control_plane.etcd_process, control_plane.apiserver_process) if p]


def watch_children(processes: list[subprocess.Popen[bytes]]) -> None:
    """Wait until a signal stops the demo; stop early when a child process exits."""
    while True:
        for process in processes:
            if process.poll() is not None:
                name = Path(str(process.args[0])).name  # type: ignore[index]
                raise SystemExit(f"demo: {name} exited with code {process.returncode}; stopping.")
        time.sleep(1)


def run(exit_when_ready: bool) -> None:
    assets = locate_assets()
    documents = load_examples(assets / "kubectl")
    settings = next(d for d in documents if d.get("kind") == "ExperioAuthSettings")
    namespace = settings["metadata"]["namespace"]
    setup_ref = settings["spec"]["sidecar"]["setupSecretRef"]
    setup_secret = secret_value(documents, namespace, setup_ref["name"], setup_ref["key"])

    shutil.rmtree(WORK_DIR, ignore_errors=True)
    WORK_DIR.mkdir()
    say("starting etcd and kube-apiserver on 127.0.0.1")
    control_plane = ControlPlane(assets=assets, work_dir=WORK_DIR / "control-plane")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        control_plane.start()
        say(f"control plane ready in {control_plane.startup_seconds:.1f} s")

        emulator_port = free_port()
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        emulator_log = WORK_DIR / "emulator.log"
        processes.append(
            start_process(
                [
                    str(BIN / "propelauth-emulator"),
                    "--host=127.0.0.1",
                    f"--port={emulator_port}",
                    f"--state={WORK_DIR / 'emulator.sqlite3'}",
                ],
                emulator_log,
                env={**os.environ, "PROPELAUTH_EMULATOR_SETUP_SECRET": setup_secret},
            )
        )
        say(f"sidecar emulator at {emulator_url}")

        control_plane.kubectl("apply", "--server-side", "-k", str(CRDS_DIR))
        control_plane.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/experioauthsettings.auth.experio.cloud",
            "crd/ssoclients.auth.experio.cloud",
        )

        operator_log = WORK_DIR / "operator.log"
        processes.append(
            start_process(
                [
                    str(BIN / "experio-sso"),
                    "run",
                    f"--kubeconfig={control_plane.kubeconfig}",
                    f"--liveness-url=http://127.0.0.1:{free_port()}/healthz",
                ],
                operator_log,
            )
        )
        say(f"operator started (log: {operator_log})")

        # The examples name the in-cluster Service; here the sidecar is the local emulator.
        settings["spec"]["sidecar"]["url"] = emulator_url
        control_plane.kubectl(
            "apply", "-f", "-", input="\n---\n".join(yaml.safe_dump(d) for d in documents)
        )
        say(f"applied {len(documents)} manifests from {EXAMPLES_DIR.relative_to(REPOSITORY_ROOT)}")

        wait_until_ready(control_plane, operator_log)
        print()
        print(control_plane.kubectl("get", "experioauthsettings,ssoclients", "-A").stdout)
        routed = next(
            d for d in documents if d.get("kind") == "SSOClient" and d["spec"].get("emailDomains")
        )
        email = f"alice@{routed['spec']['emailDomains'][0]}"
        answer = subprocess.run(
            [
                str(BIN / "experio-sso"),
                "resolve",
                email,
                "-n",
                namespace,
                f"--kubeconfig={control_plane.kubeconfig}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        print(f"$ experio-sso resolve {email} -n {namespace}")
        print(answer.stdout.strip() or answer.stderr.strip())
        print()
        say("everything is Ready.")
        if exit_when_ready:
            return
        kubeconfig = control_plane.kubeconfig
        kubectl = control_plane.assets / "kubectl"
        print("  While the demo runs, in another terminal:")
        print(f"    export KUBECONFIG={kubeconfig} PATH={kubectl.parent}:{BIN}:$PATH")
        print(f"    kubectl describe ssoclients -n {namespace}")
        print("    kubectl get experio -A -o wide")
        print(f"    experio-sso resolve bob@{routed['spec']['emailDomains'][0]} -n {namespace}")
        print(f"  Operator log: {operator_log}")
        say("press Ctrl-C (or send SIGTERM) to stop.")
        watch_children(processes + control_plane_processes(control_plane))
    finally:
        say("stopping")
        for process in reversed(processes):
            stop_process(process)
        control_plane.stop()
        shutil.rmtree(WORK_DIR, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--exit", action="store_true", help="stop as soon as everything is Ready (for scripts)"
    )
    arguments = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        run(arguments.exit)
    except KeyboardInterrupt:
        print()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
