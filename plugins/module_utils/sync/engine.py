# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The per-cluster sync engine: every application of one cluster converged by one process.

  1. plan      validate ``gitops_apps``, order them by ``depends_on`` (apps.py)
  2. sources   each repository listed and fetched once, each commit checked out once, read-only
               (checkouts.py)
  3. render    each (commit, path, namespace, render options) rendered once into a bundle
  4. read      discovery once, every record with one LIST, one LIST per kind for all apps (a GET
               per object when the run names few of a kind: live_snapshot.py)
  5. decide    per app, from that one read: unchanged, new revision, drift (diff.make_plan's fast
               path: an unchanged app costs no request at all)
  6. converge  dependency level after level, the apps of a level concurrently; for each app that
               has work: its Lease, the decision checked again under it (another run may have
               moved the app meanwhile), apply, health wait, verdict recorded, rollback on failure
  7. results   one result per app in the shape report.py reads; ``progress`` gets one line per
               app as it finishes

Every step of an app is guarded: a failure is that app's (``error`` names the step), never the
run's; apps that depend on it are skipped.
"""

from __future__ import annotations

import json
import time

from ..report import run_report as report
from .apply import CLAIMS_LEASE, Options, apply
from ..apps.gitops_apps import normalize_app, plan as plan_apps
from ..bundle import Bundle
from ..sources.charts import app_revision, pull as pull_chart
from ..sources.checkouts import Sources
from ..concurrency import each
from .compare import make_plan, report as diff_report, rejected_error
from ..errors import GitOpsError
from ..health import Health, assess, worst
from ..cluster.records import (INVENTORY_NAMESPACE, Inventory, OwnerIndex, current_entry, key_secret_digests, record_health,
                        rollback_target)
from ..cluster.lease import Lease
from ..cluster.snapshot import LiveSnapshot
from ..refs import describe, key_of
from ..sources.git import cache_root

DEFAULT_CONCURRENCY = 4
DEFAULT_LOCK_TIMEOUT = 300
# App keys that are not render options of the app's `render` mapping.
RENDER_RESERVED = ("source", "path", "namespace", "dest", "check_mode", "revision", "helm", "chart")


class Settings:
    """How one run goes: mode (push | reconcile), selection, revision override, check/diff mode."""

    def __init__(self, mode="reconcile", select=None, revision=None, cluster_name="cluster", check=False,
                 want_diff=False, concurrency=DEFAULT_CONCURRENCY, lock_timeout=DEFAULT_LOCK_TIMEOUT,
                 inventory_namespace=INVENTORY_NAMESPACE, inventory_kind="ConfigMap", progress=None, complete=False):
        if mode not in ("push", "reconcile"):
            raise GitOpsError("mode must be push or reconcile, not %r" % (mode,))
        self.mode, self.select, self.revision = mode, select, revision or None
        self.cluster_name, self.check, self.want_diff = cluster_name, check, want_diff
        self.concurrency, self.lock_timeout = max(1, int(concurrency)), lock_timeout
        self.inventory_namespace, self.inventory_kind = inventory_namespace, inventory_kind
        self.progress = progress or (lambda line: None)
        # ``apps`` is every application of the cluster: the recorded ones missing from it departed
        self.complete = complete
        self.owners = None  # set by the read phase (see read_cluster)
        self.digest_key = None  # the cluster's key for Secret digests in records, set by the read phase

    @property
    def trigger(self):
        return "push" if self.mode == "push" else "pull"


class AppSync:
    """One application's way through a run; ``result()`` is what the report reads."""

    def __init__(self, app, settings):
        self.app, self.name, self.settings = app, app["name"], settings
        self.started = time.monotonic()
        self.decision, self.error, self.skipped = "", {}, None
        self.resolved = self.checkout = self.chart = self.bundle = self.record = self.record_after = None
        self.fetch, self.diff, self.apply, self.health, self.rollback = {}, {}, {}, {}, {}
        self.ansible_diff = []
        self.needs_apply = False
        self.note = ""  # why an app with a new commit was left alone

    @property
    def failed(self):
        return bool(self.error) or bool(self.skipped)

    def fail(self, step, err):
        self.error = {"step": step, "msg": str(err)}
        if isinstance(err, GitOpsError):
            self.error["details"] = {k: v for k, v in err.details.items() if k in ("rejected", "failed", "object", "file")}

    def guard(self, step, func, *args):
        """Run one step of this app; a GitOpsError becomes the app's error."""
        if self.failed:
            return None
        try:
            return func(*args)
        except GitOpsError as err:
            self.fail(step, err)
        return None

    def result(self):
        info = dict(self.record_after or self.record or {})
        info.pop("objects", None)
        return {
            "app": self.name, "cluster": self.settings.cluster_name, "namespace": self.app.get("namespace"),
            "trigger": self.settings.trigger, "decision": self.decision, "ok": not self.error,
            "check_mode": self.settings.check, "duration": round(time.monotonic() - self.started, 3),
            "fetch": self.fetch, "info": {"record": info or None}, "diff": self.diff, "apply": self.apply,
            "health": self.health, "rollback": self.rollback, "error": self.error, "note": self.note,
        } if not self.skipped else {
            "app": self.name, "cluster": self.settings.cluster_name, "namespace": self.app.get("namespace"),
            "ok": False, "skipped": self.skipped, "error": {"step": "dependencies", "msg": self.skipped},
        }


