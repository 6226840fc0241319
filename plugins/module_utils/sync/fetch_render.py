# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Phases 2 and 3 of the per-cluster run: each repository fetched once, each commit checked out
once (sources/checkouts.py); each distinct (commit, path, namespace, render options, helm)
rendered once, or recalled from an earlier run (render/memo.py)."""

from __future__ import annotations

import json

from ..concurrency import each
from ..errors import GitOpsError
from ..refs import describe, key_of
from ..sources.charts import app_revision, pull as pull_chart
from ..sources.git import cache_root
from .app_sync import Source

# App keys that are not render options of the app's `render` mapping (the keys are the app's
# `decryption`, or its project's: never a render option, which is neither no_log nor checked).
RENDER_RESERVED = ("source", "path", "namespace", "dest", "check_mode", "revision", "helm", "chart", "decryption")


def fetch_sources(app_syncs, sources, settings):
    """Resolve every app's version and check its commit out; each repository once, concurrently."""
    by_repo = {}
    for app_sync in app_syncs:
        by_repo.setdefault(app_sync.app["repo"], []).append(app_sync)

    def one_repo(group):
        for app_sync in group:
            with app_sync.step("fetch"):
                app_sync.source = fetch_source(app_sync.app, sources, settings.revision)

    each(settings.concurrency, one_repo, list(by_repo.values()))


def fetch_source(app, sources, revision=None):
    """The app's Source at ``revision`` (else its ``version``)."""
    resolved, checkout, commit, chart = {}, None, None, None
    if app["repo"]:  # a chart from a repository may have no Git repo, or one holding its values
        resolved = sources.resolve(app["repo"], revision or app.get("version"), app["credentials"])
        checkout, commit = sources.checkout(resolved, app["credentials"])
    if (app["helm"] or {}).get("repo"):
        chart = pull_chart(app["helm"], cache_root())
        resolved = dict(resolved, revision=app_revision(chart, resolved.get("revision")), chart=chart)
    return Source(resolved, checkout, chart, commit)


def render_bundles(app_syncs, settings):
    """Render each distinct (commit, path, namespace, render options, helm, keys) once (``render_app``).
    Apps with other keys never share a render (one could read what only the other's keys open);
    keys are told apart by whose they are, never by their material."""
    groups = {}
    for app_sync in app_syncs:
        if app_sync.failed:
            continue
        app = app_sync.app
        with app_sync.step("render"):
            keys = settings.keys_of(app)
            key = json.dumps([app_sync.revision, app["path"], app["namespace"], app["render"], app["helm"], keys.owner],
                             sort_keys=True)
            groups.setdefault(key, (keys, []))[1].append(app_sync)

    def one(group):
        keys, group = group
        first = group[0]
        try:
            bundle = render_app(first.app, first.source, keys.decryption)
        except GitOpsError as err:
            for app_sync in group:
                app_sync.fail("render", err)
            return
        for app_sync in group:
            app_sync.bundle = bundle

    each(settings.concurrency, one, list(groups.values()))


def render_app(app, source, decryption=None):
    """The bundle of ``app`` at ``source`` (a Source: the checkout of a commit, the chart pulled for
    it) rendered with the app's path, namespace, render options and ``helm`` (the credentials of
    the chart's dependency repositories), or recalled from an earlier run (render/memo.py). A sync
    and its rollback both render through here, so a rollback renders the revision as its sync did.
    ``decryption``: the app's keys (RunSettings.keys_of); a render that decrypted anything is never
    remembered, and no key enters a memo key."""
    from ..render import memo, render_bundle  # the renderers are only needed when something is rendered

    options = dict(app["render"])
    clash = sorted(set(options) & set(RENDER_RESERVED))
    if clash:
        raise GitOpsError("render options may not set %s" % ", ".join(clash))
    # a Git commit's tree (a chart's content is not a commit's: never remembered)
    remembered = None if app["helm"] or source.chart else memo.key(
        source.revision, {"path": app["path"], "namespace": app["namespace"], "options": options})
    bundle = memo.recall(remembered) if remembered else None
    if bundle is None:
        try:
            _result, bundle = render_bundle(source.checkout, path=app["path"], namespace=app["namespace"],
                                            revision=source.revision, helm=app["helm"], chart=source.chart,
                                            decryption=decryption, **options)
        except TypeError as err:  # an unknown render option
            raise GitOpsError("bad render option: %s" % err)
        if remembered:
            memo.remember(remembered, bundle)
    return bundle


def refuse_shared_objects(app_syncs):
    """An object declared by two apps of the run would be owned by whichever applied last: both fail."""
    declared = {}
    for app_sync in app_syncs:
        for entry in (app_sync.bundle.entries if app_sync.bundle and not app_sync.failed else ()):
            if not entry.get("hook") and entry.get("name"):
                declared.setdefault(key_of(entry), []).append((app_sync, entry))
    for pairs in declared.values():
        if len({app_sync.name for app_sync, _entry in pairs}) < 2:
            continue
        where = ", ".join("app %s (%s)" % (app_sync.name, entry.get("source")) for app_sync, entry in pairs)
        for app_sync, entry in pairs:
            if not app_sync.failed:
                app_sync.fail("render", GitOpsError("%s is declared by more than one application: %s"
                                                    % (describe(entry), where), object=entry))
