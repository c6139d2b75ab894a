"""Reconcile one SSOClient: keep its sidecar OIDC client equal to the spec, report the outcome.

Observe, decide, act:

1. Observe: the object from the store, the namespace's sidecar session, the version of the
   client-secret Secret, and (only when something may differ) the sidecar client itself.
2. Decide: whether the sidecar must be written (create, patch, replace) and the outcome.
3. Act: write the sidecar, then the status, and only the parts that differ.

An object whose generation, redirect URL, customer ID and Secret version all match what its
status records is in sync and costs no request, except the periodic drift check that reads
the sidecar client. Failures are classified once, in :func:`outcome_for_sidecar_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from experio_sso import sidecar
from experio_sso.conditions import (
    Outcome,
    OutcomeError,
    Reason,
    build_conditions,
    now_rfc3339,
    ready_reason,
)
from experio_sso.constants import FINALIZER
from experio_sso.kube import Conflict as KubeConflict
from experio_sso.kube import NotFound as KubeNotFound
from experio_sso.resources import (
    ClientSpec,
    IdentityProviderType,
    SpecError,
    domains_summary,
    generate_customer_id,
    parse_client_spec,
)
from experio_sso.routing import Conflict
from experio_sso.store import Body, ObjectKey, SecretVersion, SidecarSession

if TYPE_CHECKING:
    from experio_sso.runtime import Runtime

logger = logging.getLogger(__name__)

SETTINGS_WAIT_SECONDS = 5.0
SECRET_LIST_WAIT_SECONDS = 10.0

CONFLICT_REASONS = frozenset({Reason.ALLOW_ALL_CONFLICT, Reason.DOMAIN_CONFLICT})

# Reasons under which the sidecar client is known to equal the spec of observedGeneration.
IN_SYNC_REASONS = frozenset({Reason.SYNCED, Reason.ALLOW_ALL_CONFLICT, Reason.DOMAIN_CONFLICT})


@dataclass(frozen=True)
class ClientSecretState:
    """The client secret as far as it was read: a value only when it had to be sent."""

    version: SecretVersion | None
    value: SecretStr | None
    problem: Outcome | None


def customer_id_of(body: Body, spec: ClientSpec | None) -> str:
    """Return the customer ID of an SSOClient: the spec's, else the recorded, else a new one."""
    if spec is not None and spec.customer_id:
        return spec.customer_id
    recorded = (body.get("status") or {}).get("customerId")
    if recorded:
        return str(recorded)
    domains = spec.email_domains if spec is not None else ()
    return generate_customer_id(str(body["metadata"]["uid"]), domains)


def outcome_for_sidecar_error(error: sidecar.SidecarError, action: str) -> Outcome:
    """Map a sidecar failure to the condition it causes; ``action`` names the attempted step."""
    if isinstance(error, sidecar.UnauthorizedError):
        return Outcome.stalled_on(
            Reason.UNAUTHORIZED,
            f"The sidecar rejected the integration key while trying to {action}. "
            "Put a valid key in the Secret named by the ExperioAuthSettings' "
            "spec.sidecar.apiKeySecretRef.",
        )
    if isinstance(error, sidecar.CommandNotAllowedError):
        return Outcome.stalled_on(
            Reason.COMMAND_NOT_ALLOWED,
            f"The integration key lacks the permission for {error.denied_command}; "
            "create a key with that permission in the sidecar dashboard.",
        )
    if isinstance(error, sidecar.InvalidFieldsError):
        fields = "; ".join(f"{f.field}: {f.message} ({f.code})" for f in error.fields)
        return Outcome.stalled_on(
            Reason.INVALID_FIELDS,
            f"The sidecar rejected fields while trying to {action}: {fields}",
        )
    if isinstance(error, sidecar.ClientIdAlreadyTakenError):
        return Outcome.stalled_on(
            Reason.INVALID_FIELDS,
            "spec.identityProvider.clientId is already used by another OIDC client in the "
            "sidecar; each IdP client ID can serve one SSOClient.",
        )
    return Outcome.retrying_on(
        Reason.SIDECAR_UNAVAILABLE,
        f"Could not {action}: {error}; retrying with backoff.",
    )


