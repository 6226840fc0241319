# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Mirrors and credentials by URL prefix: which server a source is fetched from, and with what.

Git and chart sources ignore the user's git configuration on purpose (no ``insteadOf``, no
credential helper: see source.py); a mirror is said in the inventory instead, the same on every
controller: ``[{prefix, replace}]``, a URL that starts with ``prefix`` is fetched from ``replace``
followed by the rest of the URL; the longest prefix wins and a URL is rewritten once, never again.
Credentials by URL prefix (``[{url, username, password, ...}]``) are matched against the URL after
that rewrite, so a mirror gets its own credentials and never those of the server it stands in for.

One rule for the two places that fetch: the gitops.k8s.apps inventory plugin (the definitions
repository, ApplicationSet git generators) and the per-cluster engine (every application's
``repo`` and ``helm.repo``, through cluster_sync_task).
"""

from __future__ import annotations

from ..apps.gitops_apps import CREDENTIAL_KEYS
from ..errors import GitOpsError
from .git import split_credentials

# what a chart repository or registry takes of a credentials entry (the rest is Git's)
HELM_CREDENTIAL_KEYS = ("username", "password", "ca_file")


def by_prefix(entries, url, key):
    """The entry of ``entries`` whose ``key`` is the longest prefix of ``url``, or None."""
    best, length = None, 0
    for entry in entries or ():
        prefix = str(entry.get(key) or "")
        if prefix and str(url or "").startswith(prefix) and len(prefix) > length:
            best, length = entry, len(prefix)
    return best


def check_mirrors(mirrors, where):
    """``mirrors`` as a list, or a GitOpsError naming the entry that is not ``{prefix, replace}``."""
    if mirrors in (None, ""):
        return []
    if not isinstance(mirrors, list):
        raise GitOpsError("%s must be a list of {prefix, replace}, not %r" % (where, type(mirrors).__name__))
    for i, entry in enumerate(mirrors):
        if not (isinstance(entry, dict) and set(entry) == {"prefix", "replace"}
                and all(isinstance(v, str) and v for v in entry.values())):
            raise GitOpsError("%s[%d] must be a mapping with prefix and replace (two non-empty strings), not %r"
                              % (where, i, entry))
    return mirrors


def check_credentials(credentials, where):
    """``credentials`` as a list, or a GitOpsError naming the entry (never a value of it)."""
    if credentials in (None, ""):
        return []
    if not isinstance(credentials, list):
        raise GitOpsError("%s must be a list of {url, username, password, ...}, not %r"
                          % (where, type(credentials).__name__))
    for i, entry in enumerate(credentials):
        if not isinstance(entry, dict) or not entry.get("url"):
            raise GitOpsError("%s[%d] must be a mapping with a url" % (where, i))
        unknown = sorted(set(entry) - {"url"} - set(CREDENTIAL_KEYS))
        if unknown:
            raise GitOpsError("%s[%d]: unknown key%s %s (known keys: url, %s)"
                              % (where, i, "s" if len(unknown) > 1 else "", ", ".join(unknown),
                                 ", ".join(CREDENTIAL_KEYS)))
    return credentials


def mirrored(url, mirrors):
    """``url`` as fetched through ``mirrors`` (itself when no prefix matches)."""
    entry = by_prefix(mirrors, url, "prefix")
    return entry["replace"] + url[len(entry["prefix"]):] if entry else url


def credentials_for(url, credentials, keys=CREDENTIAL_KEYS):
    """The ``keys`` of the credentials entry whose url is the longest prefix of ``url``: {} if none."""
    entry = by_prefix(credentials, url, "url") or {}
    return {k: entry[k] for k in keys if entry.get(k) is not None}


def _shown(url):
    return split_credentials(url)[0]  # a user:password in a URL never reaches a result


def sourced_app(app, mirrors, credentials):
    """A copy of ``app`` (a gitops_apps item) with ``repo`` and ``helm.repo`` rewritten by ``mirrors``
    and, when it gives none of its own, the credentials of the URL it is fetched from; and
    ``{"repo" | "helm.repo": {"from", "to"}}`` for each URL a mirror rewrote."""
    app, moved = dict(app), {}
    if isinstance(app.get("repo"), str):
        used = mirrored(app["repo"], mirrors)
        if used != app["repo"]:
            moved["repo"] = {"from": _shown(app["repo"]), "to": _shown(used)}
        app["repo"] = used
        if not app.get("credentials"):
            app["credentials"] = credentials_for(used, credentials)
    helm = app.get("helm")
    if isinstance(helm, dict) and isinstance(helm.get("repo"), str):
        used = mirrored(helm["repo"], mirrors)
        if used != helm["repo"]:
            moved["helm.repo"] = {"from": _shown(helm["repo"]), "to": _shown(used)}
        helm = app["helm"] = dict(helm, repo=used)
        if all(helm.get(k) is None for k in HELM_CREDENTIAL_KEYS):
            helm.update(credentials_for(used, credentials, HELM_CREDENTIAL_KEYS))
    return app, moved
