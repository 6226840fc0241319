# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Teams and least privilege in the per-cluster run: each app inside its project's policy, acting
as its own identity (sync/policy.py says what a project allows; this is where the run applies it).

  policy    right after render, before any request for the app: its repository, namespace and
            rendered objects against its project, its identity resolved (``check_policies``);
            once the records are read, the objects its record claims too (``check_record``: a
            prune would delete them). A refusal fails the app at step ``policy``, naming the file,
            the object and the rule; nothing of it is read or applied, the other apps go on.
  identity  an app with a ServiceAccount (its own ``service_account``, or its project's for its
            namespace) gets a client acting as it (``Cluster.as_identity``), through which goes
            every request about its objects: the reads of the read phase (one snapshot per
            identity, read.py), the decide phase's dry-run, apply, prune deletes, hooks, health
            reads and watches (one WatchHub per identity), the bake, rollback, and its removal
            once it departs (as the identity its record names: ``departed_client``). Without one
            it uses the run's own client, which ``require_identity`` refuses.

The run's own identity keeps what is the run's, not a tenant's: discovery (which kinds a cluster
serves; tenants may not read CRDs) and the records, the apps' Leases, the claims Lease and the
key of Secret digests in the inventory namespace. Those say which app owns which object; a
tenant that could write them could claim another team's objects for its prune.
"""

from __future__ import annotations

import threading

from ..errors import GitOpsError
from ..refs import group_of, key_of
from .policy import SA_USER_PREFIX, Verdict, check_objects, evaluate, refusal


class Scopes:
    """Whether a kind is namespaced, as the run's discovery says (None: the cluster does not serve
    it); each (apiVersion, kind) looked up once a run."""

    def __init__(self, cluster):
        self.cluster, self._known, self._lock = cluster, {}, threading.Lock()

    def of(self, refs):
        """The ``namespaced(group, kind)`` of policy.evaluate for the objects ``refs``."""
        versions = {(group_of(r.get("apiVersion") or ""), r.get("kind") or ""): r.get("apiVersion") or "" for r in refs}

        def namespaced(group, kind):
            key = (versions.get((group, kind), ""), kind)
            with self._lock:
                if key not in self._known:
                    try:
                        self._known[key] = self.cluster.resource(*key).namespaced
                    except GitOpsError:
                        self._known[key] = None  # not served (yet): the entry's namespace tells
                return self._known[key]

        return namespaced


def check_policies(app_syncs, cluster, settings):
    """The policy phase: each rendered app's Verdict (``app_sync.policy``) and client (``app_sync.client``)."""
    scopes = Scopes(cluster)
    for app_sync in app_syncs:
        if app_sync.failed:
            continue
        entries = app_sync.bundle.entries
        verdict = evaluate(app_sync.app, entries, settings.projects, settings.require_identity, scopes.of(entries))
        app_sync.policy = verdict
        if verdict.refusals:
            app_sync.fail("policy", verdict.error())
            continue
        app_sync.client = cluster.as_identity(verdict.identity) if verdict.identity else cluster
    return scopes


def check_record(app_sync, settings, scopes):
    """The objects ``app_sync``'s record claims besides its bundle's (a prune would delete them,
    a read would read them) against its project; a refusal fails the app at step ``policy``."""
    verdict = app_sync.policy
    project = settings.projects.get(verdict.project) if verdict and verdict.project else None
    if project is None or app_sync.failed:
        return
    bundled = {key_of(e) for e in app_sync.bundle.entries}
    claimed = [dict(o, source="the record of %s" % app_sync.name)
               for o in (app_sync.record or {}).get("objects") or () if key_of(o) not in bundled]
    refusals = check_objects(project, claimed, scopes.of(claimed))
    if refusals:
        app_sync.fail("policy", verdict._replace(refusals=refusals).error())


def departed_client(name, app, record, cluster, settings, scopes):
    """(client, policy.Verdict) of the departed app ``name``: its client acts as the identity ``app``
    (``state: absent``: its configuration) resolves, else as the one its record names (the one it
    last synced as). GitOpsError when the project refuses an object of its record, or when ``require_identity``
    finds no identity."""
    objects = [dict(o, source="the record of %s" % name) for o in (record or {}).get("objects") or ()]
    if app is not None:
        verdict = evaluate(app, objects, settings.projects, settings.require_identity, scopes.of(objects))
    else:
        verdict = Verdict(name, (record or {}).get("project"), (record or {}).get("identity"), None, [])
        project = settings.projects.get(verdict.project) if verdict.project else None
        refusals = check_objects(project, objects, scopes.of(objects)) if project else []
        if verdict.identity is None and settings.require_identity:
            refusals.append(refusal("require_identity", "application %r left gitops_apps and its record names no "
                                    "identity to remove it as, and gitops_require_identity is set" % name))
        verdict = verdict._replace(refusals=refusals)
    if verdict.refusals:
        raise verdict.error()
    return (cluster.as_identity(verdict.identity) if verdict.identity else cluster), verdict


def identity_fields(identity, project):
    """What a result says of whom the app acted as: ``identity`` (the user impersonated, or None:
    the run's own), ``service_account`` (``ns/name``) and ``project``."""
    account = identity[len(SA_USER_PREFIX):].replace(":", "/", 1) if identity and identity.startswith(
        SA_USER_PREFIX) else identity
    return {"identity": identity, "service_account": account, "project": project}
