# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The per-cluster sync engine: every application of one cluster converged by one process.

  1. plan      validate ``gitops_apps``, order them by ``depends_on`` (apps/gitops_apps.py)
  2. sources   each repository listed and fetched once, each commit checked out once, read-only
               (fetch_render.py, sources/checkouts.py)
  3. render    each (commit, path, namespace, render options) rendered once into a bundle
     policy    each app against its project, before any request for it; its identity, the client
               every request about its objects goes through (tenancy.py)
  4. read      discovery once, every record with one LIST, one LIST per kind for all apps of an
               identity (a GET per object when the run names few of a kind: read.py, cluster/snapshot.py)
  5. decide    per app, from that one read: a Verdict (decide.py); a change a deployment window
               or a promotion gate holds is decided held, a push a window refuses fails (gates.py)
  6. converge  dependency level after level, the apps of a level concurrently; for each app that
               has work: its Lease, the decision checked again under it, apply, health wait,
               verdict recorded, rollback on failure (converge.py)
     bake      with ``bake``: the run's healthy apps watched that long; one that turns Degraded
               fails, and is rolled back when it was synced by this run (bake.py)
  7. results   one result per app (app_result.py) in the shape the report reads; ``progress``
               gets one line per app as it finishes; departed apps removed (departed.py)

Each app's state is an AppSync (app_sync.py), which each phase fills in in one place. Every step
of an app is guarded: a failure is that app's (``error`` names the step), never the run's; apps
that depend on it are skipped.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable

from ..app_result import Decision, app_result, skipped_result
from ..apps.gitops_apps import normalize_app, order_apps
from ..cluster.records import INVENTORY_NAMESPACE, Inventory
from ..cluster.snapshot import LiveSnapshot
from ..errors import GitOpsError
from ..sources.checkouts import Sources
from .app_sync import AppSync, gate_fields
from .bake import bake_apps
from .converge import converge_levels, stamp_records
from .decide import decide_all
from .departed import remove_departed
from .fetch_render import fetch_sources, refuse_shared_objects, render_bundles
from .gates import Gates
from .policy import keys_of
from .read import ClusterRead, bundle_refs, read_cluster
from .tenancy import check_policies

DEFAULT_CONCURRENCY = 4
DEFAULT_LOCK_TIMEOUT = 300


def _quiet(_line):
    return None


@dataclass(frozen=True)
class RunSettings:
    """How one run goes: mode (push | reconcile), selection, revision override, check/diff mode.
    ``complete``: ``apps`` is every application of the cluster (recorded ones missing departed).
    ``projects``: policy.load_projects of ``gitops_projects``; ``play_vault``: the play's vault
    secrets [(vault id, VaultSecret)]; both only ever reach an app through ``keys_of``.
    ``require_identity``: an app without an identity of its own is refused (tenancy.py).
    Gates (gates.py): ``windows`` (windows.Window of ``gitops_windows``), ``override_window`` (the
    reason a push goes through them), ``clock`` (the epoch seconds they decide at; None: now),
    ``promote_after`` (promotion.parse_gate of the host's gate) and ``promotion_clusters`` (where
    each gate's cluster keeps its records). ``bake``: seconds the synced apps must stay healthy."""

    mode: str = "reconcile"
    select: object = None
    revision: str | None = None
    cluster_name: str = "cluster"
    check: bool = False
    want_diff: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    inventory_namespace: str = INVENTORY_NAMESPACE
    inventory_kind: str = "ConfigMap"
    progress: Callable = _quiet
    complete: bool = False
    projects: dict = field(default_factory=dict, repr=False)
    play_vault: tuple = field(default=(), repr=False)
    require_identity: bool = False
    windows: tuple = ()
    override_window: str | None = None
    clock: float | None = None
    promote_after: dict | None = None
    promotion_clusters: tuple = field(default=(), repr=False)
    bake: float = 0

    def __post_init__(self):
        if self.mode not in ("push", "reconcile"):
            raise GitOpsError("mode must be push or reconcile, not %r" % (self.mode,))
        object.__setattr__(self, "concurrency", max(1, int(self.concurrency)))
        object.__setattr__(self, "revision", self.revision or None)
        object.__setattr__(self, "progress", self.progress or _quiet)

    @property
    def trigger(self):
        return "push" if self.mode == "push" else "pull"

    def keys_of(self, app):
        """The keys ``app`` decrypts with (policy.Keys): its own and its project's."""
        return keys_of(app, self.projects, self.play_vault)


@contextlib.contextmanager
def timed(phases, name):
    begun = time.monotonic()
    try:
        yield
    finally:
        phases[name] = round(time.monotonic() - begun, 3)


