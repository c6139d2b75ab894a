"""Reconcile one ExperioAuthSettings: integration key, login mode, and the rendered ConfigMap.

Order of checks, each of which may end the pass with its outcome:

1. The oldest settings of a namespace wins; a younger one reports ``SettingsConflict``.
2. The spec parses.
3. The integration key is read from the API key Secret. When it is missing and a setup secret
   is referenced, the sidecar's initial setup mints it once and it is stored in that Secret at once.
4. The key is verified with ``Ping`` when it or the URL changed, after a failure, and once per
   drift interval. An unreachable sidecar and a rejected key are told apart.
5. The ConfigMap ``experio-auth-settings`` is rendered from the effective login mode and the
   routing table, whatever the key's state, so Experio always has its configuration.

The API key Secret never gets an owner reference: deleting the settings must never delete the
only copy of a key that initial setup can mint just once.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from experio_sso import sidecar
from experio_sso.conditions import (
    Outcome,
    OutcomeError,
    Reason,
    build_conditions,
    is_ready,
    ready_reason,
)
from experio_sso.constants import (
    CONFIGMAP_NAME,
    MANAGED_BY_LABEL,
    MANAGER_NAME,
    MINIMUM_SETUP_SECRET_LENGTH,
    ROUTES_KEY,
)
from experio_sso.kube import CONFIGMAPS, SECRETS, AlreadyExists, KubeError
from experio_sso.kube import NotFound as KubeNotFound
from experio_sso.resources import LoginMode, SettingsSpec, SpecError, parse_settings_spec
from experio_sso.routing import RoutingTable
from experio_sso.store import Body, ObjectKey, SecretVersion, SidecarSession, key_of

if TYPE_CHECKING:
    from experio_sso.runtime import Runtime

logger = logging.getLogger(__name__)

STORE_KEY_ATTEMPTS = 5


def effective_login_mode(spec: SettingsSpec, ready_clients: int) -> LoginMode:
    """Return the published login mode: SSO-only is held back as hybrid while no client is Ready."""
    requested = spec.login_mode
    if requested is LoginMode.SSO_ONLY and spec.lockout_protection and ready_clients == 0:
        return LoginMode.HYBRID
    return requested


def render_configmap_data(
    spec: SettingsSpec, mode: LoginMode, table: RoutingTable
) -> dict[str, str]:
    """Return the ConfigMap data that Experio reads with envFrom and a volume."""

    def flag(value: bool) -> str:
        return "True" if value else "False"

    return {
        "USE_PROPELAUTH": flag(mode is not LoginMode.PASSWORD_ONLY),
        "ALLOW_HYBRID_LOGIN": flag(mode is LoginMode.HYBRID),
        "PROPELAUTH_SSO_USERS_ACTIVE_BY_DEFAULT": flag(spec.sso_users_active_by_default),
        "PROPELAUTH_AUTH_URL": spec.sidecar.url,
        ROUTES_KEY: table.to_json(),
    }


class SettingsController:
    """Reconciles ExperioAuthSettings; one instance per operator."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        # The last rendered ConfigMap data of each namespace, and the loop time it was checked.
        self._configmaps: dict[str, tuple[dict[str, str], float]] = {}

    async def reconcile(self, key: ObjectKey) -> None:
        namespace, name = key
        body = self.rt.settings.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            self.rt.settings_gone(key)
            return

        winner = self.rt.settings_winner(namespace)
        if winner is not None and winner != name:
            outcome = Outcome.stalled_on(
                Reason.SETTINGS_CONFLICT,
                f"Namespace {namespace!r} already has the older ExperioAuthSettings {winner!r}; "
                "only the oldest one is used. Delete this one or merge it into the other.",
            )
            await self._write_status(key, body, outcome, None, None)
            return

        try:
            spec = parse_settings_spec(body.get("spec"))
        except SpecError as exc:
            await self._write_status(
                key, body, Outcome.stalled_on(Reason.INVALID_FIELDS, str(exc)), None, None
            )
            return

        session = self.rt.session_for(namespace, name, spec)
        key_version = session.key_version
        try:
            outcome = await self._verify_key(body, spec, session)
        except OutcomeError as stopped:
            outcome = stopped.outcome
        self.rt.session_outcome(session, outcome, key_changed=session.key_version != key_version)

        ready_clients, table = self.rt.routing_summary(namespace)
        mode = effective_login_mode(spec, ready_clients)
        await self._apply_configmap(body, render_configmap_data(spec, mode, table))
        if outcome.ready and mode is not spec.login_mode:
            outcome = Outcome.synced(
                "Integration key verified. Lockout protection publishes Hybrid instead of "
                "SSOOnly until an active SSOClient is Ready."
            )
        await self._write_status(key, body, outcome, spec, (mode, ready_clients))

        if outcome.retrying:
            # The first failure was logged with the status change; repeats go to DEBUG.
            delay = session.health.probe_delay()
            if delay > 0:
                self.rt.settings_queue.add_after(key, delay)
            else:
                delay = self.rt.settings_queue.retry(key)
            logger.debug(
                "ExperioAuthSettings %s/%s: %s; retrying in %.1f s.", *key, outcome.message, delay
            )
        else:
            self.rt.settings_queue.forget(key)
            self.rt.settings_queue.add_after(key, self.rt.config.drift_interval_seconds)

    # --- integration key -----------------------------------------------------------------------

    async def _verify_key(self, body: Body, spec: SettingsSpec, session: SidecarSession) -> Outcome:
        namespace = body["metadata"]["namespace"]
        ref = spec.sidecar.api_key_secret_ref
        tracked = self.rt.secrets.version((namespace, ref.name))
        if (
            session.key is not None
            and session.key_ref == (ref.name, ref.key)
            and tracked is not None
            and tracked == session.key_version
        ):
            # The Secret watch shows the Secret unchanged since the key was read: skip the read.
            key, version = session.key, tracked
        else:
            key, version = await self._read_key(body, spec, session)
        session.key_ref = (ref.name, ref.key)

        loop = asyncio.get_running_loop()
        key_changed = session.key is None or session.key_version != version
        verification_due = (
            session.verified_at is None
            or loop.time() - session.verified_at >= self.rt.config.drift_interval_seconds
            or not session.health.healthy
            or session.outcome is None
            or not session.outcome.ready
        )
        session.key = key
        session.key_version = version
        if not key_changed and not verification_due:
            assert session.outcome is not None
            return session.outcome
        probe_delay = session.health.probe_delay()
        if not key_changed and probe_delay > 0 and session.outcome is not None:
            # The sidecar is failing and its backoff has not passed. Passes queued meanwhile
            # (status events, client changes) keep the last outcome instead of probing again.
            self.rt.settings_queue.add_after(key_of(body), probe_delay)
            return session.outcome

        try:
            await self.rt.sidecar(session).ping(key)
        except sidecar.UnauthorizedError:
            return Outcome.stalled_on(
                Reason.UNAUTHORIZED,
                f"The sidecar at {spec.sidecar.url} rejected the integration key in "
                f"spec.sidecar.apiKeySecretRef (Secret {ref.name!r}, key {ref.key!r}). Create a "
                "key in the sidecar dashboard and put it there.",
            )
        except sidecar.CommandNotAllowedError as exc:
            return Outcome.stalled_on(
                Reason.COMMAND_NOT_ALLOWED,
                f"The integration key lacks the permission for {exc.denied_command}; create a "
                "key with access to the OIDC client commands and Ping.",
            )
        except sidecar.SidecarError as exc:
            delay = session.health.record_failure()
            return Outcome.retrying_on(
                Reason.SIDECAR_UNAVAILABLE,
                f"The sidecar at {spec.sidecar.url} did not answer Ping: {exc}; "
                f"next try in {delay:.0f} s.",
            )

        if session.health.record_success():
            logger.info("The sidecar of namespace %s responds again.", namespace)
            self.rt.queue_clients(namespace)
        session.verified_at = loop.time()
        return Outcome.synced(f"Integration key verified with the sidecar at {spec.sidecar.url}.")

    async def _read_key(
        self, body: Body, spec: SettingsSpec, session: SidecarSession
    ) -> tuple[SecretStr, SecretVersion]:
        """Read the key from the API key Secret, or mint it by initial setup when it is missing."""
        namespace = body["metadata"]["namespace"]
        ref = spec.sidecar.api_key_secret_ref
        read = await self.rt.kube.read_secret_key(namespace, ref.name, ref.key)
        if read.status == "ok" and read.value is not None:
            version = SecretVersion(read.uid or "", read.resource_version or "")
            self.rt.secrets.remember((namespace, ref.name), version)
            # A key saved with `kubectl create secret --from-file` often ends with a newline;
            # integration keys never contain whitespace.
            return SecretStr(read.value.get_secret_value().strip()), version
        if session.key is not None and session.key_version is None:
            # A key minted by initial setup that could not be stored yet: keep trying.
            return session.key, await self._store_key(body, spec, session.key)
        return await self._initial_setup(body, spec, read.status)

    async def _initial_setup(
        self, body: Body, spec: SettingsSpec, api_key_status: str
    ) -> tuple[SecretStr, SecretVersion]:
        namespace = body["metadata"]["namespace"]
        ref = spec.sidecar.api_key_secret_ref
        setup_ref = spec.sidecar.setup_secret_ref
        missing = (
            f"Secret {ref.name!r} not found"
            if api_key_status == "secret_not_found"
            else f"key {ref.key!r} of Secret {ref.name!r} is missing or empty"
        )
        if setup_ref is None:
            reason = (
                Reason.SECRET_NOT_FOUND
                if api_key_status == "secret_not_found"
                else Reason.SECRET_KEY_MISSING
            )
            raise OutcomeError(
                Outcome.stalled_on(
                    reason,
                    f"spec.sidecar.apiKeySecretRef: {missing}. Create an integration key in the "
                    f"sidecar dashboard and store it there, or set spec.sidecar.setupSecretRef to "
                    "let the operator run the sidecar's initial setup.",
                )
            )

        setup = await self.rt.kube.read_secret_key(namespace, setup_ref.name, setup_ref.key)
        if setup.status == "secret_not_found":
            raise OutcomeError(
                Outcome.stalled_on(
                    Reason.SECRET_NOT_FOUND,
                    f"spec.sidecar.setupSecretRef: Secret {setup_ref.name!r} not found; create it "
                    f"with the sidecar's INITIAL_SETUP_SECRET under key {setup_ref.key!r}.",
                )
            )
        if setup.status != "ok" or setup.value is None:
            raise OutcomeError(
                Outcome.stalled_on(
                    Reason.SECRET_KEY_MISSING,
                    f"spec.sidecar.setupSecretRef: key {setup_ref.key!r} of Secret "
                    f"{setup_ref.name!r} is missing or empty.",
                )
            )

        manual = (
            "Create an integration key in the sidecar dashboard and store it in "
            f"Secret {ref.name!r} under key {ref.key!r}."
        )
        if len(setup.value.get_secret_value()) < MINIMUM_SETUP_SECRET_LENGTH:
            raise OutcomeError(
                Outcome.stalled_on(
                    Reason.SETUP_SECRET_TOO_SHORT,
                    f"spec.sidecar.setupSecretRef: the setup secret in Secret {setup_ref.name!r} "
                    f"is shorter than {MINIMUM_SETUP_SECRET_LENGTH} characters. Use the sidecar's "
                    f"INITIAL_SETUP_SECRET, which is at least that long, or: {manual}",
                )
            )

        url = spec.sidecar.url
        session = self.rt.sessions[namespace]
        try:
            key = await self.rt.sidecar(session).initial_setup(setup.value)
        except sidecar.SetupSecretRejectedError:
            raise OutcomeError(
                Outcome.stalled_on(
                    Reason.SETUP_SECRET_REJECTED,
                    f"The sidecar at {url} rejected the setup secret of spec.sidecar."
                    f"setupSecretRef. Check it against the sidecar's INITIAL_SETUP_SECRET, or: "
                    f"{manual}",
                )
            ) from None
        except sidecar.InitialSetupAlreadyDoneError:
            raise OutcomeError(
                Outcome.stalled_on(
                    Reason.INITIAL_SETUP_ALREADY_DONE,
                    f"The sidecar at {url} has already run its initial setup, and its key is not "
                    f"in spec.sidecar.apiKeySecretRef. {manual}",
                )
            ) from None
        except sidecar.SidecarError as exc:
            delay = session.health.record_failure()
            raise OutcomeError(
                Outcome.retrying_on(
                    Reason.SIDECAR_UNAVAILABLE,
                    f"Initial setup at {url} failed: {exc}; next try in {delay:.0f} s.",
                )
            ) from None

        logger.info(
            "Initial setup of the sidecar of namespace %s minted an integration key.", namespace
        )
        session.key = key
        session.key_version = None
        version = await self._store_key(body, spec, key)
        self.rt.events.record(
            body,
            "InitialSetupDone",
            "The sidecar's initial setup minted an integration key, stored in Secret "
            f"{ref.name!r}.",
        )
        return key, version

    async def _store_key(self, body: Body, spec: SettingsSpec, key: SecretStr) -> SecretVersion:
        """Store a minted key in the API key Secret at once, without an owner reference."""
        namespace = body["metadata"]["namespace"]
        ref = spec.sidecar.api_key_secret_ref
        encoded = base64.b64encode(key.get_secret_value().encode()).decode()
        last_error: KubeError | None = None
        for attempt in range(1, STORE_KEY_ATTEMPTS + 1):
            try:
                try:
                    stored = await self.rt.kube.create(
                        SECRETS,
                        namespace,
                        {
                            "apiVersion": "v1",
                            "kind": "Secret",
                            "metadata": {
                                "name": ref.name,
                                "labels": {MANAGED_BY_LABEL: MANAGER_NAME},
                            },
                            "type": "Opaque",
                            "data": {ref.key: encoded},
                        },
                    )
                except AlreadyExists:
                    stored = await self.rt.kube.patch(
                        SECRETS, namespace, ref.name, {"data": {ref.key: encoded}}
                    )
            except KubeError as exc:
                last_error = exc
                logger.error(
                    "Could not store the minted integration key in Secret %s/%s (attempt %d of "
                    "%d): %s; retrying in 1 s.",
                    namespace,
                    ref.name,
                    attempt,
                    STORE_KEY_ATTEMPTS,
                    exc,
                )
                await asyncio.sleep(1)
                continue
            metadata = stored["metadata"]
            version = SecretVersion(metadata["uid"], metadata["resourceVersion"])
            self.rt.secrets.remember((namespace, ref.name), version)
            return version
        # NB: the key stays in memory (session.key) and the next pass tries to store it again.
        raise OutcomeError(
            Outcome.retrying_on(
                Reason.SECRET_NOT_FOUND,
                f"Initial setup minted an integration key, but storing it in Secret {ref.name!r} "
                f"failed: {last_error}. The operator keeps it in memory and keeps trying; grant it "
                "permission to create and patch Secrets in this namespace.",
            )
        )

    # --- rendered output ---------------------------------------------------------------------

    async def _apply_configmap(self, body: Body, data: dict[str, str]) -> None:
        namespace = body["metadata"]["namespace"]
        checked_at = asyncio.get_running_loop().time()
        cached = self._configmaps.get(namespace)
        # Nothing watches the ConfigMap, so the pass of each drift interval reads it again to
        # undo edits and deletions by hand. Half the interval keeps that pass from being
        # skipped by a few milliseconds of timer jitter.
        if (
            cached is not None
            and cached[0] == data
            and checked_at - cached[1] < self.rt.config.drift_interval_seconds / 2
        ):
            return
        metadata = body["metadata"]
        owner = {
            "apiVersion": body["apiVersion"],
            "kind": body["kind"],
            "name": metadata["name"],
            "uid": metadata["uid"],
            "controller": True,
            "blockOwnerDeletion": False,
        }
        existing = await self.rt.kube.get(CONFIGMAPS, namespace, CONFIGMAP_NAME)
        if existing is None:
            await self.rt.kube.create(
                CONFIGMAPS,
                namespace,
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": CONFIGMAP_NAME,
                        "labels": {MANAGED_BY_LABEL: MANAGER_NAME},
                        "ownerReferences": [owner],
                    },
                    "data": data,
                },
            )
            logger.info("Created ConfigMap %s/%s.", namespace, CONFIGMAP_NAME)
        elif existing.get("data") != data or existing["metadata"].get("ownerReferences") != [owner]:
            # A merge patch keeps keys it does not mention: remove the ones added by hand.
            stale: dict[str, str | None] = {
                k: None for k in existing.get("data") or {} if k not in data
            }
            try:
                await self.rt.kube.patch(
                    CONFIGMAPS,
                    namespace,
                    CONFIGMAP_NAME,
                    {"metadata": {"ownerReferences": [owner]}, "data": {**data, **stale}},
                )
            except KubeNotFound:
                self._configmaps.pop(namespace, None)
                raise
            logger.info("Updated ConfigMap %s/%s.", namespace, CONFIGMAP_NAME)
        self._configmaps[namespace] = (data, checked_at)

    def forget_configmap(self, namespace: str) -> None:
        self._configmaps.pop(namespace, None)

    # --- status ------------------------------------------------------------------------------

    async def _write_status(
        self,
        key: ObjectKey,
        body: Body,
        outcome: Outcome,
        spec: SettingsSpec | None,
        published: tuple[LoginMode, int] | None,
    ) -> None:
        generation = int(body["metadata"].get("generation") or 0)
        status: dict[str, Any] = body.get("status") or {}
        new_status = dict(status)
        new_status["observedGeneration"] = generation
        new_status["conditions"] = build_conditions(outcome, generation, status.get("conditions"))
        if spec is not None:
            new_status["loginMode"] = str(spec.login_mode)
        if published is not None:
            new_status["effectiveLoginMode"] = str(published[0])
            new_status["readyClients"] = published[1]
            new_status["configMapName"] = CONFIGMAP_NAME
        if new_status == status:
            return
        try:
            updated = await self.rt.kube.patch(
                self.rt.settings_kind, key[0], key[1], {"status": new_status}, subresource="status"
            )
        except KubeNotFound:
            return
        self.rt.settings.update_status(key, updated)

        was_ready = is_ready(status)
        if outcome.ready and not was_ready:
            logger.info("ExperioAuthSettings %s/%s is Ready: %s", *key, outcome.message)
        elif not outcome.ready and str(outcome.reason) != ready_reason(status):
            logger.log(
                logging.WARNING if outcome.retrying else logging.ERROR,
                "ExperioAuthSettings %s/%s is not Ready: %s: %s",
                *key,
                outcome.reason,
                outcome.message,
            )
            self.rt.events.record(body, str(outcome.reason), outcome.message, "Warning")
