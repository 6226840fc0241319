# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Apps that left ``gitops_apps`` (recorded by this cluster host) or have ``state: absent``: with
prune, their objects are pruned (apply of an empty bundle: the same guards as any prune), then
their record and Lease are deleted; without, they are reported as orphaned."""

from __future__ import annotations

import tempfile

from ..app_result import Decision, app_result
from ..bundle import Bundle, write_bundle
from ..cluster.lease import Lease
from ..concurrency import each
from ..errors import GitOpsError
from ..refs import describe
from ..report import run_report as report
from .apply import Options, apply

REF_KEYS = ("apiVersion", "kind", "namespace", "name")


def remove_departed(departed, records, cluster, store, settings):
    """The results of the ``departed`` apps ([(name, normalized app or None)])."""
    def one(pair):
        name, app = pair
        result = departed_result(name, app, records.get(name), cluster, store, settings)
        settings.progress(report.status_lines([report.app_row(result)])[0])
        return result

    return each(settings.concurrency, one, departed)


def departed_result(name, app, record, cluster, store, settings):
    prune = app["prune"] if app else bool((record or {}).get("prune"))
    info = {"record": {k: v for k, v in (record or {}).items() if k != "objects"} or None}
    common = (name, settings.cluster_name, (app or {}).get("namespace"), settings.trigger)
    if record is None:
        return app_result(*common, decision=Decision.ABSENT, check_mode=settings.check, info=info)
    if not prune:
        return app_result(*common, decision=Decision.ORPHANED, check_mode=settings.check, info=info,
                          orphaned=[{k: o.get(k) for k in REF_KEYS} for o in record.get("objects") or ()])
    try:
        applied, error = remove_app(name, cluster, store, settings), None
    except GitOpsError as err:
        applied, error = err.details.get("applied") or {}, {"step": "remove", "msg": str(err)}
    return app_result(*common, decision=Decision.REMOVED, check_mode=settings.check, info=info, apply=applied,
                      error=error)


def remove_app(name, cluster, store, settings):
    """Prune every object of app ``name`` and forget it; returns apply's result."""
    options = Options(prune=True, prune_allow_empty=True, trigger=settings.trigger,
                      inventory_namespace=settings.inventory_namespace, inventory_kind=settings.inventory_kind,
                      lock_timeout=settings.lock_timeout)
    with tempfile.TemporaryDirectory(prefix="gitops-k8s-remove-") as folder:
        write_bundle(folder, [], [], revision=None)
        empty = Bundle.load(folder)
        if settings.check:
            return apply(cluster, empty, name, options, check=True)
        lease = Lease(cluster, name, settings.inventory_namespace)
        lease.acquire(settings.lock_timeout)
        try:
            applied = apply(cluster, empty, name, options, lease=lease)
            left = (store.read(name)[0] or {}).get("objects") or []
            if left:
                raise GitOpsError("app %s left gitops_apps but %d of its object(s) could not be pruned: %s" % (
                    name, len(left), ", ".join(describe(o) for o in left[:10])), remaining=left, applied=applied)
            store.delete(name)
        finally:
            lease.release()
        cluster.delete(dict(lease.where(), apiVersion="coordination.k8s.io/v1"))
    return applied
