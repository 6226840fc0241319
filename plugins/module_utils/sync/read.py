# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Phase 4 of the per-cluster run: one read of the cluster for every app.

Discovery once, every record with one LIST, and every object any app's bundle or record names
(cluster/snapshot.py: one LIST per kind, or a GET each when the run names few). The objects of
the apps acting as one identity are read as that identity, in a snapshot of their own: reads of
an app's objects are its identity's like every other request for them (tenancy.py); a read that
identity may not make fails its apps at step ``read``, naming verb, resource, namespace and
identity, and nothing of them is applied. Who owns which
object is answered from these records for the whole run (two apps of the run cannot declare one
object: see fetch_render.refuse_shared_objects), kept fresh across the claims of other runs
(cluster/records.OwnerIndex).
"""

from __future__ import annotations

from ..cluster.records import OwnerIndex
from ..cluster.snapshot import LiveSnapshot
from ..concurrency import each
from ..errors import GitOpsError
from ..health import Health, assess, worst
from ..health.hub import RunWatches
from .claims import CLAIMS_LEASE
from .tenancy import check_record


class ClusterRead:
    """What the run knows of the cluster, for every app: ``records`` by app name, the ``owners``
    index, the cluster's ``digest_key`` for Secret digests, the live ``snapshot`` read once (the
    run's own; ``snapshots``: one per identity apps act as), and the ``watches`` that follow it
    while the run converges (one list+watch per kind and identity for every app's health wait:
    health/hub.py)."""

    def __init__(self, records, owners, digest_key, snapshot, snapshots=None):
        self.records, self.owners, self.digest_key, self.snapshot = records, owners, digest_key, snapshot
        self.snapshots = snapshots or {None: snapshot}
        self.watches = RunWatches()

    def snapshot_of(self, app_sync):
        """The live objects of ``app_sync`` as its identity read them."""
        return self.snapshots[app_sync.identity]


def read_cluster(app_syncs, cluster, store, snapshot, settings, scopes):
    """The ClusterRead of the run; sets each app's ``record``. ``snapshot``: the run's own;
    ``scopes``: the run's tenancy.Scopes (the record's objects are checked against the project)."""
    records, transitions, digest_key = {}, -1, None  # -1: no claims Lease yet (see OwnerIndex)
    if _inventory_exists(cluster, store):
        claims = cluster.get({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                              "namespace": store.namespace, "name": CLAIMS_LEASE})
        if claims is not None:  # held: a claim may be half written, so the first claim reads again
            spec = claims.get("spec") or {}
            transitions = None if spec.get("holderIdentity") else spec.get("leaseTransitions", 0)
        records.update((r.get("app"), r) for r in store.read_all())
        digest_key = store.digest_key()  # the record keys Secret digests: compare alike
    snapshots, wanted = {None: snapshot}, {}
    for app_sync in app_syncs:
        app_sync.record = records.get(app_sync.name)
        check_record(app_sync, settings, scopes)
        if app_sync.failed:
            continue  # nothing of it is read
        if app_sync.identity not in snapshots:
            snapshots[app_sync.identity] = LiveSnapshot(app_sync.client)
        live = snapshots[app_sync.identity]
        wanted[app_sync] = []
        for ref in _named_objects(app_sync):
            try:
                resource = cluster.resource(ref["apiVersion"], ref["kind"])
            except GitOpsError:
                continue  # a kind that is not served (yet): the app's own plan says what it means
            if ref.get("name"):
                live.want(resource, ref.get("namespace") or None, ref["name"])
                wanted[app_sync].append((resource, ref.get("namespace") or None))
    _load(snapshots, wanted, settings)
    return ClusterRead(records, OwnerIndex(records.values(), store, transitions), digest_key, snapshot, snapshots)


def _load(snapshots, wanted, settings):
    """Each identity's snapshot read with its client; an app fails at step ``read`` when a read it
    needs failed or was refused (the others go on)."""
    def one(identity):
        try:
            snapshots[identity].load(settings.concurrency)
        except GitOpsError as err:
            return err
        return None

    failures = dict(zip(snapshots, each(min(len(snapshots), settings.concurrency), one, list(snapshots))))
    for app_sync, reads in wanted.items():
        live = snapshots[app_sync.identity]
        problem = failures[app_sync.identity] or next(
            (err for err in (live.refused(resource, ns) for resource, ns in reads) if err), None)
        if problem:
            app_sync.fail("read", problem)


def _named_objects(app_sync):
    refs = [e for e in (app_sync.bundle.entries if app_sync.bundle else ()) if not e.get("hook")]
    return refs + list((app_sync.record or {}).get("objects") or ())


def _inventory_exists(cluster, store):
    try:
        return cluster.get({"apiVersion": "v1", "kind": "Namespace", "name": store.namespace}) is not None
    except GitOpsError:
        return True  # cannot tell (no permission to read namespaces): read_all says more


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


def snapshot_health(app_sync, snapshot):
    """The bundle objects' health as the snapshot shows them: a reading, not a wait."""
    resources = []
    for ref in bundle_refs(snapshot.cluster, app_sync.bundle):
        status, message = assess(snapshot.get(ref), app_sync.app["custom_health"] or None)
        resources.append({"ref": ref, "status": status, "message": message})
    status = worst(r["status"] for r in resources) if resources else Health.HEALTHY
    return {"healthy": status in Health.SETTLED, "status": status, "resources": resources, "waited": False}