# --- desired state ------------------------------------------------------------------------


def desired_idp(spec: ClientSpec, secret: SecretStr) -> sidecar.IdpInfo:
    idp = spec.identity_provider
    if idp.type is IdentityProviderType.MICROSOFT_ENTRA:
        return sidecar.MicrosoftEntraIdpInfo(
            client_id=idp.client_id,
            client_secret=secret,
            uses_pkce=idp.uses_pkce,
            tenant_id=idp.tenant_id or "",
        )
    if idp.type is IdentityProviderType.OKTA:
        return sidecar.OktaIdpInfo(
            client_id=idp.client_id,
            client_secret=secret,
            uses_pkce=idp.uses_pkce,
            sso_domain=idp.sso_domain or "",
        )
    return sidecar.GenericIdpInfo(
        client_id=idp.client_id,
        client_secret=secret,
        uses_pkce=idp.uses_pkce,
        auth_url=idp.auth_url or "",
        token_url=idp.token_url or "",
        userinfo_url=idp.userinfo_url or "",
    )


def desired_idp_patch(spec: ClientSpec, secret: SecretStr | None) -> sidecar.IdpInfoPatch:
    idp = spec.identity_provider
    if idp.type is IdentityProviderType.MICROSOFT_ENTRA:
        return sidecar.MicrosoftEntraIdpInfoPatch(
            client_secret=secret, uses_pkce=idp.uses_pkce, tenant_id=idp.tenant_id
        )
    if idp.type is IdentityProviderType.OKTA:
        return sidecar.OktaIdpInfoPatch(
            client_secret=secret, uses_pkce=idp.uses_pkce, sso_domain=idp.sso_domain
        )
    return sidecar.GenericIdpInfoPatch(
        client_secret=secret,
        uses_pkce=idp.uses_pkce,
        auth_url=idp.auth_url,
        token_url=idp.token_url,
        userinfo_url=idp.userinfo_url,
    )


def create_request(
    spec: ClientSpec, customer_id: str, redirect_url: str, secret: SecretStr
) -> sidecar.CreateOidcClientRequest:
    return sidecar.CreateOidcClientRequest(
        idp_info_from_customer=desired_idp(spec, secret),
        customer_id=customer_id,
        redirect_url=redirect_url,
        display_name=spec.display_name,
        additional_scopes=list(spec.additional_scopes),
        email_domain_allowlist=list(spec.email_domains),
    )


def idp_fields(idp: sidecar.FetchedIdpInfo | None, spec: ClientSpec | None) -> dict[str, Any]:
    """Return the comparable, non-secret IdP fields of a fetched client or of a spec."""
    if idp is not None:
        return {
            key: value for key, value in idp.model_dump().items() if key not in {"client_secret"}
        }
    assert spec is not None
    provider = spec.identity_provider
    fields: dict[str, Any] = {
        "idp_type": str(provider.type),
        "client_id": provider.client_id,
        "uses_pkce": provider.uses_pkce,
    }
    if provider.type is IdentityProviderType.MICROSOFT_ENTRA:
        fields["tenant_id"] = provider.tenant_id
    elif provider.type is IdentityProviderType.OKTA:
        fields["sso_domain"] = provider.sso_domain
    else:
        fields["auth_url"] = provider.auth_url
        fields["token_url"] = provider.token_url
        fields["userinfo_url"] = provider.userinfo_url
    return fields


@dataclass(frozen=True)
class Difference:
    """The fields that differ between the sidecar client and the spec."""

    fields: tuple[str, ...]
    needs_replacement: bool

    def __bool__(self) -> bool:
        return bool(self.fields)