def sync_cluster(cluster, apps, settings, sources=None):
    """Converge the applications ``apps`` (gitops_apps) on ``cluster``; returns the task result."""
    started, requests_before = time.monotonic(), cluster.requests_made
    planned = plan_apps(apps, settings.select)
    planned["filtered"] = planned["selected"] != [a.get("name") for a in apps]
    by_name = {app["name"]: app for app in (normalize_app(a, i) for i, a in enumerate(apps))}
    runs = {name: AppSync(by_name[name], settings) for level in planned["levels"] for name in level}
    sources = sources or Sources()
    sources.evict()  # checkouts and repositories no run has used for long (cache.py)
    phases = {}

    def phase(name, func, *args):
        begun = time.monotonic()
        func(*args)
        phases[name] = round(time.monotonic() - begun, 3)

    store = Inventory(cluster, settings.inventory_namespace, settings.inventory_kind)
    phase("sources", fetch_sources, list(runs.values()), sources, settings)
    phase("render", render_bundles, list(runs.values()), settings)
    refuse_shared_objects(list(runs.values()))
    snapshot = LiveSnapshot(cluster)
    records = {}
    try:
        phase("read", read_cluster, list(runs.values()), cluster, store, snapshot, settings, records)
    except GitOpsError as err:  # the cluster cannot be read: no app can be compared or synced
        for run in runs.values():
            run.guard("read", _raise, err)
    phase("decide", decide_all, list(runs.values()), cluster, snapshot, sources, settings)
    if not settings.check and any(run.needs_apply and not run.failed for run in runs.values()):
        store.ensure_namespace()  # once, for every Lease and record of the run
    phase("converge", converge_levels, planned["levels"], runs, cluster, store, sources, snapshot, settings)
    if not settings.check:
        stamp_records(list(runs.values()), store, settings)
    results = [runs[name].result() for level in planned["levels"] for name in level]
    results += [{"app": name, "cluster": settings.cluster_name, "namespace": by_name[name]["namespace"],
                 "skipped": "suspended", "suspended": True} for name in planned["suspended"]]
    departed = [(name, by_name.get(name)) for name in planned["absent"]]
    if settings.complete and settings.mode == "reconcile" and not planned["filtered"]:
        departed += [(name, None) for name, record in sorted(records.items())
                     if name not in by_name and record.get("cluster") == settings.cluster_name]
    if departed:
        phase("remove", remove_departed, departed, records, cluster, store, settings, results)
    diffs = [d for level in planned["levels"] for name in level for d in runs[name].ansible_diff]
    return {
        "changed": any(r.get("apply", {}).get("changed") for r in results),
        "results": results,
        "failed_apps": [r["app"] for r in results if not r.get("ok", True) and not r.get("suspended")],
        "phases": phases,
        "duration": round(time.monotonic() - started, 3),
        "api_requests": cluster.requests_made - requests_before,
        "ansible_diff": diffs,
    }


