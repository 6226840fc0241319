# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Step 7 of apply: the record of what the run left.

Every write goes through ``Inventory.update`` under the app's Lease (the run's own client). The
record lists every bundle object (hooks never: they are per run) and the objects that left the
bundle but still exist, so that a later run can still prune them; the result, revision and a
history entry say how the run ended.
"""

from __future__ import annotations

import time

from ..cluster.records import history_entry, object_entry, push_history
from ..errors import GitOpsError
from ..refs import key_of
from .compare import managed_fingerprint


def object_entries(run, record):
    """Inventory entries of every bundle object, fresh from our writes where there were any."""
    recorded = {key_of(o): o for o in record.get("objects") or ()}
    manager = run.opts.field_manager
    entries = []
    for item in run.plan.items:
        out = run.applied.get(item.key)
        if out is not None:
            entries.append(object_entry(item.ref, item.digest, out["metadata"].get("resourceVersion"),
                                        managed_fingerprint(out, manager), out["metadata"].get("uid")))
        elif item.action == "unchanged" and item.fast:
            entries.append(dict(recorded[item.key], **uid_of(item.live)))
        elif item.action == "unchanged":
            entries.append(object_entry(item.ref, item.digest, item.live["metadata"].get("resourceVersion"),
                                        managed_fingerprint(item.live, manager), item.live["metadata"].get("uid")))
        elif item.key in recorded:  # not applied (the run failed first): keep what we knew
            entries.append(dict(recorded[item.key]))
        else:
            entries.append(object_entry(item.ref))
    return entries


def leftovers(run, record):
    """Inventory objects no longer in the bundle that still exist (not pruned, prune disabled, failed),
    marked ``orphaned`` unless prune is still to delete them, and those of kinds the cluster does not
    serve (never forgotten: they may come back); not those someone else recreated (not ours)."""
    plan = run.plan
    gone = {key_of(r) for r in run.pruned} | run.disowned
    bundle = {i.key for i in plan.items}
    pruning = {i.key for i in plan.deletes} if run.opts.prune else set()
    live_left = {i.key for i in plan.deletes + plan.kept}
    unserved = {key_of(r) for r in plan.unserved}
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


def record_final(run, result, message):
    """Write the outcome of the run: the record is read again (a health verdict may have been
    written meanwhile) and this run's outcome put on it, under the Lease."""
    duration = time.monotonic() - run.started
    opts, succeeded = run.opts, result == "Succeeded"

    def change(record):
        record.update({
            "objects": object_entries(run, record) + leftovers(run, record),
            "revision": opts.revision if succeeded else record.get("revision"),
            "digest": run.bundle.digest if succeeded else record.get("digest"),
            "time": time.time(), "result": result, "message": message, "trigger": opts.trigger,
            "field_manager": opts.field_manager,
        })
        return push_history(record, history_entry(
            opts.revision, run.bundle.digest, result, opts.trigger, rollback_of=opts.rollback_of,
            message=message, duration=duration, override=opts.override), opts.history_limit)

    try:
        run.store.update(run.app, change, lease=run.lease)
    except GitOpsError as err:
        raise GitOpsError("app %s was applied (%s) but its inventory could not be written: %s"
                          % (run.app, result, err), inventory=run.store.where(run.app))


def record_noop(run, record):
    """Nothing to change: refresh fingerprints; a new revision or digest gets a history entry."""
    entries = object_entries(run, record) + leftovers(run, record)
    new_revision = (run.opts.revision, run.bundle.digest) != (record.get("revision"), record.get("digest"))
    if not new_revision and entries == record.get("objects") and record.get("result") == "Succeeded":
        return
    record_final(run, "Succeeded", None)


def uid_of(live):
    uid = ((live or {}).get("metadata") or {}).get("uid")
    return {"uid": uid} if uid else {}
