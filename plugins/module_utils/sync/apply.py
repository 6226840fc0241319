# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The gitops.k8s.apply engine: a bundle into the cluster, validated first, in order, on record.

  1. lease       one run per app (cluster/lease.py); check mode takes no lease
  2. namespaces  the namespaces the bundle's objects live in that exist neither in the cluster nor
                 in the bundle are created first (with ``managed_namespace_metadata``), so that
                 everything is validated in its real namespace (quotas, Pod Security, webhooks)
                 (namespaces.py)
  3. plan        compare.make_plan: one LIST per kind, fast path, a server-side dry-run of every
                 other object and hook; any rejection fails the run listing all of them, nothing
                 else written (here)
  4. record      the inventory gets the union of its objects and the bundle's; objects new to the
                 app are claimed (claims.py)
  5. sync        PreSync hooks; then each wave in order: Namespaces and CRDs first (CRDs
                 Established, then the custom resources of the bundle dry-run before anything else
                 of their wave is written), the rest concurrently, then the wave's Sync hooks; with
                 wait_waves each wave healthy before the next; then PostSync hooks. SyncFail hooks
                 when a step fails (waves.py, hooks.py)
  6. prune       inventory objects not in the bundle, reverse order, prune-disabled ones kept, the
                 guards of prune_guards.py (uid, Namespaces and CRDs) checked; a deletion that fails
                 or that a finalizer holds keeps the object recorded and fails the run (prune.py)
  7. record      the final object set, revision, result and a history entry (record.py)

The bundle is validated whole before the first write (step 3), then written wave by wave. A step
that fails after the first write stops the run there: what was written stays (apply undoes
nothing), SyncFail hooks run, the record says Failed and the error lists what was written.

Every record write goes through ``Inventory.update`` under the app's Lease. A plan with nothing to
create, update or prune is a no-op: no hooks run, no wave is waited for.