# -- 2. sources --------------------------------------------------------------------------------

def fetch_sources(runs, sources, settings):
    """Resolve every app's version and check its commit out; each repository once, concurrently."""
    by_repo = {}
    for run in runs:
        by_repo.setdefault(run.app["repo"], []).append(run)

    def one_repo(group):
        for run in group:
            run.guard("fetch", fetch_one, run, sources, settings)

    each(settings.concurrency, one_repo, list(by_repo.values()))


def fetch_one(run, sources, settings):
    version = settings.revision or run.app.get("version")
    resolved, commit = {}, None
    if run.app["repo"]:  # a chart from a repository may have no Git repo, or one holding its values
        resolved = sources.resolve(run.app["repo"], version, run.app["credentials"])
        run.checkout, commit = sources.checkout(resolved, run.app["credentials"])
    if (run.app["helm"] or {}).get("repo"):
        run.chart = pull_chart(run.app["helm"], cache_root())
        resolved = dict(resolved, revision=app_revision(run.chart, resolved.get("revision")), chart=run.chart)
    run.resolved = resolved
    run.fetch = dict(run.resolved, commit=commit, path=run.checkout, changed=False, previous_revision=None)


# -- 3. render ---------------------------------------------------------------------------------

def render_bundles(runs, settings):
    """Render each distinct (commit, path, namespace, render options, helm) once (``render_app``)."""
    groups = {}
    for run in runs:
        if run.failed:
            continue
        key = json.dumps([run.resolved["revision"], run.app["path"], run.app["namespace"], run.app["render"],
                          run.app["helm"]], sort_keys=True)
        groups.setdefault(key, []).append(run)

    def one(group):
        first = group[0]
        try:
            bundle = render_app(first.app, first.checkout, first.resolved["revision"], first.chart)
        except GitOpsError as err:
            for run in group:
                run.fail("render", err)
            return
        for run in group:
            run.bundle = bundle

    each(settings.concurrency, one, list(groups.values()))


def render_app(app, checkout, revision, chart=None):
    """The bundle of ``app`` at ``revision``: the ``checkout`` of that commit (and the ``chart``
    pulled for it) rendered with the app's path, namespace, render options and ``helm`` (the
    credentials of the chart's dependency repositories), or recalled from an earlier run
    (render/memo.py). A sync and its rollback both render through here, so a rollback renders
    the revision as its sync did."""
    from ..render import memo, render_bundle  # the renderers are only needed when something is rendered

    options = dict(app["render"])
    clash = sorted(set(options) & set(RENDER_RESERVED))
    if clash:
        raise GitOpsError("render options may not set %s" % ", ".join(clash))
    # a Git commit's tree (a chart's content is not a commit's: never remembered)
    remembered = None if app["helm"] or chart else memo.key(
        revision, {"path": app["path"], "namespace": app["namespace"], "options": options})
    bundle = memo.recall(remembered) if remembered else None
    if bundle is None:
        try:
            _result, bundle = render_bundle(checkout, path=app["path"], namespace=app["namespace"], revision=revision,
                                            helm=app["helm"], chart=chart, **options)
        except TypeError as err:  # an unknown render option
            raise GitOpsError("bad render option: %s" % err)
        if remembered:
            memo.remember(remembered, bundle)
    return bundle


def refuse_shared_objects(runs):
    """An object declared by two apps of the run would be owned by whichever applied last: both fail."""
    declared = {}
    for run in runs:
        for entry in (run.bundle.entries if run.bundle and not run.failed else ()):
            if not entry.get("hook") and entry.get("name"):
                declared.setdefault(key_of(entry), []).append((run, entry))
    for pairs in declared.values():
        if len({run.name for run, _entry in pairs}) < 2:
            continue
        where = ", ".join("app %s (%s)" % (run.name, entry.get("source")) for run, entry in pairs)
        for run, entry in pairs:
            if not run.failed:
                run.fail("render", GitOpsError("%s is declared by more than one application: %s"
                                               % (describe(entry), where), object=entry))


