# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The bake after converge (``bake`` seconds; a rollout wave's): the run's healthy apps must stay
healthy that long, watched, not polled (health/watch.stay_healthy).

An app one of whose objects turns Degraded or Missing during the bake, or is not healthy when it
ends, fails at step ``bake``. When this run synced it, the verdict goes on its history entry
(a promotion gate then never counts it as healthy) and, with the app's ``rollback``, it goes back
to its newest revision recorded healthy under its Lease, as after a failed health wait. Apps the
run left alone (in sync already) are watched too: a wave passes when every app of its clusters
stays healthy.
"""

from __future__ import annotations

import json

from ..app_result import Decision
from ..cluster.lease import Lease
from ..cluster.records import current_entry, record_health
from ..concurrency import each
from ..errors import GitOpsError
from ..health.status import Health
from ..health.watch import stay_healthy
from ..refs import describe, key_of
from .converge import roll_back
from .durations import describe as seconds_text
from .read import bundle_refs


def bake_apps(app_syncs, cluster, store, sources, read, settings):
    """Watch the healthy apps for ``settings.bake`` seconds; fail (and roll back) those that do not stay so."""
    groups = {}
    for app_sync in app_syncs:
        if _baking(app_sync):
            # apps are watched together, as far as they assess health with the same rules and act as
            # the same identity (whose client watches: tenancy.py)
            key = json.dumps([app_sync.app["custom_health"], app_sync.identity], sort_keys=True)
            groups.setdefault(key, []).append(app_sync)
    if not groups:
        return
    failed = []

    def one(group):
        failed.extend(_bake(group, settings))

    each(len(groups), one, list(groups.values()))
    each(settings.concurrency, lambda app_sync: _after_failure(app_sync, cluster, store, sources, read, settings),
         failed)


def _baking(app_sync):
    verdict = app_sync.verdict
    if app_sync.failed or verdict is None or verdict.decision == Decision.HELD or app_sync.bundle is None:
        return False
    return bool((app_sync.health or verdict.health).get("healthy"))


def _bake(group, settings):
    """Watch one group (as its apps' identity); returns its apps that failed the bake (each with its error set)."""
    owner, refs, client = {}, [], group[0].client
    for app_sync in group:
        for ref in bundle_refs(client, app_sync.bundle):
            owner[key_of(ref)] = app_sync
            refs.append(ref)
    outcome = stay_healthy(client, refs, settings.bake, group[0].app["custom_health"] or None)
    length = seconds_text(settings.bake)
    failed = {}
    if outcome["failed"]:
        turned = outcome["failed"]
        failed[owner[key_of(turned["ref"])]] = "%s turned %s %s into the %s bake: %s" % (
            describe(turned["ref"]), turned["status"], seconds_text(turned["after"]), length, turned["message"])
    else:
        for resource in outcome["resources"]:
            app_sync = owner[key_of(resource["ref"])]
            if resource["status"] not in Health.SETTLED and app_sync not in failed:
                failed[app_sync] = "%s was %s when the %s bake ended: %s" % (
                    describe(resource["ref"]), resource["status"], length, resource["message"])
    for app_sync, message in failed.items():
        mine = [r for r in outcome["resources"] if owner[key_of(r["ref"])] is app_sync]
        status = outcome["failed"]["status"] if outcome["failed"] else Health.DEGRADED
        app_sync.health = {"healthy": False, "status": status, "resources": mine, "summary": message,
                           "elapsed": outcome["elapsed"], "waited": True}
        app_sync.fail("bake", GitOpsError(message))
    return list(failed)


def _after_failure(app_sync, cluster, store, sources, read, settings):
    """An app this run synced that failed its bake: the verdict on its history entry, then the
    rollback its ``rollback`` asks for (unless another run moved it meanwhile)."""
    if not app_sync.applied:
        return  # the run did not change it: nothing of this run's to mark or undo
    lease = Lease(cluster, app_sync.name, settings.inventory_namespace)
    try:
        lease.acquire(settings.lock_timeout)
    except GitOpsError as err:
        app_sync.error["msg"] += "; not marked or rolled back: %s" % err
        return
    try:
        entry = current_entry(store.read(app_sync.name)[0])
        if entry is None or entry.get("revision") != app_sync.revision:
            return
        record_health(cluster, app_sync.name, app_sync.health["status"], entry, settings.inventory_namespace,
                      settings.inventory_kind)
        if app_sync.app["rollback"]:
            app_sync.rollback = roll_back(app_sync, cluster, store, sources, lease, read, settings)
    except GitOpsError as err:
        app_sync.error["msg"] += "; after the bake: %s" % err
    finally:
        lease.release()