Two clients: ``cluster`` is the app's (possibly acting as the app's identity, see
``Cluster.as_identity``) and sends every request about the app's objects: reads, dry-runs,
writes, prune deletes, hooks and waits. ``records_client`` is the run's own: records, the app's
Lease and the claims Lease (discovery is always the run's, see cluster/client.py).
"""

from __future__ import annotations

import time

from ..cluster.lease import Lease
from ..cluster.records import INVENTORY_NAMESPACE, Inventory, key_secret_digests, new_record
from ..errors import GitOpsError
from ..refs import describe, key_of
from . import claims, hooks, namespaces, prune, waves
from .compare import diff_report, make_plan, rejected_error
from .ignore import check_ignore_rules
from .record import record_final, record_noop


class Options:
    """Every knob of apply, with the module's defaults."""

    def __init__(self, field_manager="gitops.k8s", force_conflicts=True, prune=False, prune_allow_empty=False,
                 prune_propagation="Background", create_namespaces=True, concurrency=8, wait_waves=None,
                 timeout=300, lock=True, lock_timeout=60, history_limit=10, adopt=False, ignore=(),
                 inventory_namespace=INVENTORY_NAMESPACE, inventory_kind="ConfigMap", trigger="push",
                 rollback_of=None, custom_health=None, show_secrets=False, revision=None,
                 replace_on_immutable=False, managed_namespace_metadata=None, owners=None, override=None):
        self.field_manager, self.force_conflicts = field_manager, force_conflicts
        self.prune, self.prune_allow_empty, self.prune_propagation = prune, prune_allow_empty, prune_propagation
        self.create_namespaces, self.concurrency, self.wait_waves = create_namespaces, max(1, concurrency), wait_waves
        self.timeout, self.lock, self.lock_timeout = timeout, lock, lock_timeout
        self.history_limit, self.adopt, self.ignore = history_limit, adopt, check_ignore_rules(ignore)
        self.inventory_namespace, self.inventory_kind = inventory_namespace, inventory_kind
        self.trigger, self.rollback_of, self.custom_health = trigger, rollback_of, custom_health
        self.show_secrets, self.revision = show_secrets, revision
        # records.OwnerIndex: who records which object, from the records the per-cluster engine
        # read once for all its apps; None: every record is read for each question
        self.owners = owners
        self.replace_on_immutable = replace_on_immutable
        self.managed_namespace_metadata = managed_namespace_metadata or {}
        self.override = override  # why a push went through a deployment window: kept on its history entry


def apply(cluster, bundle, app, options=None, check=False, want_diff=False, lease=None, live=None,
          records_client=None):
    """Apply ``bundle`` as application ``app``; returns the module result (see modules/apply.py).

    ``want_diff`` adds ``resources`` and ``ansible_diff`` (the diff module's report) to the result.
    ``lease``: the app's Lease, already held by the caller (who decided under it and releases it);
    without one, apply takes and releases its own (``options.lock``). ``live`` serves the plan's
    LISTs (see compare.make_plan). ``records_client``: the client of records and Leases (the module
    docstring); None: ``cluster``.
    """
    options = options or Options()
    if bundle.revision and options.revision and bundle.revision != options.revision:
        raise GitOpsError("bundle %s was rendered from revision %s, not %s: refusing to record one revision for "
                          "another's content" % (bundle.path, bundle.revision, options.revision),
                          bundle=bundle.path, bundle_revision=bundle.revision, revision=options.revision)
    records_client = records_client or cluster
    store = Inventory(records_client, options.inventory_namespace, options.inventory_kind)
    retries_before = cluster.retries_made
    own_lease = None
    if not check:
        store.ensure_namespace()
    bundle = key_secret_digests(bundle, store.digest_key(create=not check))
    if not check and options.lock and lease is None:
        lease = own_lease = Lease(records_client, app, options.inventory_namespace)
        own_lease.acquire(options.lock_timeout)
    try:
        result = ApplyRun(cluster, store, bundle, app, options, lease, check, want_diff, live).execute()
    finally:
        if own_lease:
            own_lease.release()
    result["api_retries"] = cluster.retries_made - retries_before
    return result


class ApplyRun:
    """One apply of one bundle as one app: the state each step reads and fills in. The steps are
    functions of the step modules taking this run first (see the module docstring)."""

    def __init__(self, cluster, store, bundle, app, options, lease, check, want_diff, live=None):
        self.cluster = cluster  # the app's client; ``store`` (the Inventory) has the run's
        self.store, self.bundle, self.app, self.opts = store, bundle, app, options
        self.lease, self.check, self.want_diff, self.live = lease, check, want_diff, live
        self.started = time.monotonic()
        self.requests_before = cluster.requests_made
        self.plan = None
        self.recorded = {}  # key -> entry of the app's record as the run found it
        self.foreign = {}   # {key: app} of bundle objects other apps record (see claims.foreign_owners)
        self.listed = {}    # (group, plural, namespace, names) -> objects: see list_live
        self.hook_pairs = [(e, o) for e, o in bundle.pairs() if e.get("hook")]
        # what the run did: the result, the record and a failure's error report it
        self.applied = {}   # key -> server response of our write
        self.namespaces, self.recreated, self.hooks = [], [], []
        self.pruned, self.prune_failed, self.prune_refused = [], [], []
        self.disowned = set()  # keys recorded but recreated by someone else: dropped from the record

    def execute(self):
        """Steps 2 to 7; returns the module result."""
        record = self.store.read(self.app)[0] or new_record(self.app)
        self.recorded = {key_of(o): o for o in record.get("objects") or ()}
        namespaces.prepare_namespaces(self)
        self._make_plan(record)
        self.foreign = claims.foreign_owners(self)  # fails naming the apps that record any object (unless adopt)
        deletes = prune.to_prune(self)
        noop = not self.plan.changes and not deletes
        if self.check:
            prune.prune_objects(self, deletes, dry_run=True)
            return self.result(noop)
        if noop:
            record_noop(self, record)
            return self.result(noop)
        claims.record_running(self)
        try:
            self._sync(deletes)
        except GitOpsError as err:
            self._fail(err)
        record_final(self, "Succeeded", None)
        return self.result(noop)

    def list_live(self, resource, namespace, names=None):
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
            live=self.list_live, replace_on_immutable=self.opts.replace_on_immutable,
        )
        rejected = self.plan.rejected + hooks.validate_hooks(self, self.plan.missing_namespaces)
        if rejected:
            written = "only namespace(s) %s were created" % ", ".join(self.namespaces) if self.namespaces else None
            raise self._with_changes(rejected_error(rejected, self.bundle.path, written))

    def _sync(self, deletes):
        """Steps 5 and 6: hooks and waves in order, then prune."""
        hooks.run_hooks(self, "PreSync")
        for wave in waves.waves(self):
            waves.apply_wave(self, wave, [i for i in self.plan.items if i.wave == wave])
            hooks.run_hooks(self, "Sync", wave)
        hooks.run_hooks(self, "PostSync")
        prune.prune_objects(self, deletes)
        if self.prune_failed:
            raise GitOpsError("%d object(s) could not be pruned (they stay recorded):\n  %s" % (
                len(self.prune_failed), "\n  ".join("%s: %s" % (describe(f), f["message"]) for f in self.prune_failed)),
                prune_failed=self.prune_failed)

    def _fail(self, err):
        """A step failed: SyncFail hooks, the record says Failed, the error says what was written."""
        message = str(err)
        try:
            hooks.run_hooks(self, "SyncFail")
        except GitOpsError as hook_err:
            message += "; SyncFail hooks failed too: %s" % hook_err
        record_final(self, "Failed", message)
        err.details.setdefault("inventory", self.store.where(self.app))
        details = dict(err.details, hooks=self.hooks, created=self.written("create"),
                       configured=self.written("update"), pruned=self.pruned, prune_failed=self.prune_failed,
                       prune_refused=self.prune_refused)
        raise self._with_changes(GitOpsError(message, **details))

    def _with_changes(self, err):
        """``err`` saying whether anything was written before it (a failed run may have changed things)."""
        err.details["changed"] = bool(self.applied or self.pruned or self.namespaces
                                      or any(h.get("name") for h in self.hooks))
        return err

    def written(self, action):
        """The refs of the plan's ``action`` (create, update) this run wrote (would write, in check mode)."""
        return [i.ref for i in self.plan.items if i.action == action and (self.check or i.key in self.applied)]

    def result(self, noop):
        """The module result (see modules/apply.py)."""
        plan, prunes = self.plan, self.opts.prune
        result = {
            "changed": not noop or bool(self.namespaces),
            "created": self.written("create"),
            "configured": self.written("update"),
            "unchanged": [i.ref for i in plan.items if i.action == "unchanged"],
            "pruned": self.pruned,
            "prune_failed": self.prune_failed,
            "prune_refused": self.prune_refused,
            "prune_skipped": [i.ref for i in plan.kept] + ([] if prunes else [i.ref for i in plan.deletes]),
            "orphaned": [] if prunes else [i.ref for i in plan.deletes],
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
            result["resources"], result["ansible_diff"] = diff_report(plan, show_secrets=self.opts.show_secrets,
                                                                      deletes=plan.deletes if prunes else [])
        return result
