# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""One read of the cluster shared by every application of a run.

The engine says up front which objects its applications need (one snapshot per identity the
applications act as, each read with that identity's client: sync/tenancy.py); ``load`` makes one LIST per
resource -- cluster-wide when several namespaces need it, else in the one namespace -- or, when
the run needs at most READ_BY_NAME objects of a resource (a push of one app in a namespace shared
with thousands), one GET each; concurrently. Every app's comparison
(``diff.make_plan(live_index=...)``) and health reading then looks objects up in ``index``.
Writes never go by the snapshot: apply re-reads under the app's Lease.
"""

from __future__ import annotations

from .client import READ_BY_NAME, ApiError
from ..concurrency import each
from ..refs import key_of, ref_of


class LiveSnapshot:
    def __init__(self, cluster):
        self.cluster = cluster
        self._wanted = {}    # resource -> {namespace (None: cluster-scoped): set of names}
        self._by_key = {}    # key_of(ref) -> object
        self._refused = {}   # (resource, namespace or None) -> the ApiError of a read the server refused (403)

    def want(self, resource, namespace, name):
        namespaces = self._wanted.setdefault(resource, {})
        namespaces.setdefault(namespace if resource.namespaced else None, set()).add(name)

    def load(self, concurrency=8):
        """Read every wanted object once: by name when few, else with a LIST per resource.

        A cluster-wide LIST the credentials may not make (403: RoleBindings per namespace) becomes
        one LIST per wanted namespace. Any other read they may not make is kept (``refused``): it
        fails the apps that need it, not the others.
        """
        plan = []
        for resource, namespaces in self._wanted.items():
            if sum(len(names) for names in namespaces.values()) <= READ_BY_NAME:
                plan += [(resource, ns, sorted(names)) for ns, names in namespaces.items()]
            else:
                plan.append((resource, next(iter(namespaces)) if len(namespaces) == 1 else None, None))
        while plan:
            reads = each(concurrency, self._read_or_forbidden, plan)
            retry = []
            for (resource, scope, _names), items in zip(plan, reads):
                if items is None:
                    retry += [(resource, ns, None) for ns in sorted(self._wanted[resource])]
                    continue
                if isinstance(items, ApiError):
                    self._refused[(resource, scope)] = items
                    continue
                for obj in items:
                    self._by_key[key_of(ref_of(obj))] = obj
            plan = retry

    def _read_or_forbidden(self, wanted):
        resource, scope, names = wanted
        try:
            return self.cluster.read(resource, scope, names)
        except ApiError as err:
            if err.status == 403 and scope is None and resource.namespaced:
                return None
            if err.status == 403:
                return err
            raise

    def refused(self, resource, namespace):
        """The ApiError of the refused read of ``resource`` in ``namespace`` (None: read, or not wanted)."""
        return self._refused.get((resource, namespace if resource.namespaced else None))

    def get(self, ref):
        """The live object of a wanted ``ref`` as read (None when it did not exist)."""
        return self._by_key.get(key_of(ref))

    @property
    def index(self):
        """{key_of(ref): object} of everything read (at least every wanted object that exists)."""
        return self._by_key
