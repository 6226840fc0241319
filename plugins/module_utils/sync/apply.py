# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The gitops.k8s.apply engine: a bundle into the cluster, all or nothing, in order, on record.

  1. lease       one run per app (lease.py); check mode takes no lease
  2. namespaces  the namespaces the bundle's objects live in that exist neither in the cluster nor
                 in the bundle are created first (with ``managed_namespace_metadata``), so that
                 everything is validated in its real namespace (quotas, Pod Security, webhooks)
  3. plan        diff.make_plan: one LIST per kind, fast path, a server-side dry-run of every other
                 object and hook; any rejection fails the run listing all of them, nothing else written
  4. record      the inventory gets the union of its objects and the bundle's (inventory.py)
  5. sync        PreSync hooks; then each wave in order: Namespaces and CRDs first (CRDs
                 Established, then the custom resources of the bundle dry-run before anything else
                 of their wave is written), the rest concurrently, then the wave's Sync hooks; with
                 wait_waves each wave healthy before the next; then PostSync hooks. SyncFail hooks
                 when a step fails
  6. prune       inventory objects not in the bundle, reverse order, prune-disabled ones kept, the
                 guards of prune.py (uid, Namespaces and CRDs) checked; a deletion that fails or
                 that a finalizer holds keeps the object recorded and fails the run
  7. record      the final object set, revision, result and a history entry

Every record write goes through ``Inventory.update`` under the app's Lease. Objects new to the
app are claimed under a second, cluster-wide Lease (``gitops-claims``) from the ownership check
to the record write, so two apps declaring the same object in one run cannot both pass it.

A plan with nothing to create, update or prune is a no-op: no hooks run, no wave is waited for.
Hook objects are never recorded in the inventory (they are per-run). How each object is written
(server-side apply, replace, delete and recreate, takeover from client-side apply) is decided by
the plan (diff.py, ownership.py).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import threading
import time

from ..cluster.client import ApiError
from ..concurrency import each
from .compare import crd_kinds, dry_run, make_plan, managed_fingerprint, prepare_write, rejected_error, rejection, \
    report, validate_elsewhere, write
from ..errors import GitOpsError
from .ignore import check_ignore_rules
from ..cluster.records import (INVENTORY_NAMESPACE, Inventory, history_entry, key_secret_digests, new_record, object_entry,
                        push_history,
                        union_objects)
from ..cluster.lease import Lease
from ..masking import redact
from .ownership import migration_patch
from .prune_guards import guarded, recreated, refusal
from ..refs import describe, group_of, key_of, ref_of

HOOK_LABEL = "gitops.k8s/hook"
FIRST_KINDS = {("", "Namespace"), ("apiextensions.k8s.io", "CustomResourceDefinition")}
DEFAULT_HOOK_POLICY = ["BeforeHookCreation"]
CLAIMS_LEASE = "gitops-claims"
CLAIMS_IN_PROCESS = threading.Lock()
# How long a pruned object may take to disappear before the run reports what holds it.
PRUNE_SETTLE = 5.0


class Options:
    """Every knob of apply, with the module's defaults."""

    def __init__(self, field_manager="gitops.k8s", force_conflicts=True, prune=False, prune_allow_empty=False,
                 prune_propagation="Background", create_namespaces=True, concurrency=8, wait_waves=None,
                 timeout=300, lock=True, lock_timeout=60, history_limit=10, adopt=False, ignore=(),
                 inventory_namespace=INVENTORY_NAMESPACE, inventory_kind="ConfigMap", trigger="push",
                 rollback_of=None, custom_health=None, show_secrets=False, revision=None,
                 replace_on_immutable=False, managed_namespace_metadata=None, owners=None):
        self.field_manager, self.force_conflicts = field_manager, force_conflicts
        self.prune, self.prune_allow_empty, self.prune_propagation = prune, prune_allow_empty, prune_propagation
        self.create_namespaces, self.concurrency, self.wait_waves = create_namespaces, max(1, concurrency), wait_waves
        self.timeout, self.lock, self.lock_timeout = timeout, lock, lock_timeout
        self.history_limit, self.adopt, self.ignore = history_limit, adopt, check_ignore_rules(ignore)
        self.inventory_namespace, self.inventory_kind = inventory_namespace, inventory_kind
        self.trigger, self.rollback_of, self.custom_health = trigger, rollback_of, custom_health
        self.show_secrets, self.revision = show_secrets, revision
        # inventory.OwnerIndex: who records which object, from the records the per-cluster engine
        # read once for all its apps; None: every record is read for each question
        self.owners = owners
        self.replace_on_immutable = replace_on_immutable
        self.managed_namespace_metadata = managed_namespace_metadata or {}


