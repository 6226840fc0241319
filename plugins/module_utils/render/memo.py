# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Renders remembered across runs: (commit, path, render options) -> the bundle they rendered.

A commit's tree never changes, so the per-cluster engine need not parse the same manifests again
on every run: a reconcile of a thousand unchanged apps did, every few minutes. Only the
``directory`` renderer is remembered (plain manifests, read from the commit alone, parsed by code
this key covers); kustomize, helm, jinja and jsonnet render each time, as their output also
depends on the tools and libraries installed.

The key is an HMAC under the controller's bundle key (render options may carry secret values,
such as ``substitute`` variables), over the commit, the path, every option, PyYAML's version and
the source of the rendering code itself, so that an upgrade never reuses what older code
rendered. An entry (``<cache>/rendered/<key>``) names a bundle of the content-addressed cache; a
bundle evicted since, or that does not load, is rendered again.

A render that decrypts is never remembered: its keys (the ``decryption`` option) stay out of the
key's material, and no entry leads to a bundle of decrypted files, which renders again each time
with the keys of the app that asks.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import os
import tempfile
import time

from ..bundle import CACHE_MAX_AGE, Bundle, cache_folder, canonical_json, controller_key, evict_now_and_then
from ..deps import require_yaml
from ..errors import GitOpsError
from ..sources.git import cache_root

REMEMBERED = ("directory",)
FOLDER = "rendered"


@functools.lru_cache(maxsize=None)
def _code_digest():
    """sha256 of the source of every module that shapes a directory bundle, or None when a
    loader cannot give it (nothing is remembered then)."""
    from .. import bundle, refs, render
    from . import checkout, directory, documents, order, secrets, substitute, waves_hooks
    digest = hashlib.sha256()
    for module in (render, bundle, refs, checkout, directory, documents, order, secrets, substitute, waves_hooks):
        try:
            digest.update(inspect.getsource(module).encode("utf-8"))
        except (OSError, TypeError):
            return None
    return digest.hexdigest()


def key(commit, params):
    """The memo key of rendering ``params`` (path, namespace, options) of the tree of ``commit`` (a
    sha; the bundle records it as its revision), or None when it cannot be remembered."""
    code = _code_digest()
    if not commit or code is None or (params.get("options") or {}).get("decryption"):
        return None
    try:
        material = canonical_json({"commit": commit, "params": params, "code": code,
                                   "yaml": require_yaml("rendering type=directory").__version__})
    except (TypeError, ValueError):  # an option that is not plain data
        return None
    return hmac.new(controller_key(True), material.encode("utf-8"), hashlib.sha256).hexdigest()


def recall(memo_key):
    """The bundle remembered under ``memo_key``, or None."""
    entry = os.path.join(cache_root(), FOLDER, memo_key)
    try:
        with open(entry, encoding="utf-8") as handle:
            name = handle.read().strip()
        bundle = Bundle.load(os.path.join(cache_folder(), name))
        os.utime(entry)  # recently used: kept by eviction
    except (OSError, GitOpsError):
        return None
    return bundle


def remember(memo_key, bundle):
    """Remember ``bundle`` (just rendered, in the bundle cache) under ``memo_key``."""
    if bundle.index["renderer"].get("type") not in REMEMBERED or bundle.index["renderer"].get("decrypted") or \
            os.path.dirname(bundle.path) != cache_folder():
        return
    folder = os.path.join(cache_root(), FOLDER)
    os.makedirs(folder, exist_ok=True)
    fd, aside = tempfile.mkstemp(dir=folder, prefix=".entry")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(os.path.basename(bundle.path))
    os.replace(aside, os.path.join(folder, memo_key))
    evict_now_and_then(folder, forget)


def forget(folder, now=None):
    """Remove the entries of ``folder`` unused for CACHE_MAX_AGE (their bundles are gone by then)."""
    now = time.time() if now is None else now
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        try:
            if now - os.path.getmtime(path) > CACHE_MAX_AGE:
                os.unlink(path)
        except OSError:
            continue  # removed by another process meanwhile
