# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Step 6 of apply: delete the recorded objects that left the bundle.

In reverse order of the bundle (dependents before what they depend on), each only when the
guards of prune_guards.py let it: it must still be the object the app applied (its uid, also
sent as the deletion's precondition), and a Namespace or a CRD must opt in and hold nothing of
other apps. An object someone else recreated is disowned: not pruned, dropped from the record.
A deletion that fails, or that a finalizer still holds PRUNE_SETTLE seconds later, keeps the
object recorded and fails the run.
"""

from __future__ import annotations

import time

from ..cluster.client import ApiError
from ..errors import GitOpsError
from ..refs import key_of
from .prune_guards import guarded, recreated, refusal

# How long a pruned object may take to disappear before the run reports what holds it.
PRUNE_SETTLE = 5.0
# Finalizers of the garbage collector itself: they end on their own.
GC_FINALIZERS = ("foregroundDeletion", "orphan")


def to_prune(run):
    """The plan's deletes when prune is on; refuses to empty an app whose bundle is empty unless
    ``prune_allow_empty`` (an empty render is more often a mistake than a wish)."""
    deletes = run.plan.deletes if run.opts.prune else []
    if run.opts.prune and deletes and not run.plan.items and not run.opts.prune_allow_empty:
        raise GitOpsError(
            "refusing to prune every object of app %s (%d) because bundle %s is empty; set prune_allow_empty "
            "to allow it" % (run.app, len(deletes), run.bundle.path),
            would_prune=[i.ref for i in deletes],
        )
    return deletes


def prune_objects(run, deletes, dry_run=False):
    """Delete ``deletes`` (reverse order) that pass the guards; then see them go."""
    recorded = run.recorded
    others = None  # the other apps' records, read once and only for a guarded kind
    deleted = []
    for item in reversed(deletes):
        if run.lease:
            run.lease.check()
        if recreated(recorded.get(item.key), item.live):
            disown(run, item.ref)
            continue
        if guarded(item.ref):
            if others is None:
                others = [r for r in run.store.read_all() if r.get("app") != run.app]
            why = refusal(item.ref, item.live, others, run.opts.inventory_namespace)
            if why:
                run.prune_refused.append(dict(item.ref, message=why))
                continue
        try:
            run.cluster.delete(item.ref, propagation=run.opts.prune_propagation, dry_run=dry_run,
                               uid=(recorded.get(item.key) or {}).get("uid"))
        except ApiError as err:
            if err.status == 409:  # the uid precondition: recreated since we listed it
                disown(run, item.ref)
            else:  # the ref names the object: its message says only what was refused
                run.prune_failed.append(dict(item.ref, message=err.said))
            continue
        except GitOpsError as err:
            run.prune_failed.append(dict(item.ref, message=str(err)))
            continue
        deleted.append(item.ref)
    run.pruned.extend(deleted if dry_run else settled(run, deleted))


def disown(run, ref):
    """``ref`` was recreated by someone else: refused, and dropped from the record (not ours)."""
    run.disowned.add(key_of(ref))
    run.prune_refused.append(dict(ref, message="recreated by someone else since this app applied it (another "
                                               "uid): not ours, not pruned, dropped from the record"))


def settled(run, refs):
    """The ``refs`` whose deletion no finalizer holds PRUNE_SETTLE seconds later; the others go
    to prune_failed and stay recorded. A Namespace still emptied by its controller, or an object
    whose dependents the garbage collector is still deleting, is on its way: pruned."""
    deadline, pending = time.monotonic() + PRUNE_SETTLE, list(refs)
    while True:
        live = {key_of(r): still_there(run, r) for r in pending}
        pending = [r for r in pending if held(live[key_of(r)])]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    for ref in pending:
        run.prune_failed.append(dict(ref, message="deletion is held by finalizer(s) %s"
                                     % ", ".join(holding(live[key_of(ref)]))))
    return [r for r in refs if r not in pending]


def still_there(run, ref):
    """The live object, or None when it is gone."""
    try:
        return run.cluster.get(ref)
    except ApiError:
        raise
    except GitOpsError:  # its kind is no longer served (its CRD was pruned too): gone with it
        return None


def holding(live):
    """The finalizers of ``live`` that hold its deletion (not the garbage collector's own)."""
    return [f for f in (live or {}).get("metadata", {}).get("finalizers") or () if f not in GC_FINALIZERS]


def held(live):
    return live is not None and bool(holding(live))