def apply(cluster, bundle, app, options=None, check=False, want_diff=False, lease=None, live=None):
    """Apply ``bundle`` as application ``app``; returns the module result (see modules/apply.py).

    ``want_diff`` adds ``resources`` and ``ansible_diff`` (the diff module's report) to the result.
    ``lease``: the app's Lease, already held by the caller (who decided under it and releases it);
    without one, apply takes and releases its own (``options.lock``). ``live`` serves the plan's
    LISTs (see diff.make_plan).
    """
    options = options or Options()
    if bundle.revision and options.revision and bundle.revision != options.revision:
        raise GitOpsError("bundle %s was rendered from revision %s, not %s: refusing to record one revision for "
                          "another's content" % (bundle.path, bundle.revision, options.revision),
                          bundle=bundle.path, bundle_revision=bundle.revision, revision=options.revision)
    store = Inventory(cluster, options.inventory_namespace, options.inventory_kind)
    retries_before = cluster.retries_made
    own_lease = None
    if not check:
        store.ensure_namespace()
    bundle = key_secret_digests(bundle, store.digest_key(create=not check))
    if not check and options.lock and lease is None:
        lease = own_lease = Lease(cluster, app, options.inventory_namespace)
        own_lease.acquire(options.lock_timeout)
    try:
        result = Run(cluster, bundle, app, options, store, lease, check, want_diff, live).execute()
    finally:
        if own_lease:
            own_lease.release()
    result["api_retries"] = cluster.retries_made - retries_before
    return result


def _hook_id(app, ref):
    """A label value naming one hook of one app across runs (generateName gives new names)."""
    return hashlib.sha256(("%s|%s|%s|%s" % ((app,) + key_of(ref)[1:])).encode("utf-8")).hexdigest()[:20]


