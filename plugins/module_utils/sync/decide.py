# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Phase 5 of the per-cluster run: each app's Verdict, from the one read of the cluster.

A push syncs; a reconcile finds the app in sync, at a new revision, or rolled back before. An app
whose content is what it last applied is compared object by object (compare.make_plan's fast
path: an unchanged app costs no request at all) and found in sync or drifted. A commit older than
the one the cluster runs is never applied by a reconcile (``moves_back``). A change a window or a
promotion gate holds (gates.py) is decided ``held``: nothing is applied, the diff and the health
are reported, and the next run decides again; a push a window refuses fails the app.
"""

from __future__ import annotations

from ..app_result import Decision
from ..cluster.records import key_secret_digests
from ..concurrency import each
from ..errors import GitOpsError
from .app_sync import Verdict
from .compare import diff_report, make_plan, rejected_error
from .read import snapshot_health


def decide_all(app_syncs, read, sources, settings, gates):
    def one(app_sync):
        with app_sync.step("diff"):
            app_sync.verdict = decide(app_sync, read, sources, settings, gates)
        if app_sync.verdict and app_sync.verdict.refused:
            app_sync.fail("window", GitOpsError(app_sync.verdict.note))

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


def decide(app_sync, read, sources, settings, gates):
    app, record, bundle = app_sync.app, app_sync.record or {}, app_sync.bundle
    # A new commit of a repository many apps share leaves most of their bundles as they were: an
    # app whose content is what it last applied (and whose objects did not drift) has nothing to
    # do, whatever the revision. Its record keeps the revision that last changed it.
    same_content = (record.get("digest"), record.get("result")) == (bundle.digest, "Succeeded")
    decision = first_decision(settings.mode, record, app_sync.revision, same_content)
    new_content = decision in (Decision.SYNC, Decision.NEW_REVISION) and not same_content
    if new_content and moves_back(app_sync, record.get("revision"), sources, settings):
        return not_moved_back(app_sync, record["revision"], snapshot_health(app_sync, read.snapshot_of(app_sync)))
    gate = gates.verdict(app_sync) if new_content else None
    if new_content and gate.verdict == "go":
        return Verdict(decision, needs_apply=True, gate=gate)
    diff, ansible_diff = compare(app_sync, read, settings)
    if gate is None and diff["changed"]:
        if decision == Decision.IN_SYNC:
            decision = Decision.DRIFT
        if app["self_heal"] if decision == Decision.DRIFT else decision == Decision.SYNC:
            gate = gates.verdict(app_sync)
            if gate.verdict == "go":
                return Verdict(decision, needs_apply=True, diff=diff, gate=gate)
    health = snapshot_health(app_sync, read.snapshot_of(app_sync))
    if gate is not None:  # held or refused: what it would change, and what runs now
        return Verdict(Decision.HELD, diff=diff, health=health, note=gate.reason, gate=gate,
                       ansible_diff=ansible_diff if settings.want_diff else [])
    return Verdict(decision, diff=diff, health=health,
                   ansible_diff=ansible_diff if settings.want_diff and diff["changed"] else [])


def compare(app_sync, read, settings):
    """(diff, ansible_diff): the app's bundle against the live objects (compare.make_plan), as its
    identity read them; its dry-runs are its identity's too (``app_sync.client``)."""
    app = app_sync.app
    plan = make_plan(app_sync.client, key_secret_digests(app_sync.bundle, read.digest_key), app_sync.record or {},
                     ignore=app["ignore_differences"], concurrency=settings.concurrency,
                     replace_on_immutable=app["replace_on_immutable"], live_index=read.snapshot_of(app_sync).index)
    if plan.rejected:
        raise rejected_error(plan.rejected, app_sync.bundle.path)
    resources, ansible_diff = diff_report(plan, app["ignore_differences"], deletes=plan.deletes if app["prune"] else [])
    diff = {"changed": bool(resources), "summary": plan.summary(), "resources": resources,
            "fast_path": sum(1 for i in plan.items if i.fast),
            "orphaned": [] if app["prune"] else [i.ref for i in plan.deletes]}
    return diff, ansible_diff


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