# -- 4. read -----------------------------------------------------------------------------------

def read_cluster(runs, cluster, store, snapshot, settings, records):
    """Every record (one LIST, into ``records``) and every object any app's bundle or record names
    (live_snapshot.py: one LIST per kind, or a GET each when the run names few). Who owns which
    object is answered from these records for the whole run (two apps of the run cannot declare
    one object: see ``refuse_shared_objects``), kept fresh across the claims of other runs
    (inventory.OwnerIndex)."""
    transitions = -1  # no claims Lease yet (see inventory.OwnerIndex)
    if _inventory_exists(cluster, store):
        claims = cluster.get({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                              "namespace": store.namespace, "name": CLAIMS_LEASE})
        if claims is not None:  # held: a claim may be half written, so the first claim reads again
            spec = claims.get("spec") or {}
            transitions = None if spec.get("holderIdentity") else spec.get("leaseTransitions", 0)
        records.update((r.get("app"), r) for r in store.read_all())
        settings.digest_key = store.digest_key()  # the record keys Secret digests: compare alike
    settings.owners = OwnerIndex(records.values(), store, transitions)
    for run in runs:
        run.record = records.get(run.name)
        if run.record:
            run.fetch["previous_revision"] = run.record.get("revision")
        if run.resolved:
            run.fetch["changed"] = run.fetch["revision"] != run.fetch["previous_revision"]
        refs = [e for e in (run.bundle.entries if run.bundle else ()) if not e.get("hook")]
        refs += list((run.record or {}).get("objects") or ())
        for ref in refs:
            try:
                resource = cluster.resource(ref["apiVersion"], ref["kind"])
            except GitOpsError:
                continue  # a kind that is not served (yet): the app's own plan says what it means
            if ref.get("name"):
                snapshot.want(resource, ref.get("namespace") or None, ref["name"])
    snapshot.load(settings.concurrency)


def _inventory_exists(cluster, store):
    try:
        return cluster.get({"apiVersion": "v1", "kind": "Namespace", "name": store.namespace}) is not None
    except GitOpsError:
        return True  # cannot tell (no permission to read namespaces): read_all says more


# -- 5. decide ---------------------------------------------------------------------------------

def decide_all(runs, cluster, snapshot, sources, settings):
    def one(run):
        run.guard("diff", decide, run, cluster, snapshot, sources, settings)

    each(settings.concurrency, one, [r for r in runs if not r.failed])


def decide(run, cluster, snapshot, sources, settings):
    """Set ``run.decision`` and ``run.needs_apply`` from the one read of the cluster."""
    record, bundle, sha = run.record or {}, run.bundle, run.resolved["revision"]
    # A new commit of a repository many apps share leaves most of their bundles as they were: an
    # app whose content is what it last applied (and whose objects did not drift) has nothing to
    # do, whatever the revision. Its record keeps the revision that last changed it.
    same_content = (record.get("digest"), record.get("result")) == (bundle.digest, "Succeeded")
    if settings.mode == "push":
        run.decision = "sync"
    elif record.get("revision") == sha or same_content:
        run.decision = "in sync"
    elif sha in [h.get("rollback_of") for h in record.get("history") or ()]:
        run.decision = "rolled back before"  # waits for a new commit (or a push), not retried each run
    else:
        run.decision = "new revision"
    if run.decision in ("sync", "new revision") and not same_content:
        if moves_back(run, record.get("revision"), sources, settings):
            run.health = snapshot_health(run, snapshot)
        else:
            run.needs_apply = True
        return
    plan = make_plan(cluster, key_secret_digests(bundle, settings.digest_key), record,
                     ignore=run.app["ignore_differences"], concurrency=settings.concurrency,
                     replace_on_immutable=run.app["replace_on_immutable"], live_index=snapshot.index)
    if plan.rejected:
        raise rejected_error(plan.rejected, bundle.path)
    deletes = plan.deletes if run.app["prune"] else []
    resources, ansible_diff = diff_report(plan, run.app["ignore_differences"], deletes=deletes)
    run.diff = {"changed": bool(resources), "summary": plan.summary(), "resources": resources,
                "fast_path": sum(1 for i in plan.items if i.fast),
                "orphaned": [] if run.app["prune"] else [i.ref for i in plan.deletes]}
    if not resources:
        run.health = snapshot_health(run, snapshot)
        return
    if run.decision == "in sync":
        run.decision = "drift"
        run.needs_apply = bool(run.app["self_heal"])
    elif run.decision == "sync":
        run.needs_apply = True
    if not run.needs_apply:
        run.ansible_diff = ansible_diff if settings.want_diff else []
        run.health = snapshot_health(run, snapshot)