class Run:
    def __init__(self, cluster, bundle, app, options, store, lease, check, want_diff, live=None):
        self.cluster, self.bundle, self.app, self.opts = cluster, bundle, app, options
        self.store, self.lease, self.check, self.want_diff, self.live = store, lease, check, want_diff, live
        self.started = time.monotonic()
        self.requests_before = cluster.requests_made
        self.applied = {}   # key -> server response of our apply
        self.pruned, self.prune_failed, self.hooks, self.recreated, self.namespaces = [], [], [], [], []
        self.prune_refused = []
        self.disowned = set()  # keys recorded but recreated by someone else: dropped from the record
        self.hook_pairs = [(e, o) for e, o in bundle.pairs() if e.get("hook")]
        self.listed = {}    # (group, plural, namespace, names) -> objects: see _list
        self.plan = None
        self.foreign = {}  # {key: app} of bundle objects other apps record (see _foreign_owners)

    # -- the steps -------------------------------------------------------------------------

    def execute(self):
        record, _version = self.store.read(self.app)
        record = record or new_record(self.app)
        self.recorded = {key_of(o): o for o in record.get("objects") or ()}
        self._prepare_namespaces()
        self._make_plan(record)
        self.foreign = self._foreign_owners()  # fails naming the apps that record any object (unless adopt)
        deletes = self._deletes()
        noop = not self.plan.changes and not deletes
        if self.check:
            self._prune(deletes, dry_run=True)
            return self._result(record, noop)
        if noop:
            self._record_noop(record)
            return self._result(record, noop)
        self._record_running()
        try:
            self._sync(deletes)
        except GitOpsError as err:
            self._fail(err)
        self._record_final("Succeeded", None)
        return self._result(record, noop)

    def _prepare_namespaces(self):
        """Step 2: create the namespaces objects live in that nothing else creates (not in check mode)."""
        wanted = {ref_of(o)["namespace"] for o in self.bundle.objects} - {""}
        in_bundle = {o["metadata"].get("name") for o in self.bundle.objects
                     if (group_of(o.get("apiVersion", "")), o.get("kind")) == ("", "Namespace")}
        namespaces = self._list(self.cluster.resource("v1", "Namespace"), None, sorted(wanted - in_bundle))
        existing = {ns["metadata"]["name"] for ns in namespaces}
        missing = sorted(wanted - in_bundle - existing)
        if missing and not self.opts.create_namespaces:
            raise GitOpsError("namespace(s) %s do not exist and create_namespaces is false" % ", ".join(missing),
                              namespaces=missing)
        if self.check:
            return
        for name in missing:
            try:
                namespaces.append(self.cluster.apply(self._namespace(name), self.opts.field_manager, force=True))
            except GitOpsError as err:
                raise GitOpsError("cannot create namespace %s: %s" % (name, err), namespace=name,
                                  changed=bool(self.namespaces))
            self.namespaces.append(name)

    def _namespace(self, name):
        meta = {"name": name}
        for field in ("labels", "annotations"):
            if self.opts.managed_namespace_metadata.get(field):
                meta[field] = dict(self.opts.managed_namespace_metadata[field])
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}

    def _list(self, resource, namespace, names=None):
        """The live provider of this run (see Cluster.read): each read once (the plan reads
        Namespaces again)."""
        key = (resource.group, resource.plural, namespace, tuple(names) if names is not None else None)
        if key not in self.listed:
            self.listed[key] = (self.live or self.cluster.read)(resource, namespace, names)
        return self.listed[key]

    def _make_plan(self, record):
        """Step 3: the plan; every rejection (hooks included) fails the run before any other write."""
        self.plan = make_plan(
            self.cluster, self.bundle, record, field_manager=self.opts.field_manager, ignore=self.opts.ignore,
            concurrency=self.opts.concurrency, validate_creates=True, force=self.opts.force_conflicts,
            live=self._list, replace_on_immutable=self.opts.replace_on_immutable,
        )
        rejected = self.plan.rejected + self._validate_hooks(self.plan.missing_namespaces)
        if rejected:
            written = "only namespace(s) %s were created" % ", ".join(self.namespaces) if self.namespaces else None
            raise self._with_changes(rejected_error(rejected, self.bundle.path, written))

    def _deletes(self):
        deletes = self.plan.deletes if self.opts.prune else []
        if self.opts.prune and deletes and not self.plan.items and not self.opts.prune_allow_empty:
            raise GitOpsError(
                "refusing to prune every object of app %s (%d) because bundle %s is empty; set prune_allow_empty "
                "to allow it" % (self.app, len(deletes), self.bundle.path),
                would_prune=[i.ref for i in deletes],
            )
        return deletes

    def _record_running(self):
        """Step 4: record every object we may write before the first write; adopted ones leave their app.
        Objects new to the app are claimed under the claims Lease (see the module docstring)."""
        def running(current):
            current["objects"] = union_objects(current.get("objects") or [], [i.ref for i in self.plan.items])
            current["result"] = "Running"
            return current

        claiming = [i.key for i in self.plan.items if i.key not in self.recorded]
        with self._claims(claiming) as claims:
            # again, now that no other app can claim meanwhile (objects the app records already
            # cannot be claimed by another app without adopt: the first answer stands)
            owners = self._foreign_owners(claims=claims) if claiming else self.foreign
            self.store.update(self.app, running, lease=self.lease)
            if claims and self.opts.owners:
                self.opts.owners.claimed(self.app, claiming, moved=set(owners))
        for other in sorted(set(owners.values())):
            mine = {k for k, v in owners.items() if v == other}
            self.store.update(other, lambda r: dict(r, objects=[o for o in r.get("objects") or () if key_of(o) not in mine]))

    @contextlib.contextmanager
    def _claims(self, needed):
        """Hold the cluster-wide claims Lease (yielded) while ``needed`` (the bundle has objects new to the app)."""
        if not needed or not self.lease:
            yield None
            return
        # the apps of one process queue here, not by polling the Lease (a second per turn)
        if not CLAIMS_IN_PROCESS.acquire(timeout=max(0, self.opts.lock_timeout)):
            raise GitOpsError("app %s gave up after waiting %ss for other apps of this run to claim their objects"
                              % (self.app, self.opts.lock_timeout))
        try:
            claims = Lease(self.cluster, self.app, self.opts.inventory_namespace, name=CLAIMS_LEASE)
            claims.acquire(self.opts.lock_timeout)
            try:
                yield claims
            finally:
                claims.release()
        finally:
            CLAIMS_IN_PROCESS.release()

    def _sync(self, deletes):
        """Step 5 and 6: hooks and waves in order, then prune."""
        self._run_hooks("PreSync")
        for wave in self._waves():
            self._apply_wave(wave, [i for i in self.plan.items if i.wave == wave])
            self._run_hooks("Sync", wave)
        self._run_hooks("PostSync")
        self._prune(deletes)
        if self.prune_failed:
            raise GitOpsError("%d object(s) could not be pruned (they stay recorded):\n  %s" % (
                len(self.prune_failed), "\n  ".join("%s: %s" % (describe(f), f["message"]) for f in self.prune_failed)),
                prune_failed=self.prune_failed)

    def _fail(self, err):
        """A step failed: SyncFail hooks, the record says Failed, the error says what was written."""
        message = str(err)
        try:
            self._run_hooks("SyncFail")
        except GitOpsError as hook_err:
            message += "; SyncFail hooks failed too: %s" % hook_err
        self._record_final("Failed", message)
        err.details.setdefault("inventory", self.store.where(self.app))
        details = dict(err.details, hooks=self.hooks, created=self._refs("create"), configured=self._refs("update"),
                       pruned=self.pruned, prune_failed=self.prune_failed, prune_refused=self.prune_refused)
        raise self._with_changes(GitOpsError(message, **details))

    def _with_changes(self, err):
        """``err`` saying whether anything was written before it (a failed run may have changed things)."""
        err.details["changed"] = bool(self.applied or self.pruned or self.namespaces
                                      or any(h.get("name") for h in self.hooks))
        return err

    def _validate_hooks(self, missing_namespaces):
        """Dry-run every hook object (a create for generateName, an apply otherwise)."""
        def one(pair):
            entry, obj = pair
            ref = ref_of(obj)
            try:
                if ref["namespace"] in missing_namespaces:
                    validate_elsewhere(self.cluster, obj, self.opts.field_manager)
                elif (obj.get("metadata") or {}).get("name"):
                    self.cluster.apply(obj, self.opts.field_manager, force=True, dry_run=True)
                else:
                    self.cluster.create(obj, self.opts.field_manager, dry_run=True)
            except ApiError as err:
                return rejection(ref, entry.get("source"), err.server_message or str(err), (obj,))
            except GitOpsError as err:
                if (group_of(ref["apiVersion"]), ref["kind"]) in crd_kinds(self.bundle.objects):
                    return None  # its CRD is in this bundle and not served yet
                return rejection(ref, entry.get("source"), str(err), (obj,), unreachable=True)
            return None

        return [r for r in each(self.opts.concurrency, one, self.hook_pairs) if r]

    def _foreign_owners(self, claims=None):
        """{key: other app} for bundle objects another app's inventory records; fails unless adopt.

        As the run's index of owners says (``owners`` option, else every record read now); with the
        ``claims`` Lease held, as every record says now (see inventory.OwnerIndex.fresh).
        """
        keys = [i.key for i in self.plan.items]
        if not self.opts.owners:
            owners = self.store.owners(keys, self.app)
        elif claims:
            owners = self.opts.owners.fresh(keys, self.app, claims.transitions)
        else:
            owners = self.opts.owners.owners(keys, self.app)
        if owners and not self.opts.adopt:
            lines = ["%s is recorded in the inventory of app %s" % (describe(i.ref), owners[i.key])
                     for i in self.plan.items if i.key in owners]
            raise GitOpsError(
                "app %s would take over %d object(s) of other apps (set adopt: true to take them over):\n  %s"
                % (self.app, len(owners), "\n  ".join(lines)),
                owned_by_other_apps=[dict(i.ref, app=owners[i.key]) for i in self.plan.items if i.key in owners],
            )
        return owners

    # -- waves -----------------------------------------------------------------------------

    def _waves(self):
        """Every wave that has an object or a Sync hook, in order."""
        hooks = {e.get("wave", 0) for e, _obj in self.hook_pairs if "Sync" in (e.get("hook") or ())}
        return sorted({i.wave for i in self.plan.items} | hooks)

    def _write(self, item):
        """Write one object as the plan decided; returns an error message or None."""
        settings = self.plan.settings
        try:
            if item.takeover:
                self._take_over(item)
            if item.method == "recreate":
                self.cluster.delete(item.ref, propagation="Foreground")
                self._wait_gone([item.ref], "%s (recreated)" % describe(item.ref))
            out = write(self.cluster, item, settings)
        except GitOpsError as err:
            return redact(str(err), (item.obj,))
        self.applied[item.key] = out
        if item.method == "recreate":
            self.recreated.append(item.ref)
        return None

    def _take_over(self, item, attempts=5):
        """Move the client-side managers' fields to ours. The patch is guarded by the resourceVersion
        and controllers write status meanwhile: on a conflict, read the object again and retry."""
        live = item.live
        for attempt in range(attempts):
            try:
                self.cluster.json_patch(item.ref, migration_patch(live, self.opts.field_manager),
                                        self.opts.field_manager)
                return
            except ApiError as err:  # the "test" of the resourceVersion failed (422), or 409
                if err.status not in (409, 422) or attempt == attempts - 1:
                    raise
            live = self.cluster.get(item.ref)
            if live is None:
                return  # deleted meanwhile: the apply creates it, owned by us

    def _apply_wave(self, wave, items):
        changes = [i for i in items if i.action in ("create", "update")]
        first = [i for i in changes if (group_of(i.ref["apiVersion"]), i.ref["kind"]) in FIRST_KINDS]
        rest = [i for i in changes if i not in first]
        for batch in (first, rest):
            errors = each(self.opts.concurrency, lambda i: (i, self._write(i)), batch)
            failed = [(i, e) for i, e in errors if e]
            if failed:
                raise GitOpsError(
                    "wave %s: %d object(s) failed to apply:\n  %s" % (
                        wave, len(failed), "\n  ".join("%s (%s): %s" % (describe(i.ref), i.source, e) for i, e in failed)),
                    failed=[dict(i.ref, source=i.source, message=e) for i, e in failed], wave=wave,
                )
            crds = [i.ref for i in batch if i.ref["kind"] == "CustomResourceDefinition"]
            if crds:
                self._wait(crds, "the CustomResourceDefinitions of wave %s" % wave)
                self.cluster.forget_discovery()
                self._validate_custom_resources(wave)
            if self.lease:
                self.lease.check()
        if self._wait_waves():
            self._wait([i.ref for i in items], "wave %s" % wave)

    def _validate_custom_resources(self, wave):
        """Dry-run the bundle's custom resources whose CRD is now Established, before anything else of
        their wave (or a later one) is written."""
        pending = [i for i in self.plan.items if i.resource is None and i.wave >= wave]
        ready = []
        for item in pending:
            try:
                item.resource = self.cluster.resource(item.ref["apiVersion"], item.ref["kind"])
            except GitOpsError:
                continue  # its CRD comes in a later wave
            prepare_write(item, self.plan.settings)
            ready.append(item)
        rejected = dry_run(self.cluster, ready, self.plan.settings)
        if rejected:
            raise rejected_error(rejected, self.bundle.path, "only the CustomResourceDefinitions of wave %s and the "
                                 "waves before it were written" % wave)
        validated = {i.key for i in ready}
        self.plan.unvalidated = [r for r in self.plan.unvalidated if key_of(r) not in validated]

    def _wait_waves(self):
        if self.opts.wait_waves is not None:
            return self.opts.wait_waves
        waves = {i.wave for i in self.plan.items}
        return len(waves) > 1 or bool(self.hook_pairs)

    def _wait(self, refs, what):
        from ..health.watch import wait_healthy  # the health_wait engine; imported here to keep apply importable alone

        outcome = wait_healthy(self.cluster, refs, timeout=self.opts.timeout, fail_fast=True,
                               custom_health=self.opts.custom_health)
        if not outcome["healthy"]:
            raise GitOpsError("%s did not become healthy: %s" % (what, outcome["summary"]),
                              health=outcome.get("resources"))
        return outcome

    def _wait_gone(self, refs, what):
        """Wait until every one of ``refs`` is deleted (a name can be reused only then)."""
        deadline = time.monotonic() + self.opts.timeout
        for ref in refs:
            while self.cluster.get(ref) is not None:
                if time.monotonic() > deadline:
                    raise GitOpsError("%s is still being deleted after %ss" % (what, self.opts.timeout))
                time.sleep(0.2)

    # -- hooks -----------------------------------------------------------------------------

    def _run_hooks(self, phase, wave=None):
        """Run the hooks of ``phase`` (of one ``wave`` when given), wave by wave, as Argo CD orders them."""
        pairs = [(e, o) for e, o in self.hook_pairs if phase in (e.get("hook") or ())
                 and (wave is None or e.get("wave", 0) == wave)]
        for hook_wave in sorted({e.get("wave", 0) for e, _obj in pairs}):
            batch = [(e, o) for e, o in pairs if e.get("wave", 0) == hook_wave]
            started = each(self.opts.concurrency, lambda pair: self._start_hook(phase, *pair), batch)
            outcome = self._hook_outcome([h for h in started if h.get("name")])
            failed = [h for h in started if h["status"] != "Healthy"]
            for hook, (entry, _obj) in zip(started, batch):
                policy = entry.get("hook_delete_policy") or DEFAULT_HOOK_POLICY
                done = "HookSucceeded" if hook["status"] == "Healthy" else "HookFailed"
                if done in policy and hook.get("name"):
                    self.cluster.delete(_ref(hook), propagation="Background")
                    hook["deleted"] = True
            self.hooks.extend(started)
            if failed:
                raise GitOpsError(
                    "%s hook(s) failed: %s" % (phase, "; ".join("%s: %s" % (describe(_ref(h)), h["message"]) for h in failed)),
                    hooks=self.hooks, health=outcome,
                )

    def _start_hook(self, phase, entry, obj):
        body = copy.deepcopy(obj)
        ref = ref_of(obj)
        hook_id = _hook_id(self.app, ref)
        body["metadata"].setdefault("labels", {})[HOOK_LABEL] = hook_id
        policy = entry.get("hook_delete_policy") or DEFAULT_HOOK_POLICY
        hook = dict(ref, phase=phase, status="Progressing", message="", deleted=False, source=entry.get("source"))
        try:
            if "BeforeHookCreation" in policy:
                self._delete_previous_hooks(ref, hook_id, bool(body["metadata"].get("name")))
            if body["metadata"].get("name"):
                created = self.cluster.apply(body, self.opts.field_manager, force=True)
            else:
                created = self.cluster.create(body, self.opts.field_manager)
        except GitOpsError as err:
            hook.update(status="Degraded", message=redact(str(err), (obj,)), name="")
            return hook
        hook["name"] = created["metadata"]["name"]
        return hook

    def _delete_previous_hooks(self, ref, hook_id, fixed_name):
        resource = self.cluster.resource(ref["apiVersion"], ref["kind"])
        if fixed_name:
            previous = [ref] if self.cluster.delete(ref, propagation="Background") else []
        else:
            items, _version = self.cluster.list(resource, namespace=ref["namespace"] or None,
                                                label_selector="%s=%s" % (HOOK_LABEL, hook_id))
            previous = [ref_of(o) for o in items]
            for old in previous:
                self.cluster.delete(old, propagation="Background")
        self._wait_gone(previous, "%s (previous hook)" % describe(ref))

    def _hook_outcome(self, hooks):
        if not hooks:
            return None
        from ..health.watch import wait_healthy

        outcome = wait_healthy(self.cluster, [_ref(h) for h in hooks], timeout=self.opts.timeout, fail_fast=True,
                               custom_health=self.opts.custom_health)
        by_key = {key_of(r["ref"]): r for r in outcome["resources"]}
        for hook in hooks:
            found = by_key.get(key_of(_ref(hook))) or {}
            hook["status"] = found.get("status") or ("Healthy" if outcome["healthy"] else "Unknown")
            hook["message"] = found.get("message") or ""
        return outcome

    # -- prune -----------------------------------------------------------------------------

    def _prune(self, deletes, dry_run=False):
        """Delete ``deletes`` (reverse order) that pass the guards of prune.py; then see them go."""
        recorded = self.recorded
        others = None
        deleted = []
        for item in reversed(deletes):
            if self.lease:
                self.lease.check()
            if recreated(recorded.get(item.key), item.live):
                self._disown(item.ref)
                continue
            if guarded(item.ref):
                if others is None:
                    others = [r for r in self.store.read_all() if r.get("app") != self.app]
                why = refusal(item.ref, item.live, others, self.opts.inventory_namespace)
                if why:
                    self.prune_refused.append(dict(item.ref, message=why))
                    continue
            try:
                self.cluster.delete(item.ref, propagation=self.opts.prune_propagation, dry_run=dry_run,
                                    uid=(recorded.get(item.key) or {}).get("uid"))
            except ApiError as err:
                if err.status == 409:  # the uid precondition: recreated since we listed it
                    self._disown(item.ref)
                else:
                    self.prune_failed.append(dict(item.ref, message=str(err)))
                continue
            except GitOpsError as err:
                self.prune_failed.append(dict(item.ref, message=str(err)))
                continue
            deleted.append(item.ref)
        self.pruned.extend(deleted if dry_run else self._settled(deleted))

    def _disown(self, ref):
        self.disowned.add(key_of(ref))
        self.prune_refused.append(dict(ref, message="recreated by someone else since this app applied it (another "
                                                    "uid): not ours, not pruned, dropped from the record"))

    def _settled(self, refs):
        """The ``refs`` whose deletion no finalizer holds PRUNE_SETTLE seconds later; the others go
        to prune_failed and stay recorded. A Namespace still emptied by its controller, or an object
        whose dependents the garbage collector is still deleting, is on its way: pruned."""
        deadline, pending = time.monotonic() + PRUNE_SETTLE, list(refs)
        while True:
            live = {key_of(r): self._still_there(r) for r in pending}
            pending = [r for r in pending if _held(live[key_of(r)])]
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        for ref in pending:
            self.prune_failed.append(dict(ref, message="deletion is held by finalizer(s) %s"
                                          % ", ".join(_holding(live[key_of(ref)]))))
        return [r for r in refs if r not in pending]

    def _still_there(self, ref):
        try:
            return self.cluster.get(ref)
        except ApiError:
            raise
        except GitOpsError:  # its kind is no longer served (its CRD was pruned too): gone with it
            return None

    # -- records and result ----------------------------------------------------------------

    def _object_entries(self, record):
        """Inventory entries of every bundle object, fresh from our applies where there were any."""
        recorded = {key_of(o): o for o in record.get("objects") or ()}
        entries = []
        for item in self.plan.items:
            out = self.applied.get(item.key)
            if out is not None:
                entries.append(object_entry(item.ref, item.digest, out["metadata"].get("resourceVersion"),
                                            managed_fingerprint(out, self.opts.field_manager), out["metadata"].get("uid")))
            elif item.action == "unchanged" and item.fast:
                entries.append(dict(recorded[item.key], **_uid_of(item.live)))
            elif item.action == "unchanged":
                entries.append(object_entry(item.ref, item.digest, item.live["metadata"].get("resourceVersion"),
                                            managed_fingerprint(item.live, self.opts.field_manager),
                                            item.live["metadata"].get("uid")))
            elif item.key in recorded:  # not applied (the run failed first): keep what we knew
                entries.append(dict(recorded[item.key]))
            else:
                entries.append(object_entry(item.ref))
        return entries

    def _leftovers(self, record):
        """Inventory objects no longer in the bundle that still exist (not pruned, prune disabled, failed),
        marked ``orphaned`` unless prune is still to delete them, and those of kinds the cluster does not
        serve (never forgotten: they may come back); not those someone else recreated (not ours)."""
        gone = {key_of(r) for r in self.pruned} | self.disowned
        bundle = {i.key for i in self.plan.items}
        pruning = {i.key for i in self.plan.deletes} if self.opts.prune else set()
        live_left = {i.key for i in self.plan.deletes + self.plan.kept}
        unserved = {key_of(r) for r in self.plan.unserved}
        out = []
        for entry in record.get("objects") or ():
            entry = dict(entry)
            if key_of(entry) not in live_left and key_of(dict(entry, namespace="")) in live_left:
                entry["namespace"] = ""  # recorded with a namespace its cluster-scoped kind does not have
            key = key_of(entry)
            if key in bundle or key in gone or (key not in live_left and key not in unserved):
                continue
            if key in live_left and key not in pruning:
                entry["orphaned"] = True
            out.append(entry)
        return out

    def _record_final(self, result, message):
        """Write the outcome of the run: the record is read again (a health verdict may have been
        written meanwhile) and this run's outcome put on it, under the Lease."""
        duration = time.monotonic() - self.started

        def change(record):
            record.update({
                "objects": self._object_entries(record) + self._leftovers(record),
                "revision": self.opts.revision if result == "Succeeded" else record.get("revision"),
                "digest": self.bundle.digest if result == "Succeeded" else record.get("digest"),
                "time": time.time(), "result": result, "message": message, "trigger": self.opts.trigger,
                "field_manager": self.opts.field_manager,
            })
            return push_history(record, history_entry(
                self.opts.revision, self.bundle.digest, result, self.opts.trigger, rollback_of=self.opts.rollback_of,
                message=message, duration=duration), self.opts.history_limit)

        try:
            self.store.update(self.app, change, lease=self.lease)
        except GitOpsError as err:
            raise GitOpsError("app %s was applied (%s) but its inventory could not be written: %s"
                              % (self.app, result, err), inventory=self.store.where(self.app))

    def _record_noop(self, record):
        """Nothing to change: refresh fingerprints; a new revision or digest gets a history entry."""
        entries = self._object_entries(record) + self._leftovers(record)
        new_revision = (self.opts.revision, self.bundle.digest) != (record.get("revision"), record.get("digest"))
        if not new_revision and entries == record.get("objects") and record.get("result") == "Succeeded":
            return
        self._record_final("Succeeded", None)

    def _refs(self, action):
        return [i.ref for i in self.plan.items if i.action == action and (self.check or i.key in self.applied)]

    def _result(self, record, noop):
        plan = self.plan
        result = {
            "changed": not noop or bool(self.namespaces),
            "created": self._refs("create"),
            "configured": self._refs("update"),
            "unchanged": [i.ref for i in plan.items if i.action == "unchanged"],
            "pruned": self.pruned,
            "prune_failed": self.prune_failed,
            "prune_refused": self.prune_refused,
            "prune_skipped": [i.ref for i in plan.kept] + ([] if self.opts.prune else [i.ref for i in plan.deletes]),
            "orphaned": [] if self.opts.prune else [i.ref for i in plan.deletes],
            "unserved": plan.unserved,
            "recreated": self.recreated,
            "namespaces_created": self.namespaces,
            "hooks": self.hooks,
            "unvalidated": plan.unvalidated,
            "revision": self.opts.revision,
            "digest": self.bundle.digest,
            "inventory": self.store.where(self.app),
            "summary": dict(plan.summary(), delete=len(self.pruned)),
            "fast_path": sum(1 for i in plan.items if i.fast),
            "duration": round(time.monotonic() - self.started, 3),
            "api_requests": self.cluster.requests_made - self.requests_before,
        }
        if self.want_diff:
            result["resources"], result["ansible_diff"] = report(plan, show_secrets=self.opts.show_secrets,
                                                                 deletes=plan.deletes if self.opts.prune else [])
        return result


# Finalizers of the garbage collector itself: they end on their own.
GC_FINALIZERS = ("foregroundDeletion", "orphan")


def _holding(live):
    return [f for f in (live or {}).get("metadata", {}).get("finalizers") or () if f not in GC_FINALIZERS]


def _held(live):
    return live is not None and bool(_holding(live))


def _uid_of(live):
    uid = ((live or {}).get("metadata") or {}).get("uid")
    return {"uid": uid} if uid else {}


def _ref(hook):
    return {k: hook.get(k) or "" for k in ("apiVersion", "kind", "namespace", "name")}
