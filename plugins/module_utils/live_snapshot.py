# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""One read of the cluster shared by every application of a run.

The engine says up front which (resource, namespace) pairs its applications need; ``load``
makes one LIST per resource -- cluster-wide when several namespaces need it, else in the one
namespace -- concurrently. ``SnapshotCluster`` then stands in for the Cluster in the read-only
comparison (``diff.make_plan``): its ``list`` answers from the snapshot, every other call goes
to the cluster. Writes never go through a snapshot: apply re-reads under the app's Lease.
"""

from __future__ import annotations

from .cluster import ApiError
from .concurrency import each
from .refs import key_of, ref_of


class LiveSnapshot:
    def __init__(self, cluster):
        self.cluster = cluster
        self._wanted = {}    # resource -> set of namespaces (None: cluster-scoped)
        self._items = {}     # resource -> [objects]
        self._by_key = {}    # key_of(ref) -> object
        self._listed = {}    # resource -> set of namespaces listed (None: cluster-wide)

    def want(self, resource, namespace=None):
        self._wanted.setdefault(resource, set()).add(namespace if resource.namespaced else None)

    def load(self, concurrency=8):
        """LIST every wanted resource once; returns the number of LISTs made.

        A cluster-wide LIST the credentials may not make (403: RoleBindings per namespace) becomes
        one LIST per wanted namespace.
        """
        plan = []
        for resource, namespaces in self._wanted.items():
            if resource not in self._listed:
                plan.append((resource, next(iter(namespaces)) if len(namespaces) == 1 else None))
        count = 0
        while plan:
            lists = each(concurrency, self._list_or_forbidden, plan)
            count += len(plan)
            retry = []
            for (resource, scope), items in zip(plan, lists):
                if items is None:
                    retry += [(resource, ns) for ns in sorted(self._wanted[resource])]
                    continue
                self._listed.setdefault(resource, set()).add(scope)
                self._items.setdefault(resource, []).extend(items)
                for obj in items:
                    self._by_key[key_of(ref_of(obj))] = obj
            plan = retry
        return count

    def _list_or_forbidden(self, pair):
        resource, scope = pair
        try:
            return self.cluster.list(resource, namespace=scope)[0]
        except ApiError as err:
            if err.status == 403 and scope is None and resource.namespaced:
                return None
            raise

    def covers(self, resource, namespace):
        scopes = self._listed.get(resource, ())
        return None in scopes or (namespace is not None and namespace in scopes)

    def list(self, resource, namespace=None):
        items = self._items[resource]
        if namespace is None or not resource.namespaced:
            return list(items)
        return [o for o in items if (o.get("metadata") or {}).get("namespace") == namespace]

    def get(self, ref):
        """The live object of ``ref`` as listed (None when it did not exist)."""
        return self._by_key.get(key_of(ref))


class SnapshotCluster:
    """A Cluster whose plain LISTs come from a LiveSnapshot (see the module docstring)."""

    def __init__(self, cluster, snapshot):
        self._cluster, self._snapshot = cluster, snapshot

    def __getattr__(self, name):
        return getattr(self._cluster, name)

    def list(self, resource, namespace=None, label_selector=None, field_selector=None):
        if label_selector or field_selector or not self._snapshot.covers(resource, namespace):
            return self._cluster.list(resource, namespace, label_selector=label_selector, field_selector=field_selector)
        return self._snapshot.list(resource, namespace), None