def bundle_refs(cluster, bundle):
    """The bundle's objects (hooks excluded) as references, cluster-scoped ones without a namespace
    (scope from discovery: a custom cluster-scoped kind keeps the app's namespace in the bundle)."""
    refs = []
    for entry in bundle.entries if bundle else ():
        if entry.get("hook"):
            continue
        ref = {k: entry.get(k) or "" for k in ("apiVersion", "kind", "namespace", "name")}
        try:
            if not cluster.resource(ref["apiVersion"], ref["kind"]).namespaced:
                ref["namespace"] = ""
        except GitOpsError:
            pass  # not served: reported Missing by the health rules
        refs.append(ref)
    return refs


def snapshot_health(run, snapshot):
    """The bundle objects' health as the snapshot shows them: a reading, not a wait."""
    resources = []
    for ref in bundle_refs(snapshot.cluster, run.bundle):
        status, message = assess(snapshot.get(ref), run.app["custom_health"] or None)
        resources.append({"ref": ref, "status": status, "message": message})
    status = worst(r["status"] for r in resources) if resources else Health.HEALTHY
    return {"healthy": status in Health.SETTLED, "status": status, "resources": resources, "waited": False}


# -- 6. converge -------------------------------------------------------------------------------

def converge_levels(levels, runs, cluster, store, sources, snapshot, settings):
    """Level after level; a failed dependency skips its dependents, unrelated apps go on."""
    for level in levels:
        batch = []
        for name in level:
            run = runs[name]
            blocking = [dep for dep in run.app["depends_on"] if dep in runs and runs[dep].failed]
            if blocking and not run.failed:
                run.skipped = "not synced: dependency %s did not succeed" % ", ".join(blocking)
            batch.append(run)
        each(settings.concurrency, lambda run: converge_one(run, cluster, store, sources, snapshot, settings), batch)


def converge_one(run, cluster, store, sources, snapshot, settings):
    if run.needs_apply and not run.failed:
        if settings.check:
            run.guard("apply", apply_app, run, cluster, run.bundle, run.resolved["revision"], None, None, settings)
            run.health = snapshot_health(run, snapshot)
        else:
            run.guard("apply", converge_under_lease, run, cluster, store, sources, settings)
    settings.progress(report.status_lines([report.app_row(run.result())])[0])


def converge_under_lease(run, cluster, store, sources, settings):
    """Lease, decision checked again, apply, health wait and verdict, rollback on failure."""
    lease = Lease(cluster, run.name, settings.inventory_namespace)
    lease.acquire(settings.lock_timeout)
    try:
        if superseded(run, store.read(run.name)[0] or {}, sources, settings):
            return
        run.guard("apply", apply_app, run, cluster, run.bundle, run.resolved["revision"], None, lease, settings)
        run.guard("health", wait_and_record, run, cluster, store, run.bundle, run.health, settings)
        if not run.failed and run.app["wait"]["enabled"] and not run.health.get("healthy"):
            run.fail("health", GitOpsError(run.health.get("summary") or "not healthy"))
        if run.error and run.error["step"] in ("apply", "health") and run.app["rollback"]:
            roll_back(run, cluster, store, sources, lease, settings)
    finally:
        lease.release()


