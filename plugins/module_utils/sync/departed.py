# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Apps that left ``gitops_apps`` (recorded by this cluster host) or have ``state: absent``: with
prune, their objects are pruned (apply of an empty bundle: the same guards as any prune), then
their record and Lease are deleted; without, they are reported as orphaned. The objects are pruned
as the app's identity (its configuration's, for ``state: absent``; else the one its record names),
inside its project (tenancy.departed_client)."""

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
from .tenancy import departed_client, identity_fields

REF_KEYS = ("apiVersion", "kind", "namespace", "name")


def remove_departed(departed, records, cluster, store, settings, scopes):
    """The results of the ``departed`` apps ([(name, normalized app or None)]); ``scopes``: the
    run's tenancy.Scopes."""
    def one(pair):
        name, app = pair
        result = departed_result(name, app, records.get(name), cluster, store, settings, scopes)
        settings.progress(report.status_lines([report.app_row(result)])[0])
        return result

    return each(settings.concurrency, one, departed)


def departed_result(name, app, record, cluster, store, settings, scopes):
    prune = app["prune"] if app else bool((record or {}).get("prune"))
    info = {"record": {k: v for k, v in (record or {}).items() if k != "objects"} or None}
    common = (name, settings.cluster_name, (app or {}).get("namespace"), settings.trigger)
    if record is None:
        return app_result(*common, decision=Decision.ABSENT, check_mode=settings.check, info=info)
    if not prune:
        return app_result(*common, decision=Decision.ORPHANED, check_mode=settings.check, info=info,
                          orphaned=[{k: o.get(k) for k in REF_KEYS} for o in record.get("objects") or ()])
    try:
        client, verdict = departed_client(name, app, record, cluster, settings, scopes)
    except GitOpsError as err:  # refused before any request for it
        return app_result(*common, decision=Decision.REMOVED, check_mode=settings.check, info=info,
                          error={"step": "policy", "msg": str(err)}, **identity_fields(None, err.details.get("project")))
    try:
        applied, error = remove_app(name, client, cluster, store, settings), None
    except GitOpsError as err:
        applied, error = err.details.get("applied") or {}, {"step": "remove", "msg": str(err)}
    return app_result(*common, decision=Decision.REMOVED, check_mode=settings.check, info=info, apply=applied,
                      error=error, **identity_fields(verdict.identity, verdict.project))


def remove_app(name, client, cluster, store, settings):
    """Prune every object of app ``name`` as ``client`` (its identity's) and forget it (``cluster``:
    the run's own, for its record and Lease); returns apply's result."""
    options = Options(prune=True, prune_allow_empty=True, trigger=settings.trigger,
                      inventory_namespace=settings.inventory_namespace, inventory_kind=settings.inventory_kind,
                      lock_timeout=settings.lock_timeout)
    with tempfile.TemporaryDirectory(prefix="gitops-k8s-remove-") as folder:
        write_bundle(folder, [], [], revision=None)
        empty = Bundle.load(folder)
        if settings.check:
            return apply(client, empty, name, options, check=True, records_client=cluster)
        lease = Lease(cluster, name, settings.inventory_namespace)
        lease.acquire(settings.lock_timeout)
        try:
            applied = apply(client, empty, name, options, lease=lease, records_client=cluster)
            left = (store.read(name)[0] or {}).get("objects") or []
            if left:
                raise GitOpsError("app %s left gitops_apps but %d of its object(s) could not be pruned: %s" % (
                    name, len(left), ", ".join(describe(o) for o in left[:10])), remaining=left, applied=applied)
            store.delete(name)
        finally:
            lease.release()
        cluster.delete(dict(lease.where(), apiVersion="coordination.k8s.io/v1"))
    return applied