def compare(actual: sidecar.OidcClient, spec: ClientSpec, redirect_url: str) -> Difference:
    """Compare a fetched sidecar client with the spec; secrets cannot be compared."""
    differing: list[str] = []
    if actual.display_name != spec.display_name:
        differing.append("displayName")
    if actual.redirect_url != redirect_url:
        differing.append("redirectUrl")
    if sorted(actual.email_domain_allowlist) != sorted(spec.email_domains):
        differing.append("emailDomainAllowlist")
    if list(actual.additional_scopes) != list(spec.additional_scopes):
        differing.append("additionalScopes")

    have = idp_fields(actual.idp_info_from_customer, None)
    want = idp_fields(None, spec)
    needs_replacement = (
        have["idp_type"] != want["idp_type"] or have["client_id"] != want["client_id"]
    )
    if needs_replacement or have != want:
        differing.append("idpInfoFromCustomer")
    return Difference(tuple(differing), needs_replacement)


def patch_request(
    spec: ClientSpec, redirect_url: str, difference: Difference, secret: SecretStr | None
) -> sidecar.PatchOidcClientRequest:
    """Return a patch that sends the differing fields, and the secret when it changed."""
    fields = set(difference.fields)
    send_idp = "idpInfoFromCustomer" in fields or secret is not None
    return sidecar.PatchOidcClientRequest(
        idp_info_from_customer=desired_idp_patch(spec, secret) if send_idp else None,
        display_name=spec.display_name if "displayName" in fields else None,
        redirect_url=redirect_url if "redirectUrl" in fields else None,
        email_domain_allowlist=(
            list(spec.email_domains) if "emailDomainAllowlist" in fields else None
        ),
        additional_scopes=list(spec.additional_scopes) if "additionalScopes" in fields else None,
    )


# --- the reconcile ----------------------------------------------------------------------------


@dataclass
class SyncPass:
    """One reconcile's view of an SSOClient and what it wrote, filled in as it goes."""

    key: ObjectKey
    body: Body
    spec: ClientSpec
    session: SidecarSession
    customer_id: str
    redirect_url: str
    secret_version: SecretVersion
    secret_changed: bool
    in_sync: bool
    secret_value: SecretStr | None = None
    sent_secret_version: SecretVersion | None = None
    same_value_version: SecretVersion | None = None
    wrote: bool = False

    @property
    def namespace(self) -> str:
        return self.key[0]

    @property
    def name(self) -> str:
        return self.key[1]


@dataclass(frozen=True)
class SyncResult:
    """The outcome of a reconcile, and what the status must record about the sidecar write."""

    outcome: Outcome
    applied_secret: dict[str, str] | None = None
    synced_at: str | None = None