def moves_back(run, recorded, sources, settings):
    """True (and the app left alone, said ``superseded``) when its commit is older than the one the
    cluster runs (an ancestor of it): a reconcile that listed the branch before a push landed must
    not revert the push. An explicit ``gitops_revision`` or a rollback goes back on purpose."""
    sha = run.resolved["revision"]
    if not recorded or recorded == sha or (settings.mode == "push" and settings.revision) or run.chart:
        return False  # (chart versions are not a line of history)
    if not sources.is_ancestor(run.resolved, recorded, run.app["credentials"]):
        return False
    run.decision, run.needs_apply = "superseded", False
    run.note = ("the cluster runs %s, newer than %s: not moved back (push with gitops_revision to go back)"
                % (recorded[:7], sha[:7]))
    run.diff = {"changed": True, "resources": [], "summary": {}}  # Git's target is not what runs
    return True


def superseded(run, record, sources, settings):
    """True (and the app left alone) when another run moved the app since this run decided, to a
    revision this one would revert (see ``moves_back``) or that is the same."""
    decided = (run.record or {}).get("revision")
    if record.get("revision") == decided:
        return False
    run.record_after = record
    run.fetch["previous_revision"] = record.get("revision")
    if record.get("revision") == run.resolved["revision"] and \
            (record.get("digest"), record.get("result")) == (run.bundle.digest, "Succeeded"):
        run.decision, run.needs_apply = "superseded", False
        run.note = "another run synced %s while this one decided" % record["revision"][:7]
        run.diff = {"changed": False, "resources": [], "summary": {}}
        return True
    return moves_back(run, record.get("revision"), sources, settings)


def apply_app(run, cluster, bundle, revision, rollback_of, lease, settings):
    options = Options(
        prune=run.app["prune"], ignore=run.app["ignore_differences"], custom_health=run.app["custom_health"] or None,
        trigger=settings.trigger, revision=revision, rollback_of=rollback_of, timeout=run.app["wait"]["timeout"],
        inventory_namespace=settings.inventory_namespace, inventory_kind=settings.inventory_kind,
        lock_timeout=settings.lock_timeout, owners=settings.owners, create_namespaces=run.app["create_namespace"],
        replace_on_immutable=run.app["replace_on_immutable"],
        managed_namespace_metadata=run.app["managed_namespace_metadata"],
    )
    result = apply(cluster, bundle, run.name, options, check=settings.check, want_diff=settings.want_diff, lease=lease)
    if settings.want_diff:
        run.ansible_diff = result.pop("ansible_diff", [])
    if rollback_of:
        run.rollback["apply"] = result
    else:
        run.apply = result


def wait_and_record(run, cluster, store, bundle, into, settings):
    """Wait for the bundle's objects (hooks excluded) and record the verdict on the sync's history entry."""
    from ..health.watch import wait_healthy  # the watch engine: only apps that were applied need it

    record = store.read(run.name)[0]
    run.record_after = record
    synced = current_entry(record)
    refs = bundle_refs(cluster, bundle)
    wait = run.app["wait"]["enabled"]
    outcome = wait_healthy(cluster, refs, timeout=run.app["wait"]["timeout"], fail_fast=run.app["wait"]["fail_fast"],
                           custom_health=run.app["custom_health"] or None, wait=wait)
    outcome["recorded"] = None
    if synced and wait:
        outcome["recorded"] = record_health(cluster, run.name, outcome["status"], synced,
                                            settings.inventory_namespace, settings.inventory_kind)
        run.record_after = store.read(run.name)[0]
    into.clear()
    into.update(outcome)


def roll_back(run, cluster, store, sources, lease, settings):
    """Go back to the newest revision recorded healthy (other than the one that failed)."""
    failed = run.resolved["revision"]
    record = store.read(run.name)[0] or {}
    target = rollback_target(record.get("history"), failed)
    run.rollback = {"revision": target["revision"] if target else "", "apply": {}, "health": {}}
    if not target:
        run.rollback["msg"] = "no revision of %s other than %s was recorded healthy in its history" % (run.name, failed[:7])
        return
    if run.chart:
        run.rollback["msg"] = "rolling back a chart from a repository or registry is not supported yet"
        return
    try:
        resolved = sources.resolve(run.app["repo"], target["revision"], run.app["credentials"])
        checkout, _commit = sources.checkout(resolved, run.app["credentials"])
        bundle = render_app(run.app, checkout, target["revision"])
        apply_app(run, cluster, bundle, target["revision"], failed, lease, settings)
        wait_and_record(run, cluster, store, bundle, run.rollback.setdefault("health", {}), settings)
        if not run.rollback["health"].get("healthy"):
            run.rollback["msg"] = "the rollback did not become healthy: %s" % run.rollback["health"].get("summary")
            run.rollback["health"]["failed"] = True
    except GitOpsError as err:
        run.rollback["msg"] = str(err)


