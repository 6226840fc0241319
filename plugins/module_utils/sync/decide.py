# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Phase 5 of the per-cluster run: each app's Verdict, from the one read of the cluster.

A push syncs; a reconcile finds the app in sync, at a new revision, or rolled back before. An app
whose content is what it last applied is compared object by object (compare.make_plan's fast
path: an unchanged app costs no request at all) and found in sync or drifted. A commit older than
the one the cluster runs is never applied by a reconcile (``moves_back``).
"""

from __future__ import annotations

from ..app_result import Decision
from ..cluster.records import key_secret_digests
from ..concurrency import each
from .app_sync import Verdict
from .compare import make_plan, rejected_error, report as diff_report
from .read import snapshot_health


def decide_all(app_syncs, cluster, read, sources, settings):
    def one(app_sync):
        with app_sync.step("diff"):
            app_sync.verdict = decide(app_sync, cluster, read, sources, settings)

    each(settings.concurrency, one, [a for a in app_syncs if not a.failed])


def first_decision(mode, record, revision, same_content):
    """The decision before the objects are compared."""
    if mode == "push":
        return Decision.SYNC
    if record.get("revision") == revision or same_content:
        return Decision.IN_SYNC
    if revision in [h.get("rollback_of") for h in record.get("history") or ()]:
        return Decision.ROLLED_BACK_BEFORE  # waits for a new commit (or a push), not retried each run
    return Decision.NEW_REVISION


def decide(app_sync, cluster, read, sources, settings):
    app, record, bundle = app_sync.app, app_sync.record or {}, app_sync.bundle
    # A new commit of a repository many apps share leaves most of their bundles as they were: an
    # app whose content is what it last applied (and whose objects did not drift) has nothing to
    # do, whatever the revision. Its record keeps the revision that last changed it.
    same_content = (record.get("digest"), record.get("result")) == (bundle.digest, "Succeeded")
    decision = first_decision(settings.mode, record, app_sync.revision, same_content)
    if decision in (Decision.SYNC, Decision.NEW_REVISION) and not same_content:
        if moves_back(app_sync, record.get("revision"), sources, settings):
            return not_moved_back(app_sync, record["revision"], snapshot_health(app_sync, read.snapshot))
        return Verdict(decision, needs_apply=True)
    plan = make_plan(cluster, key_secret_digests(bundle, read.digest_key), record,
                     ignore=app["ignore_differences"], concurrency=settings.concurrency,
                     replace_on_immutable=app["replace_on_immutable"], live_index=read.snapshot.index)
    if plan.rejected:
        raise rejected_error(plan.rejected, bundle.path)
    resources, ansible_diff = diff_report(plan, app["ignore_differences"], deletes=plan.deletes if app["prune"] else [])
    diff = {"changed": bool(resources), "summary": plan.summary(), "resources": resources,
            "fast_path": sum(1 for i in plan.items if i.fast),
            "orphaned": [] if app["prune"] else [i.ref for i in plan.deletes]}
    if not resources:
        return Verdict(decision, diff=diff, health=snapshot_health(app_sync, read.snapshot))
    if decision == Decision.IN_SYNC:
        decision, needs_apply = Decision.DRIFT, bool(app["self_heal"])
    else:
        needs_apply = decision == Decision.SYNC
    if needs_apply:
        return Verdict(decision, needs_apply=True, diff=diff)
    return Verdict(decision, diff=diff, health=snapshot_health(app_sync, read.snapshot),
                   ansible_diff=ansible_diff if settings.want_diff else [])


def moves_back(app_sync, recorded, sources, settings):
    """Whether the app's commit is older than the one the cluster runs (an ancestor of it): a
    reconcile that listed the branch before a push landed must not revert the push. An explicit
    ``gitops_revision`` or a rollback goes back on purpose; chart versions are not a line of history."""
    revision = app_sync.revision
    if not recorded or recorded == revision or (settings.mode == "push" and settings.revision) or app_sync.source.chart:
        return False
    return bool(sources.is_ancestor(app_sync.source.resolved, recorded, app_sync.app["credentials"]))


def not_moved_back(app_sync, recorded, health=None):
    """The Verdict of an app left at the newer revision the cluster runs."""
    note = ("the cluster runs %s, newer than %s: not moved back (push with gitops_revision to go back)"
            % (recorded[:7], app_sync.revision[:7]))
    # Git's target is not what runs
    return Verdict(Decision.SUPERSEDED, diff={"changed": True, "resources": [], "summary": {}}, health=health or {},
                   note=note)


def superseded(app_sync, latest, sources, settings):
    """The Verdict that replaces the decision when another run moved the app since this run read
    it (``latest``: its record read again under the Lease), to this revision or to a newer one;
    None when the decision still holds."""
    if latest.get("revision") == (app_sync.record or {}).get("revision"):
        return None
    if latest.get("revision") == app_sync.revision and \
            (latest.get("digest"), latest.get("result")) == (app_sync.bundle.digest, "Succeeded"):
        return Verdict(Decision.SUPERSEDED, diff={"changed": False, "resources": [], "summary": {}},
                       note="another run synced %s while this one decided" % latest["revision"][:7])
    if moves_back(app_sync, latest.get("revision"), sources, settings):
        return not_moved_back(app_sync, latest["revision"])
    return None
