"""The ``experio-sso`` command: ``run`` starts the operator, ``resolve`` routes one email.

``run`` reads its configuration from ``EXPERIO_SSO_*`` variables (see ``config.py``); its
options override them. ``resolve`` reads the namespace's SSOClients from the cluster and
resolves the email with the same function that renders the routing table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import secrets
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from experio_sso import __version__
from experio_sso.config import ConfigError, OperatorConfig, load_config

if TYPE_CHECKING:
    from experio_sso.resources import ClientSpec
    from experio_sso.routing import RoutingTable

EXIT_USAGE = 2
PLAIN_LOG_FORMAT = "[%(asctime)s] %(levelname)-7s %(name)s: %(message)s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="experio-sso",
        description="Kubernetes operator for Experio's enterprise SSO.",
    )
    parser.add_argument("--version", action="version", version=f"experio-sso {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="start the operator",
        description="Start the operator. Options override the EXPERIO_SSO_* variables.",
    )
    run.add_argument(
        "--namespace",
        help="watch only this namespace (a namespaced install); default: all namespaces",
    )
    run.add_argument("--kubeconfig", help="kubeconfig file; default: in-cluster or $KUBECONFIG")
    run.add_argument("--log-format", choices=["plain", "json"], help="log line format")
    run.add_argument(
        "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="lowest level logged"
    )
    run.add_argument(
        "--liveness-url", help="liveness endpoint, for example http://0.0.0.0:8080/healthz"
    )
    run.add_argument("--peering", help="kopf peering name, to run several replicas with one active")
    run.add_argument("--peering-priority", type=int, help="this replica's peering priority")
    run.add_argument(
        "--drift-interval-seconds", type=float, help="seconds between drift checks of one client"
    )

    resolve = commands.add_parser(
        "resolve",
        help="tell which SSOClient an email's login reaches, or why none",
        description="Resolve an email against the SSOClients of a namespace, as Experio would.",
    )
    resolve.add_argument("email", help="the email address a user would log in with")
    resolve.add_argument("-n", "--namespace", help="namespace; default: the kubeconfig's")
    resolve.add_argument("--kubeconfig", help="kubeconfig file; default: $KUBECONFIG")
    resolve.add_argument(
        "-o", "--output", choices=["text", "json"], default="text", help="answer format"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    if arguments.kubeconfig and not os.path.isfile(arguments.kubeconfig):
        print(f"experio-sso: kubeconfig file {arguments.kubeconfig} not found", file=sys.stderr)
        return EXIT_USAGE
    if arguments.command == "run":
        return run_command(arguments)
    return resolve_command(arguments)


# --- run ------------------------------------------------------------------------------------


def run_command(arguments: argparse.Namespace) -> int:
    try:
        config = load_config(
            namespace=arguments.namespace,
            log_format=arguments.log_format,
            log_level=arguments.log_level,
            liveness_url=arguments.liveness_url,
            peering=arguments.peering,
            peering_priority=arguments.peering_priority,
            drift_interval_seconds=arguments.drift_interval_seconds,
        )
    except ConfigError as exc:
        print(f"experio-sso: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if arguments.kubeconfig:
        # kopf's login reads $KUBECONFIG; the operator's own client is given the path.
        os.environ["KUBECONFIG"] = arguments.kubeconfig
    asyncio.run(run_operator(config, arguments.kubeconfig))
    return 0


def configure_logging(config: OperatorConfig) -> None:
    import kopf

    # kopf's own text format cuts logger names to 20 characters; kopf also accepts a format
    # string (kopf 1.45, loggers.make_formatter).
    log_format = kopf.LogFormat.JSON if config.log_format == "json" else PLAIN_LOG_FORMAT
    kopf.configure(
        debug=config.log_level == "DEBUG",
        verbose=config.log_level == "DEBUG",
        quiet=config.log_level in {"WARNING", "ERROR"},
        log_format=log_format,  # type: ignore[arg-type]
    )
    logging.getLogger().setLevel(config.log_level)
    # httpx logs every request at INFO, with URLs; the controllers log what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    if config.log_level != "DEBUG":
        # kopf logs every event handler call at INFO; the controllers log the state changes.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


async def run_operator(config: OperatorConfig, kubeconfig: str | None) -> None:
    """Run the operator until it is stopped by a signal."""
    import kopf

    import experio_sso.handlers  # noqa: F401  (registers the handlers)

    configure_logging(config)
    logging.getLogger(__name__).info(
        "Starting experio-sso-operator %s, watching %s.",
        __version__,
        f"namespace {config.namespace}" if config.namespace else "all namespaces",
    )
    scope: dict[str, Any] = (
        {"namespaces": [config.namespace]} if config.namespace else {"clusterwide": True}
    )
    identity = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"
    priority = config.peering_priority or random.randint(1, 2**31 - 1)
    await kopf.operator(
        standalone=config.peering is None,
        peering_name=config.peering,
        priority=priority,
        identity=identity,  # type: ignore[arg-type]  # kopf's Identity is a NewType of str
        liveness_endpoint=config.liveness_url,
        memo=kopf.Memo(
            config=config, kubeconfig=kubeconfig, identity=identity, peering_priority=priority
        ),
        **scope,
    )


# --- resolve --------------------------------------------------------------------------------


def resolve_command(arguments: argparse.Namespace) -> int:
    from kubernetes.config import ConfigException

    from experio_sso.kube import KubeError
    from experio_sso.routing import resolve_email

    namespace = arguments.namespace or default_namespace(arguments.kubeconfig)
    try:
        table, client_count = asyncio.run(
            routing_table_from_cluster(namespace, arguments.kubeconfig)
        )
    except (ConfigException, KubeError, OSError) as exc:
        print(
            f"experio-sso: cannot read SSOClients in namespace {namespace!r}: {exc}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        resolution = resolve_email(arguments.email, table)
    except ValueError as exc:
        print(f"experio-sso: {exc}", file=sys.stderr)
        return EXIT_USAGE

    if arguments.output == "json":
        print(
            json.dumps(
                {
                    "email": resolution.email,
                    "namespace": namespace,
                    "client": resolution.route.client if resolution.route else None,
                    "customerId": resolution.route.customer_id if resolution.route else None,
                    "error": resolution.error,
                }
            )
        )
    elif resolution.error is None and resolution.route is not None:
        print(
            f"{resolution.email} -> SSOClient {namespace}/{resolution.route.client} "
            f"(customer ID {resolution.route.customer_id})"
        )
    else:
        if resolution.route is not None:
            detail = f" (SSOClient {namespace}/{resolution.route.client})"
        elif client_count == 0:
            detail = f" (namespace {namespace!r} has no SSOClients; is -n right?)"
        else:
            detail = f" (no SSOClient in namespace {namespace!r} serves this domain)"
        print(f"{resolution.email}: {resolution.error}{detail}")
    return 0 if resolution.error is None else 1


def default_namespace(kubeconfig: str | None) -> str:
    """Return the namespace of the kubeconfig's current context, or ``default``."""
    from kubernetes import config as kubernetes_config

    try:
        _, active = kubernetes_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=kubeconfig
        )
    except Exception:
        return "default"
    return str((active or {}).get("context", {}).get("namespace") or "default")


async def routing_table_from_cluster(
    namespace: str, kubeconfig: str | None
) -> tuple[RoutingTable, int]:
    """Build a namespace's routing table from its SSOClients; also return how many there are."""
    from experio_sso.kube import KubeClient
    from experio_sso.resources import SpecError, parse_client_spec
    from experio_sso.routing import build_routing_table, route_of
    from experio_sso.runtime import CLIENT_KIND_REF

    def parse_or_none(body: dict[str, Any]) -> ClientSpec | None:
        try:
            return parse_client_spec(body.get("spec"))
        except SpecError:
            return None

    async with await KubeClient.connect(kubeconfig) as kube:
        bodies = await kube.list(CLIENT_KIND_REF, namespace)
    routes = (route_of(body, parse_or_none(body)) for body in bodies)
    return build_routing_table(route for route in routes if route is not None), len(bodies)


if __name__ == "__main__":
    sys.exit(main())