class ClientController:
    """Reconciles SSOClients; one instance per operator, called by the client workers."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        # Keyed digests of the client secret last sent per object, in memory only, so that a
        # new Secret version with the same value (a label added) is not sent again. The key
        # is random per process, so the digests are useless outside it.
        self._digest_key = secrets.token_bytes(32)
        self._sent_digests: dict[ObjectKey, tuple[str, bytes]] = {}
        self._same_value: dict[ObjectKey, tuple[str, dict[str, str]]] = {}

    def _digest(self, sync: SyncPass, value: SecretStr) -> tuple[str, bytes]:
        mac = hmac.new(self._digest_key, value.get_secret_value().encode(), hashlib.sha256)
        return (str(sync.body["metadata"].get("uid")), mac.digest())

    def _remember_sent(self, sync: SyncPass, value: SecretStr) -> None:
        self._sent_digests[sync.key] = self._digest(sync, value)
        self._same_value.pop(sync.key, None)

    def forget(self, key: ObjectKey) -> None:
        """Drop what is remembered about a deleted object."""
        self._sent_digests.pop(key, None)
        self._same_value.pop(key, None)

    async def reconcile(self, key: ObjectKey) -> None:
        body = self.rt.clients.get(key)
        if body is None:
            self.rt.client_queue.discard(key)
            return

        metadata = body["metadata"]
        if metadata.get("deletionTimestamp"):
            await self._finalize(key, body)
            return

        if FINALIZER not in (metadata.get("finalizers") or []):
            added = await self._add_finalizer(key, body)
            if not added:
                return

        if self.rt.settings_deferred(key[0]):
            # The namespace's settings have not finished their first pass since start-up;
            # they queue every client when they do. Writing a status now would only flap.
            self.rt.client_queue.add_after(key, SETTINGS_WAIT_SECONDS)
            return

        result = await self._sync(key, body)
        await self._write_status(key, body, result)
        self._schedule(key, result.outcome)

    # --- finalizer ---------------------------------------------------------------------------

    async def _set_finalizers(self, key: ObjectKey, body: Body, finalizers: list[str]) -> bool:
        """Write ``metadata.finalizers``, guarded by the resourceVersion we decided on."""
        metadata = body["metadata"]
        patch = {
            "metadata": {"finalizers": finalizers, "resourceVersion": metadata["resourceVersion"]}
        }
        try:
            updated = await self.rt.kube.patch(self.rt.client_kind, key[0], key[1], patch)
        except KubeConflict:
            # The object changed since the store saw it. The watch event that brings the new
            # version may be one that queues nothing (status only), so queue it here.
            self.rt.client_queue.retry(key)
            return False
        except KubeNotFound:
            return False
        self.rt.clients.update_metadata(key, updated["metadata"])
        return True

    async def _add_finalizer(self, key: ObjectKey, body: Body) -> bool:
        finalizers = [*(body["metadata"].get("finalizers") or []), FINALIZER]
        return await self._set_finalizers(key, body, finalizers)

    async def _remove_finalizer(self, key: ObjectKey, body: Body) -> None:
        finalizers = [f for f in body["metadata"].get("finalizers") or [] if f != FINALIZER]
        await self._set_finalizers(key, body, finalizers)

    async def _finalize(self, key: ObjectKey, body: Body) -> None:
        if FINALIZER not in (body["metadata"].get("finalizers") or []):
            return
        spec = self.rt.client_spec(body)
        status = body.get("status") or {}
        customer_id = customer_id_of(body, spec)
        # lastSyncTime is written only after a successful write to the sidecar.
        synced_before = bool(status.get("lastSyncTime"))
        policy = spec.deletion_policy if spec is not None else "Delete"
        if policy == "Orphan":
            if synced_before:
                logger.info(
                    "Kept sidecar client %s of SSOClient %s/%s (Orphan).", customer_id, *key
                )
                self.rt.events.record(
                    body,
                    "Orphaned",
                    f"Kept the sidecar client {customer_id} (deletionPolicy Orphan).",
                )
            await self._remove_finalizer(key, body)
            return
        if not synced_before and spec is not None and spec.customer_id:
            # Never adopted: the sidecar client named by spec.customerId is not ours to delete.
            await self._remove_finalizer(key, body)
            return

        session = self.rt.sessions.get(key[0])
        if session is None or session.key is None:
            if not synced_before:
                # Never written to the sidecar, and no key to check with: nothing to delete.
                await self._remove_finalizer(key, body)
                return
            outcome = Outcome.stalled_on(
                Reason.DELETING,
                f"Cannot delete the sidecar client {customer_id}: the operator has no "
                "integration key for this namespace. Restore the ExperioAuthSettings and its "
                "API key Secret, or set spec.deletionPolicy to Orphan.",
            )
            await self._write_status(key, body, SyncResult(outcome))
            return

        if not session.health.healthy:
            # Only the settings probe a failing sidecar; they queue every client on recovery.
            outcome = Outcome.retrying_on(
                Reason.DELETING,
                f"Waiting for the sidecar at {session.url} to answer again before deleting the "
                f"sidecar client {customer_id}.",
            )
            await self._write_status(key, body, SyncResult(outcome))
            self._schedule(key, outcome)
            return

        # NB: a client never recorded as synced is deleted too, because a create may have
        # reached the sidecar just before a crash; OidcClientNotFound then counts as done.
        try:
            await self.rt.sidecar(session).delete_oidc_client(session.key, customer_id)
        except sidecar.OidcClientNotFoundError:
            pass
        except sidecar.SidecarError as exc:
            self.rt.sidecar_call_failed(session, exc)
            failed = outcome_for_sidecar_error(exc, f"delete the sidecar client {customer_id}")
            outcome = Outcome(
                ready=False,
                reason=Reason.DELETING,
                message=failed.message,
                retrying=failed.retrying,
                stalled=failed.stalled,
            )
            await self._write_status(key, body, SyncResult(outcome))
            self._schedule(key, outcome)
            return

        logger.info("Deleted sidecar client %s of SSOClient %s/%s.", customer_id, *key)
        self.rt.events.record(body, "Deleted", f"Deleted the sidecar client {customer_id}.")
        self.rt.client_queue.forget(key)
        await self._remove_finalizer(key, body)

    # --- observe and decide --------------------------------------------------------------------

    async def _client_secret(
        self, namespace: str, spec: ClientSpec, *, need_value: bool
    ) -> ClientSecretState:
        """Return the client secret's version, reading the Secret when the value is needed
        or its version is not known from the Secret watch."""
        ref = spec.identity_provider.client_secret_ref
        tracked = self.rt.secrets.version((namespace, ref.name))
        if tracked is None and not need_value and not self.rt.secrets_listed.is_set():
            # Right after start-up the Secret watch is still listing; waiting for it saves
            # one read per client.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rt.secrets_listed.wait(), SECRET_LIST_WAIT_SECONDS)
            tracked = self.rt.secrets.version((namespace, ref.name))
        if tracked is not None and not need_value:
            return ClientSecretState(version=tracked, value=None, problem=None)

        read = await self.rt.kube.read_secret_key(namespace, ref.name, ref.key)
        if read.status == "secret_not_found":
            return ClientSecretState(
                None,
                None,
                Outcome.stalled_on(
                    Reason.SECRET_NOT_FOUND,
                    f"spec.identityProvider.clientSecretRef: Secret {ref.name!r} not found in "
                    f"namespace {namespace!r}; create it with the IdP client secret under key "
                    f"{ref.key!r}.",
                ),
            )
        if read.status != "ok" or read.value is None or read.uid is None:
            problem = "is empty" if read.status == "empty" else "is missing"
            return ClientSecretState(
                None,
                None,
                Outcome.stalled_on(
                    Reason.SECRET_KEY_MISSING,
                    f"spec.identityProvider.clientSecretRef: key {ref.key!r} of Secret "
                    f"{ref.name!r} {problem}; put the IdP client secret there.",
                ),
            )
        version = SecretVersion(uid=read.uid, resource_version=read.resource_version or "")
        self.rt.secrets.remember((namespace, ref.name), version)
        return ClientSecretState(version=version, value=read.value, problem=None)

    async def _sync(self, key: ObjectKey, body: Body) -> SyncResult:
        namespace, name = key
        status = body.get("status") or {}
        generation = int(body["metadata"].get("generation") or 0)

        spec = self.rt.client_spec(body)
        if spec is None:
            try:
                parse_client_spec(body.get("spec"))
            except SpecError as exc:
                return SyncResult(Outcome.stalled_on(Reason.INVALID_FIELDS, str(exc)))
            raise AssertionError("client_spec returned None for a spec that parses")

        customer_id = customer_id_of(body, spec)
        owner = self.rt.customer_id_owner(namespace, name, customer_id)
        if owner is not None:
            return SyncResult(
                Outcome.stalled_on(
                    Reason.INVALID_FIELDS,
                    f"spec.customerId: {customer_id!r} is already managed by the SSOClient "
                    f"{owner!r}; each customer ID belongs to one SSOClient.",
                )
            )

        session = self.rt.sessions.get(namespace)
        if session is None or session.settings_deleted:
            return SyncResult(
                Outcome.stalled_on(
                    Reason.SETTINGS_NOT_FOUND,
                    f"No ExperioAuthSettings in namespace {namespace!r}; apply one to connect "
                    "this namespace to its sidecar.",
                )
            )
        if not session.usable or session.key is None:
            return SyncResult(settings_not_ready(session))

        secret = await self._client_secret(namespace, spec, need_value=False)
        if secret.problem is not None:
            return SyncResult(secret.problem)
        assert secret.version is not None

        recorded = status.get("appliedClientSecret") or {}
        current = secret_record(spec, secret.version)
        uid = str(body["metadata"].get("uid"))
        secret_changed = recorded != current and self._same_value.get(key) != (uid, current)
        in_sync = (
            status.get("observedGeneration") == generation
            and status.get("customerId") == customer_id
            and status.get("redirectUrl") == session.redirect_url
            and not secret_changed
            and ready_reason(status) in IN_SYNC_REASONS
        )
        conflict = self.rt.conflicts(namespace).get(name)
        if in_sync and not self.rt.drift_check_due(key):
            return SyncResult(settled(spec, conflict))

        sync = SyncPass(
            key=key,
            body=body,
            spec=spec,
            session=session,
            customer_id=customer_id,
            redirect_url=session.redirect_url,
            secret_version=secret.version,
            secret_value=secret.value,
            secret_changed=secret_changed,
            in_sync=in_sync,
        )
        try:
            await self._apply(sync)
        except OutcomeError as problem:
            return SyncResult(problem.outcome)
        except sidecar.SidecarError as exc:
            self.rt.sidecar_call_failed(session, exc)
            return SyncResult(
                outcome_for_sidecar_error(exc, f"sync the sidecar client {customer_id}")
            )

        self.rt.drift_checked(key)
        self.rt.client_queue.forget(key)
        applied: dict[str, str] | None = secret_record(
            spec, sync.sent_secret_version or secret.version
        )
        if sync.same_value_version is not None:
            # The status keeps the version that was sent, because this one has the same value.
            self._same_value[key] = (uid, secret_record(spec, sync.same_value_version))
            applied = None
        return SyncResult(
            settled(spec, conflict),
            applied_secret=applied,
            synced_at=now_rfc3339() if sync.wrote or not status.get("lastSyncTime") else None,
        )

    # --- act -----------------------------------------------------------------------------------

    async def _secret_value(self, sync: SyncPass) -> SecretStr:
        if sync.secret_value is not None:
            # Read in this pass already, because the Secret watch did not know its version.
            sync.sent_secret_version = sync.secret_version
            return sync.secret_value
        state = await self._client_secret(sync.namespace, sync.spec, need_value=True)
        if state.problem is not None:
            raise OutcomeError(state.problem)
        assert state.value is not None
        assert state.version is not None
        sync.sent_secret_version = state.version
        return state.value

    async def _apply(self, sync: SyncPass) -> None:
        """Make the sidecar client equal the spec, writing only what differs."""
        assert sync.session.key is not None
        key = sync.session.key
        api = self.rt.sidecar(sync.session)
        status = sync.body.get("status") or {}
        created_before = status.get("customerId") == sync.customer_id and bool(
            status.get("lastSyncTime")
        )

        if not created_before:
            await self._create(sync, api, key)
            return

        try:
            fetched = await api.fetch_oidc_client(key, sync.customer_id)
        except sidecar.OidcClientNotFoundError:
            value = await self._secret_value(sync)
            await api.create_oidc_client(
                key, create_request(sync.spec, sync.customer_id, sync.redirect_url, value)
            )
            sync.wrote = True
            self._remember_sent(sync, value)
            self._report(
                sync,
                "DriftCorrected",
                f"The sidecar client {sync.customer_id} was missing; recreated it.",
                warning=True,
            )
            return

        difference = compare(fetched, sync.spec, sync.redirect_url)
        if difference.needs_replacement:
            value = await self._secret_value(sync)
            await self._replace(api, key, sync, value)
            self._remember_sent(sync, value)
            self._report(
                sync,
                "Replaced",
                f"Replaced the sidecar client {sync.customer_id}: the IdP type or client ID "
                "changed, which the sidecar cannot patch.",
            )
            return

        new_secret = None
        if sync.secret_changed:
            new_secret = await self._secret_value(sync)
            if self._sent_digests.get(sync.key) == self._digest(sync, new_secret):
                # Only the Secret's labels or annotations changed, as GitOps tools do: its
                # value is the one the sidecar has.
                sync.same_value_version = sync.sent_secret_version
                sync.secret_changed = False
                new_secret = None
        if not difference and new_secret is None:
            return

        await api.patch_oidc_client(
            key,
            sync.customer_id,
            patch_request(sync.spec, sync.redirect_url, difference, new_secret),
        )
        sync.wrote = True
        if new_secret is not None:
            self._remember_sent(sync, new_secret)
        changed = ", ".join(difference.fields + (("clientSecret",) if sync.secret_changed else ()))
        if sync.in_sync:
            self._report(
                sync,
                "DriftCorrected",
                f"The sidecar client {sync.customer_id} differed from the spec ({changed}); "
                "corrected it.",
                warning=True,
            )
        else:
            self._report(
                sync, "Updated", f"Updated the sidecar client {sync.customer_id}: {changed}."
            )

    async def _create(self, sync: SyncPass, api: sidecar.SidecarApi, key: SecretStr) -> None:
        value = await self._secret_value(sync)
        await self._create_or_adopt(sync, api, key, value)
        self._remember_sent(sync, value)

    async def _create_or_adopt(
        self, sync: SyncPass, api: sidecar.SidecarApi, key: SecretStr, value: SecretStr
    ) -> None:
        try:
            await api.create_oidc_client(
                key, create_request(sync.spec, sync.customer_id, sync.redirect_url, value)
            )
        except sidecar.CustomerIdAlreadyTakenError:
            # An earlier attempt that was interrupted, or spec.customerId, names a client
            # that exists already: adopt it and make it equal the spec.
            fetched = await api.fetch_oidc_client(key, sync.customer_id)
            difference = compare(fetched, sync.spec, sync.redirect_url)
            if difference.needs_replacement:
                await self._replace(api, key, sync, value)
            else:
                await api.patch_oidc_client(
                    key,
                    sync.customer_id,
                    patch_request(sync.spec, sync.redirect_url, difference, value),
                )
            sync.wrote = True
            self._report(
                sync, "Adopted", f"Adopted the existing sidecar client {sync.customer_id}."
            )
            return
        sync.wrote = True
        self._report(sync, "Created", f"Created the sidecar client {sync.customer_id}.")

    @staticmethod
    async def _replace(
        api: sidecar.SidecarApi, key: SecretStr, sync: SyncPass, secret: SecretStr
    ) -> None:
        with contextlib.suppress(sidecar.OidcClientNotFoundError):
            await api.delete_oidc_client(key, sync.customer_id)
        await api.create_oidc_client(
            key, create_request(sync.spec, sync.customer_id, sync.redirect_url, secret)
        )
        sync.wrote = True

    def _report(self, sync: SyncPass, reason: str, message: str, *, warning: bool = False) -> None:
        level = logging.WARNING if warning else logging.INFO
        logger.log(level, "SSOClient %s/%s: %s", sync.namespace, sync.name, message)
        self.rt.events.record(sync.body, reason, message, "Warning" if warning else "Normal")

    # --- status ------------------------------------------------------------------------------

    async def _write_status(self, key: ObjectKey, body: Body, result: SyncResult) -> None:
        outcome = result.outcome
        generation = int(body["metadata"].get("generation") or 0)
        status = body.get("status") or {}
        spec = self.rt.client_spec(body)

        new_status = dict(status)
        new_status["observedGeneration"] = generation
        new_status["conditions"] = build_conditions(outcome, generation, status.get("conditions"))
        if spec is not None:
            new_status["customerId"] = customer_id_of(body, spec)
            new_status["allowAllDomains"] = spec.allows_all_domains
            new_status["domains"] = domains_summary(spec.email_domains)
            new_status["routed"] = bool(
                spec.active and outcome.ready and key[1] not in self.rt.conflicts(key[0])
            )
        session = self.rt.sessions.get(key[0])
        if session is not None and not session.settings_deleted:
            new_status["redirectUrl"] = session.redirect_url
        if result.applied_secret is not None:
            new_status["appliedClientSecret"] = result.applied_secret
        if result.synced_at is not None:
            new_status["lastSyncTime"] = result.synced_at

        if new_status == status:
            return
        try:
            updated = await self.rt.kube.patch(
                self.rt.client_kind, key[0], key[1], {"status": new_status}, subresource="status"
            )
        except KubeNotFound:
            return
        self.rt.clients.update_status(key, updated)
        self.rt.routing_changed(key[0])

        if not outcome.ready and str(outcome.reason) != ready_reason(status):
            # Temporary failures and conflicts, which resolve by themselves, are warnings.
            expected = outcome.retrying or outcome.reason in CONFLICT_REASONS
            level = logging.WARNING if expected else logging.ERROR
            logger.log(
                level, "SSOClient %s/%s is not Ready: %s: %s", *key, outcome.reason, outcome.message
            )
            self.rt.events.record(body, str(outcome.reason), outcome.message, "Warning")

    def _schedule(self, key: ObjectKey, outcome: Outcome) -> None:
        if outcome.retrying:
            delay = self.rt.client_queue.retry(key)
            logger.debug("SSOClient %s/%s: retrying in %.1f s.", *key, delay)
        self.rt.schedule_drift_check(key)


def secret_record(spec: ClientSpec, version: SecretVersion) -> dict[str, str]:
    """Return the ``status.appliedClientSecret`` record of a Secret version: never its value."""
    ref = spec.identity_provider.client_secret_ref
    return {
        "name": ref.name,
        "key": ref.key,
        "uid": version.uid,
        "resourceVersion": version.resource_version,
    }


def settled(spec: ClientSpec, conflict: Conflict | None) -> Outcome:
    """Return the outcome of a client whose sidecar client equals its spec."""
    if conflict is not None:
        return Outcome.stalled_on(conflict.reason, conflict.message)
    state = "active" if spec.active else "inactive, so not routed until spec.active is true"
    return Outcome.synced(f"The sidecar client matches the spec; the client is {state}.")


def settings_not_ready(session: SidecarSession) -> Outcome:
    """Return the outcome of a client whose namespace has no usable sidecar session."""
    if not session.health.healthy:
        return Outcome.retrying_on(
            Reason.SIDECAR_UNAVAILABLE,
            f"The sidecar at {session.url} is not answering; waiting for it to recover.",
        )
    settings_outcome = session.outcome
    if settings_outcome is None:
        return Outcome.retrying_on(
            Reason.SETTINGS_NOT_READY,
            f"Waiting for the ExperioAuthSettings {session.settings_name!r} to verify its "
            "integration key.",
        )
    passed_on = {Reason.SIDECAR_UNAVAILABLE, Reason.UNAUTHORIZED, Reason.COMMAND_NOT_ALLOWED}
    reason = (
        settings_outcome.reason
        if settings_outcome.reason in passed_on
        else Reason.SETTINGS_NOT_READY
    )
    return Outcome(
        ready=False,
        reason=reason,
        message=(
            f"ExperioAuthSettings {session.settings_name!r} is not Ready "
            f"({settings_outcome.reason}): {settings_outcome.message}"
        ),
        retrying=settings_outcome.retrying,
        stalled=settings_outcome.stalled,
    )