def stamp_records(runs, store, settings):
    """Record which cluster host owns each app and whether it prunes: what reconcile needs to
    remove the app once it leaves ``gitops_apps``. Written only when it changed."""
    def stamp(run):
        wanted = {"cluster": settings.cluster_name, "prune": run.app["prune"]}
        record = run.record_after or run.record
        if record is None or all(record.get(k) == v for k, v in wanted.items()):
            return

        def change(current):
            if current.get("revision") is None and not current.get("objects"):
                return None  # never applied: nothing to own
            return None if all(current.get(k) == v for k, v in wanted.items()) else dict(current, **wanted)

        run.guard("record", store.update, run.name, change)

    each(settings.concurrency, stamp, [r for r in runs if not r.skipped])


# -- 6b. removed applications ------------------------------------------------------------------

def remove_departed(departed, records, cluster, store, settings, results):
    """Apps that left ``gitops_apps`` (recorded by this cluster host) or have ``state: absent``:
    with prune, their objects are pruned (apply of an empty bundle: the same guards as any prune),
    then their record and Lease are deleted; without, they are reported as orphaned."""
    def one(pair):
        name, app = pair
        record = records.get(name)
        prune = app["prune"] if app else bool((record or {}).get("prune"))
        result = {"app": name, "cluster": settings.cluster_name, "namespace": (app or {}).get("namespace"),
                  "trigger": settings.trigger, "ok": True, "check_mode": settings.check, "fetch": {}, "diff": {},
                  "apply": {}, "health": {}, "rollback": {}, "error": {},
                  "info": {"record": {k: v for k, v in (record or {}).items() if k != "objects"} or None}}
        if record is None:
            result["decision"] = "absent"
        elif not prune:
            result["decision"] = "orphaned"
            result["orphaned"] = [{k: o.get(k) for k in ("apiVersion", "kind", "namespace", "name")}
                                  for o in record.get("objects") or ()]
        else:
            result["decision"] = "removed"
            try:
                remove_app(name, cluster, store, settings, result)
            except GitOpsError as err:
                result.update(ok=False, error={"step": "remove", "msg": str(err)})
        results.append(result)
        settings.progress(report.status_lines([report.app_row(result)])[0])

    each(settings.concurrency, one, departed)


def remove_app(name, cluster, store, settings, result):
    import tempfile

    from ..bundle import write_bundle

    options = Options(prune=True, prune_allow_empty=True, trigger=settings.trigger,
                      inventory_namespace=settings.inventory_namespace, inventory_kind=settings.inventory_kind,
                      lock_timeout=settings.lock_timeout)
    with tempfile.TemporaryDirectory(prefix="gitops-k8s-remove-") as folder:
        write_bundle(folder, [], [], revision=None)
        empty = Bundle.load(folder)
        if settings.check:
            result["apply"] = apply(cluster, empty, name, options, check=True)
            return
        lease = Lease(cluster, name, settings.inventory_namespace)
        lease.acquire(settings.lock_timeout)
        try:
            result["apply"] = apply(cluster, empty, name, options, lease=lease)
            left = (store.read(name)[0] or {}).get("objects") or []
            if left:
                raise GitOpsError("app %s left gitops_apps but %d of its object(s) could not be pruned: %s" % (
                    name, len(left), ", ".join(describe(o) for o in left[:10])), remaining=left)
            store.delete(name)
        finally:
            lease.release()
        cluster.delete(dict(lease.where(), apiVersion="coordination.k8s.io/v1"))


# -- helpers -----------------------------------------------------------------------------------

def _raise(err):
    raise err
