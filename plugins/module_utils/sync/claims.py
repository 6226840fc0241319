# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Step 4 of apply: every object the run may write is recorded before the first write, and the
objects new to the app are claimed.

Recording first means a run stopped midway leaves nothing it wrote unrecorded (the record says
Running until step 7). An object no app records can be declared by two apps of one run: each
would pass the ownership check before the other records it. So objects new to the app are
claimed under a second, cluster-wide Lease (CLAIMS_LEASE, beside the records: the run's own
client) held from a fresh ownership check to the record write. Objects taken over with ``adopt``
leave the record of the app that had them.
"""

from __future__ import annotations

import contextlib
import threading

from ..cluster.lease import Lease
from ..cluster.records import union_objects
from ..errors import GitOpsError
from ..refs import describe, key_of

CLAIMS_LEASE = "gitops-claims"
# The apps of one process queue here, not by polling the Lease (a second per turn).
CLAIMS_IN_PROCESS = threading.Lock()


def record_running(run):
    """Record the union of the app's objects and the bundle's, result Running; adopted objects
    leave the app that recorded them."""
    def running(current):
        current["objects"] = union_objects(current.get("objects") or [], [i.ref for i in run.plan.items])
        current["result"] = "Running"
        return current

    claiming = [i.key for i in run.plan.items if i.key not in run.recorded]
    with claims_lease(run, claiming) as claims:
        # again, now that no other app can claim meanwhile (objects the app records already
        # cannot be claimed by another app without adopt: the first answer stands)
        owners = foreign_owners(run, claims=claims) if claiming else run.foreign
        run.store.update(run.app, running, lease=run.lease)
        if claims and run.opts.owners:
            run.opts.owners.claimed(run.app, claiming, moved=set(owners))
    for other in sorted(set(owners.values())):
        mine = {k for k, v in owners.items() if v == other}
        run.store.update(other, lambda r: dict(r, objects=[o for o in r.get("objects") or () if key_of(o) not in mine]))


@contextlib.contextmanager
def claims_lease(run, needed):
    """Hold the cluster-wide claims Lease (yielded) while ``needed`` (the bundle has objects new to
    the app); None without the app's Lease (nothing is locked then)."""
    if not needed or not run.lease:
        yield None
        return
    if not CLAIMS_IN_PROCESS.acquire(timeout=max(0, run.opts.lock_timeout)):
        raise GitOpsError("app %s gave up after waiting %ss for other apps of this run to claim their objects"
                          % (run.app, run.opts.lock_timeout))
    try:
        claims = Lease(run.store.cluster, run.app, run.opts.inventory_namespace, name=CLAIMS_LEASE)
        claims.acquire(run.opts.lock_timeout)
        try:
            yield claims
        finally:
            claims.release()
    finally:
        CLAIMS_IN_PROCESS.release()


def foreign_owners(run, claims=None):
    """{key: other app} for bundle objects another app's inventory records; fails unless adopt.

    As the run's index of owners says (``owners`` option, else every record read now); with the
    ``claims`` Lease held, as every record says now (see records.OwnerIndex.fresh).
    """
    items = run.plan.items
    keys = [i.key for i in items]
    if not run.opts.owners:
        owners = run.store.owners(keys, run.app)
    elif claims:
        owners = run.opts.owners.fresh(keys, run.app, claims.transitions)
    else:
        owners = run.opts.owners.owners(keys, run.app)
    if owners and not run.opts.adopt:
        lines = ["%s is recorded in the inventory of app %s" % (describe(i.ref), owners[i.key])
                 for i in items if i.key in owners]
        raise GitOpsError(
            "app %s would take over %d object(s) of other apps (set adopt: true to take them over):\n  %s"
            % (run.app, len(owners), "\n  ".join(lines)),
            owned_by_other_apps=[dict(i.ref, app=owners[i.key]) for i in items if i.key in owners],
        )
    return owners
