# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""What the engine says about one application: the words it decides with and the result it hands
to the report (report.py), the AWX stats and the notifications. One vocabulary, so the engine and
the report compare the same names, never two spellings of a string.
"""

from __future__ import annotations


class Decision:
    """What the decide phase concluded for an app, from the one read of the cluster."""

    SYNC = "sync"                              # a push: apply what Git says, whatever runs
    IN_SYNC = "in sync"                        # the cluster runs this revision (or this content)
    NEW_REVISION = "new revision"              # a reconcile found a commit the cluster does not run
    DRIFT = "drift"                            # same revision, but the live objects differ
    ROLLED_BACK_BEFORE = "rolled back before"  # this revision failed and was rolled back: not retried
    SUPERSEDED = "superseded"                  # another run moved the app to this or a newer revision
    HELD = "held"                              # a window or a promotion gate holds the change (sync/gates.py)
    # apps that left gitops_apps (or are ``state: absent``)
    REMOVED, ORPHANED, ABSENT = "removed", "orphaned", "absent"


class Outcome:
    """One word for what a run did with an app (the report's ``outcome``)."""

    SYNCED, WOULD_SYNC, HEALED, WOULD_HEAL = "synced", "would sync", "healed", "would heal"
    DRIFT, UNCHANGED, FAILED, ROLLED_BACK = "drift", "unchanged", "failed", "rolled back"
    SKIPPED, SUSPENDED, REMOVED, WOULD_REMOVE = "skipped", "suspended", "removed", "would remove"
    ORPHANED, ABSENT, SUPERSEDED, HELD = "orphaned", "absent", "superseded", "held"
    # the outcomes that changed the cluster
    CHANGED = (SYNCED, HEALED, ROLLED_BACK)


STEPS = ("fetch", "diff", "apply", "health", "rollback")


def app_result(app, cluster, namespace, trigger, decision="", check_mode=False, error=None, **fields):
    """The per-app result every path of the engine returns (synced, skipped, suspended, removed).

    ``fields`` may set the steps (fetch, diff, apply, health, rollback), ``info``, ``note``,
    ``duration``, ``skipped``, ``suspended`` or ``orphaned``; steps not given are empty.
    """
    result = {"app": app, "cluster": cluster, "namespace": namespace, "trigger": trigger, "decision": decision,
              "ok": not error, "check_mode": check_mode, "error": error or {}, "note": "",
              "info": {"record": None}}
    result.update({step: {} for step in STEPS})
    result.update(fields)
    return result


def skipped_result(app, cluster, namespace, trigger, why, suspended=False):
    """An app the run did not touch: a dependency failed, or it is suspended."""
    error = None if suspended else {"step": "dependencies", "msg": why}
    return app_result(app, cluster, namespace, trigger, error=error, skipped=why, suspended=suspended)