def sync_cluster(cluster, apps, settings, sources=None):
    """Converge the applications ``apps`` (gitops_apps) on ``cluster``; returns the task result."""
    started, requests_before = time.monotonic(), cluster.requests_made
    planned = order_apps(apps, settings.select)
    by_name = {app["name"]: app for app in (normalize_app(a, i) for i, a in enumerate(apps))}
    app_syncs = {name: AppSync(by_name[name], settings) for level in planned["levels"] for name in level}
    every = list(app_syncs.values())
    sources = sources or Sources()
    sources.evict()  # checkouts and repositories no run has used for long (cache.py)
    store = Inventory(cluster, settings.inventory_namespace, settings.inventory_kind)
    phases = {}
    with timed(phases, "sources"):
        fetch_sources(every, sources, settings)
    with timed(phases, "render"):
        render_bundles(every, settings)
    refuse_shared_objects(every)
    with timed(phases, "policy"):
        scopes = check_policies(every, cluster, settings)
    with timed(phases, "read"):
        read = read_or_fail(every, cluster, store, settings, scopes)
    gates = Gates(settings)
    with timed(phases, "decide"):
        decide_all(every, read, sources, settings, gates)
    if not settings.check and any(a.verdict and a.verdict.needs_apply and not a.failed for a in every):
        store.ensure_namespace()  # once, for every Lease and record of the run
    try:
        with timed(phases, "converge"):
            watch_for(every, cluster, read)
            converge_levels(planned["levels"], app_syncs, cluster, store, sources, read, settings)
        if settings.bake and not settings.check:
            with timed(phases, "bake"):
                bake_apps(every, cluster, store, sources, read, settings)
    finally:
        read.watches.close()
    if not settings.check:
        stamp_records(every, store, settings)
    results = [app_syncs[name].result() for level in planned["levels"] for name in level]
    results += [skipped_result(name, settings.cluster_name, by_name[name]["namespace"], settings.trigger,
                               "suspended", suspended=True) for name in planned["suspended"]]
    departed, held = held_removals(departed_apps(planned, apps, by_name, read.records, settings), gates, settings)
    results += held
    if departed:
        with timed(phases, "remove"):
            results += remove_departed(departed, read.records, cluster, store, settings, scopes)
    return task_result(results, every, phases, round(time.monotonic() - started, 3),
                       cluster.requests_made - requests_before)


def task_result(results, app_syncs, phases, duration, api_requests):
    """The cluster_sync task's result: every app's result, and what the run did as a whole."""
    return {
        "changed": any(r.get("apply", {}).get("changed") for r in results),
        "results": results,
        "failed_apps": [r["app"] for r in results if not r.get("ok", True) and not r.get("suspended")],
        "phases": phases,
        "duration": duration,
        "api_requests": api_requests,
        "ansible_diff": [d for a in app_syncs for d in a.shown_diff()],
    }


def watch_for(app_syncs, cluster, read):
    """Tell the run's watches every object the apps to apply will wait for, so that each kind is
    watched as the whole run needs (by name, in one namespace, or cluster-wide)."""
    refs = {}  # the watches of each identity: its apps' objects
    for a in app_syncs:
        if a.verdict and a.verdict.needs_apply and not a.failed and a.app["wait"]["enabled"]:
            refs.setdefault(a.identity, (a.client, []))[1].extend(bundle_refs(cluster, a.bundle))
    for client, wanted in refs.values():
        if wanted:
            read.watches.hub_for(client).expect(wanted)


def read_or_fail(app_syncs, cluster, store, settings, scopes):
    """The run's ClusterRead; when the cluster cannot be read, no app can be compared or synced."""
    snapshot = LiveSnapshot(cluster)
    try:
        return read_cluster(app_syncs, cluster, store, snapshot, settings, scopes)
    except GitOpsError as err:
        for app_sync in app_syncs:
            if not app_sync.failed:
                app_sync.fail("read", err)
        return ClusterRead({}, None, None, snapshot)


def held_removals(departed, gates, settings):
    """(the departed apps a window lets go, the results of those it holds): a removal is a change."""
    going, held = [], []
    for name, app in departed:
        gate = gates.window(name, app)
        if gate.verdict == "go":
            going.append((name, app))
        else:
            held.append(app_result(name, settings.cluster_name, (app or {}).get("namespace"), settings.trigger,
                                   decision=Decision.HELD, check_mode=settings.check, note=gate.reason,
                                   error={"step": "window", "msg": gate.reason} if gate.verdict == "refuse" else None,
                                   **gate_fields(gate)))
    return going, held


def departed_apps(planned, apps, by_name, records, settings):
    """[(name, app or None)] of the apps to remove: ``state: absent``, and with ``complete`` those
    this cluster host recorded that are no longer listed."""
    departed = [(name, by_name.get(name)) for name in planned["absent"]]
    filtered = planned["selected"] != [a.get("name") for a in apps]
    if settings.complete and settings.mode == "reconcile" and not filtered:
        departed += [(name, None) for name, record in sorted(records.items())
                     if name not in by_name and record.get("cluster") == settings.cluster_name]
    return departed
