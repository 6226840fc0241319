# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""One read of the cluster shared by every application of a run.

The engine says up front which (resource, namespace) pairs its applications need; ``load``
makes one LIST per resource -- cluster-wide when several namespaces need it, else in the one
namespace -- concurrently. Every app's comparison (``diff.make_plan(live_index=...)``) and health
reading then looks objects up in ``index``. Writes never go by the snapshot: apply re-reads under
the app's Lease.
"""

from __future__ import annotations

from .cluster import ApiError
from .concurrency import each
from .refs import key_of, ref_of


class LiveSnapshot:
    def __init__(self, cluster):
        self.cluster = cluster
        self._wanted = {}    # resource -> set of namespaces (None: cluster-scoped)
        self._by_key = {}    # key_of(ref) -> object
        self._listed = {}    # resource -> set of namespaces listed (None: cluster-wide)

    def want(self, resource, namespace=None):
        self._wanted.setdefault(resource, set()).add(namespace if resource.namespaced else None)

    def load(self, concurrency=8):
        """LIST every wanted resource once.

        A cluster-wide LIST the credentials may not make (403: RoleBindings per namespace) becomes
        one LIST per wanted namespace.
        """
        plan = []
        for resource, namespaces in self._wanted.items():
            if resource not in self._listed:
                plan.append((resource, next(iter(namespaces)) if len(namespaces) == 1 else None))
        while plan:
            lists = each(concurrency, self._list_or_forbidden, plan)
            retry = []
            for (resource, scope), items in zip(plan, lists):
                if items is None:
                    retry += [(resource, ns) for ns in sorted(self._wanted[resource])]
                    continue
                self._listed.setdefault(resource, set()).add(scope)
                for obj in items:
                    self._by_key[key_of(ref_of(obj))] = obj
            plan = retry

    def _list_or_forbidden(self, pair):
        resource, scope = pair
        try:
            return self.cluster.list(resource, namespace=scope)[0]
        except ApiError as err:
            if err.status == 403 and scope is None and resource.namespaced:
                return None
            raise

    def get(self, ref):
        """The live object of ``ref`` as listed (None when it did not exist)."""
        return self._by_key.get(key_of(ref))

    @property
    def index(self):
        """{key_of(ref): object} of everything listed."""
        return self._by_key
