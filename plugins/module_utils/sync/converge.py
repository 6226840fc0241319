# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Phase 6 of the per-cluster run: the apps that have work, dependency level after level.

For each app whose Verdict says apply: its Lease, the decision checked again under it (another
run may have moved the app meanwhile: decide.superseded), apply, health wait, verdict recorded
on the history entry, rollback to the newest healthy revision on failure. In check mode: apply's
dry run, and the health the snapshot shows.

Every request about an app's objects goes through its client (``app_sync.client``: acting as its
identity, tenancy.py): apply, hooks, prune, the health wait (its identity's watches) and rollback;
its Lease and its record through the run's own (``cluster``, ``store``).
"""

from __future__ import annotations

import threading

from ..cluster.lease import Lease
from ..cluster.records import current_entry, record_health, rollback_target
from ..concurrency import each
from ..errors import GitOpsError
from ..report import run_report as report
from .apply import Options, apply
from .decide import superseded
from .fetch_render import fetch_source, render_app
from .read import bundle_refs, snapshot_health

# How many apps of a level converge at once (most of them waiting for health).
WAITING_APPS = 128


def converge_levels(levels, app_syncs, cluster, store, sources, read, settings):
    """Level after level; a failed dependency skips its dependents, unrelated apps go on."""
    for level in levels:
        batch = [app_syncs[name] for name in level]
        for app_sync in batch:
            blocking = [dep for dep in app_sync.app["depends_on"] if dep in app_syncs and app_syncs[dep].failed]
            if blocking and not app_sync.failed:
                app_sync.skipped = "not synced: dependency %s did not succeed" % ", ".join(blocking)
        # the apps of a level are applied ``concurrency`` at a time and waited together: their waits
        # share the run's watches (a waiting app holds a thread and its Lease, and sends no request)
        applying = threading.BoundedSemaphore(settings.concurrency)
        each(max(settings.concurrency, WAITING_APPS),
             lambda app_sync: converge_one(app_sync, cluster, store, sources, read, settings, applying), batch)


def converge_one(app_sync, cluster, store, sources, read, settings, applying):
    if app_sync.verdict and app_sync.verdict.needs_apply and not app_sync.failed:
        with app_sync.step("apply"):
            if settings.check:
                app_sync.applied, app_sync.ansible_diff = apply_app(
                    app_sync, cluster, app_sync.bundle, app_sync.revision, None, None, read, settings)
            else:
                converge_under_lease(app_sync, cluster, store, sources, read, settings, applying)
        if settings.check:
            app_sync.health = snapshot_health(app_sync, read.snapshot_of(app_sync))
    settings.progress(report.status_lines([report.app_row(app_sync.result())])[0])


def converge_under_lease(app_sync, cluster, store, sources, read, settings, applying):
    """Lease, decision checked again, apply (``applying``: a slot among the level's applies),
    health wait and verdict, rollback on failure."""
    lease = Lease(cluster, app_sync.name, settings.inventory_namespace)
    lease.acquire(settings.lock_timeout)
    try:
        with applying:
            latest = store.read(app_sync.name)[0] or {}
            if latest.get("revision") != (app_sync.record or {}).get("revision"):
                app_sync.moved_meanwhile = app_sync.record_after = latest
            replaced = superseded(app_sync, latest, sources, settings)
            if replaced:
                app_sync.verdict = replaced
                return
            with app_sync.step("apply"):
                app_sync.applied, app_sync.ansible_diff = apply_app(
                    app_sync, cluster, app_sync.bundle, app_sync.revision, None, lease, read, settings)
        if not app_sync.failed:
            with app_sync.step("health"):
                app_sync.health, app_sync.record_after = wait_and_record(app_sync, cluster, store, app_sync.bundle,
                                                                         read, settings)
        if not app_sync.failed and app_sync.app["wait"]["enabled"] and not app_sync.health.get("healthy"):
            app_sync.fail("health", GitOpsError(app_sync.health.get("summary") or "not healthy"))
        if app_sync.error and app_sync.error["step"] in ("apply", "health") and app_sync.app["rollback"]:
            app_sync.rollback = roll_back(app_sync, cluster, store, sources, lease, read, settings)
    finally:
        lease.release()


def apply_options(app, settings, revision, rollback_of=None, owners=None, override=None):
    """apply's Options for ``app`` (a normalized gitops_apps item) in this run; ``override``: why
    the sync goes through a deployment window (gates.Gate), for its history entry."""
    return Options(
        prune=app["prune"], ignore=app["ignore_differences"], custom_health=app["custom_health"] or None,
        trigger=settings.trigger, revision=revision, rollback_of=rollback_of, timeout=app["wait"]["timeout"],
        inventory_namespace=settings.inventory_namespace, inventory_kind=settings.inventory_kind,
        lock_timeout=settings.lock_timeout, owners=owners, create_namespaces=app["create_namespace"],
        replace_on_immutable=app["replace_on_immutable"], managed_namespace_metadata=app["managed_namespace_metadata"],
        override=override,
    )


def apply_app(app_sync, cluster, bundle, revision, rollback_of, lease, read, settings):
    """apply's result for the app's ``bundle`` at ``revision``, and its diff (in diff mode)."""
    gate = app_sync.verdict.gate if app_sync.verdict and not rollback_of else None
    options = apply_options(app_sync.app, settings, revision, rollback_of, read.owners, gate and gate.override)
    result = apply(app_sync.client, bundle, app_sync.name, options, check=settings.check,
                   want_diff=settings.want_diff, lease=lease, records_client=cluster)
    return result, result.pop("ansible_diff", []) if settings.want_diff else []


def wait_and_record(app_sync, cluster, store, bundle, read, settings):
    """Wait for the bundle's objects (hooks excluded) through the run's watches, and record the
    verdict on the sync's history entry; returns the health result and the record as it is now."""
    from ..health.watch import wait_healthy  # the watch engine: only apps that were applied need it

    app = app_sync.app
    record = store.read(app_sync.name)[0]
    synced, wait = current_entry(record), app["wait"]["enabled"]
    # the record's objects carry the resourceVersion apply wrote: a shared watch counts a state only
    # once it is at least that new
    outcome = wait_healthy(app_sync.client, bundle_refs(cluster, bundle), timeout=app["wait"]["timeout"],
                           fail_fast=app["wait"]["fail_fast"], custom_health=app["custom_health"] or None, wait=wait,
                           hub=read.watches.hub_for(app_sync.client) if wait else None,
                           written=(record or {}).get("objects"))
    outcome["recorded"] = None
    if synced and wait:
        outcome["recorded"] = record_health(cluster, app_sync.name, outcome["status"], synced,
                                            settings.inventory_namespace, settings.inventory_kind)
        record = store.read(app_sync.name)[0]
    return outcome, record


def roll_back(app_sync, cluster, store, sources, lease, read, settings):
    """Go back to the newest revision recorded healthy (other than the one that failed); returns
    the rollback's result: {revision, apply, health, msg}."""
    failed = app_sync.revision
    target = rollback_target((store.read(app_sync.name)[0] or {}).get("history"), failed)
    rollback = {"revision": target["revision"] if target else "", "apply": {}, "health": {}}
    if not target:
        rollback["msg"] = "no revision of %s other than %s was recorded healthy in its history" % (
            app_sync.name, failed[:7])
    elif app_sync.source.chart:
        rollback["msg"] = "rolling back a chart from a repository or registry is not supported yet"
    else:
        try:
            bundle = render_app(app_sync.app, fetch_source(app_sync.app, sources, target["revision"]),
                                settings.keys_of(app_sync.app).decryption)
            rollback["apply"], diff = apply_app(app_sync, cluster, bundle, target["revision"], failed, lease, read,
                                                settings)
            if settings.want_diff:
                app_sync.ansible_diff = diff  # what the run left: the rollback's change
            rollback["health"], app_sync.record_after = wait_and_record(app_sync, cluster, store, bundle, read, settings)
            if not rollback["health"].get("healthy"):
                rollback["msg"] = "the rollback did not become healthy: %s" % rollback["health"].get("summary")
                rollback["health"]["failed"] = True
        except GitOpsError as err:
            rollback["msg"] = str(err)
    return rollback


def stamp_records(app_syncs, store, settings):
    """Record which cluster host owns each app, whether it prunes, and the identity and project it
    synced as: what reconcile needs to remove the app once it leaves ``gitops_apps``. Written only
    when it changed."""
    def stamp(app_sync):
        # the identity it synced as: the one that removes it once it departs (tenancy.departed_client)
        wanted = {"cluster": settings.cluster_name, "prune": app_sync.app["prune"], "identity": app_sync.identity,
                  "project": app_sync.policy.project}
        record = app_sync.record_after or app_sync.record
        if record is None or all(record.get(k) == v for k, v in wanted.items()):
            return

        def change(current):
            if current.get("revision") is None and not current.get("objects"):
                return None  # never applied: nothing to own
            return None if all(current.get(k) == v for k, v in wanted.items()) else dict(current, **wanted)

        with app_sync.step("record"):
            store.update(app_sync.name, change)

    each(settings.concurrency, stamp, [a for a in app_syncs if not a.failed])
