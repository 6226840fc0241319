# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Render a path of a checkout into a validated, ordered bundle.

One renderer per file (directory, kustomize, helm, jinja, jsonnet) turns the path into
``(source file, text)`` documents, decrypting the SOPS and Ansible Vault files it reads with the
``decryption`` keys (secrets.py); everything after that is shared: parse once, flatten Lists,
substitute variables, read waves and hooks, validate, default the namespace, add labels and
annotations, refuse duplicates, order, and write the bundle (every object of it sealed when
anything was decrypted).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile

from ..bundle import (INDEX, MANIFEST, OBJECTS, Bundle, bundle_index, cache_folder, canonical_json, evict_now_and_then,
                      touch, write_bundle)
from ..errors import GitOpsError
from ..refs import describe, group_of, key_of, ref_of
from ..sources.git import cache_root
from ..sources import charts as chart_source
from . import directory, jinja, jsonnet, kustomize
from .secrets import Decryptor, refuse_undecrypted
from . import helm as helm_renderer  # "helm" is the option naming a chart to pull
from .checkout import Checkout
from .documents import parse, validate
from .order import cluster_scoped_kinds, sort_key
from .substitute import substitute as substitute_variables
from .waves_hooks import wave_and_hook

RENDERERS = {"directory": directory, "kustomize": kustomize, "helm": helm_renderer, "jinja": jinja, "jsonnet": jsonnet}


def detect(target):
    if kustomize.kustomization_file(target):
        return "kustomize"
    if os.path.isfile(os.path.join(target, "Chart.yaml")):
        return "helm"
    return "directory"


def _revision(root):
    """The commit the checkout is at (read from .git without running git), or None."""
    try:
        import git
        return git.Repo(root).head.commit.hexsha
    except Exception:  # not a git checkout, GitPython missing, unborn HEAD: no revision to record
        return None


def render(*args, **kwargs):
    """Render ``path`` of the checkout ``source`` (or the chart ``helm`` names); write the bundle;
    return the result (see ``render_bundle``)."""
    return render_bundle(*args, **kwargs)[0]


def render_bundle(source=None, path=".", type="auto", namespace=None, labels=None, annotations=None, substitute=None,
                  substitute_strict=True, allow_empty=False, dest=None, check_mode=False, revision=None, helm=None,
                  chart=None, decryption=None, **options):
    """Render ``path`` of the checkout ``source`` (or the chart ``helm`` names); write the bundle;
    return (the result, the Bundle as rendered: no need to read it back).

    ``revision`` is what the bundle records; by default the one ``source`` is checked out at (for a
    pulled chart: ``<chart>@<version>+<digest12>``, then that commit).

    ``options`` are the renderer's own (recurse, include, exclude, release_name, values_files,
    values, include_crds, kube_version, api_versions, vars, ext_vars, tla, jsonnet_libs,
    kustomize_enable_helm, helm_binary, kustomize_binary, sops_binary). ``helm`` (see chart_source)
    pulls the chart from a repository or registry; ``source`` is then optional and holds the values
    files. ``chart``: the result of ``chart_source.pull`` for ``helm`` when the caller pulled it
    already. ``decryption``: the keys of this render, ``{age_keys, gpg_keys, vault}`` (see
    secrets.Decryptor); the renderer's ``decrypted`` files are listed in the bundle's renderer.
    """
    spec = chart_source.check_spec(helm) if helm else None
    pulled = chart or (chart_source.pull(spec, cache_root(), options.get("helm_binary")) if spec and spec["repo"] else None)
    if source is None and pulled is None:
        raise GitOpsError("source is required unless helm.repo names a chart to pull")
    checkout = Checkout(os.path.expanduser(source)) if source is not None else None
    target = checkout.resolve(path or ".", "path") if checkout else None
    if target and not os.path.isdir(target):
        raise GitOpsError("path %r is not a directory of the checkout" % path, path=path)
    kind = "helm" if pulled else detect(target) if type == "auto" else type
    # the decryptor's plaintext folders and GNUPGHOME are gone once the renderer returns
    with Decryptor(decryption, options.get("sops_binary")) as decryptor:
        documents, version = RENDERERS[kind].render(
            checkout, target, dict(options, namespace=namespace, helm=spec, pulled=pulled, decryptor=decryptor))
    renderer = {"type": kind, "version": version}
    if decryptor.decrypted:
        renderer["decrypted"] = sorted(set(decryptor.decrypted))
    objects, entries, skipped = postprocess(parse(documents), namespace, labels, annotations, substitute,
                                            substitute_strict)
    if not objects and not allow_empty:
        raise GitOpsError("rendering %s (%s) produced no objects; set allow_empty: true if that is intended"
                          % (pulled["revision"] if pulled else checkout.relpath(target), kind), path=path)
    if revision is None:
        # a pulled chart's revision is the chart's (name@version+digest); values from Git add their commit
        revision = chart_source.app_revision(pulled, _revision(checkout.root) if checkout else None)
    result, index = write(objects, entries, dest, check_mode, revision, renderer)
    result["skipped"] = skipped
    result["chart"] = {k: pulled[k] for k in ("chart", "version", "digest", "revision")} if pulled else None
    return result, Bundle(result["bundle"], index, objects)


def postprocess(parsed, namespace=None, labels=None, annotations=None, substitute=None, substitute_strict=True):
    """[(source, object)] -> (objects, index entries, skipped) in canonical order."""
    if substitute is not None:
        parsed = [(src, substitute_variables(src, obj, substitute, substitute_strict)) for src, obj in parsed]
    kept, skipped = [], []
    for src, obj in parsed:
        validate(src, obj)
        refuse_undecrypted(src, obj)
        wave, hook, policies, skip = wave_and_hook(src, obj)
        if not obj["metadata"].get("name") and not hook:
            raise GitOpsError("%s: %s has generateName but no name; only hooks may (they are created anew each sync)"
                              % (src, describe(ref_of(obj))), file=src, object=ref_of(obj))
        if skip:
            skipped.append(dict(ref_of(obj), source=src, reason=skip))
        else:
            kept.append((src, obj, wave, hook, policies))

    scoped = cluster_scoped_kinds(row[1] for row in kept)
    rows, seen = [], {}
    for src, obj, wave, hook, policies in kept:
        meta = obj["metadata"]
        if (group_of(obj["apiVersion"]), obj["kind"]) in scoped:
            meta.pop("namespace", None)
        elif namespace and not meta.get("namespace"):
            meta["namespace"] = namespace
        if labels:
            meta["labels"] = dict(meta.get("labels") or {}, **labels)
        if annotations:
            meta["annotations"] = dict(meta.get("annotations") or {}, **annotations)
        entry = dict(ref_of(obj), wave=wave, hook=hook, hook_delete_policy=policies, source=src)
        if meta.get("name"):  # generateName hooks get a new name each run, so they never collide
            key = key_of(entry)
            if key in seen:
                raise GitOpsError("%s is defined twice: in %s and in %s" % (describe(entry), seen[key], src),
                                  object=ref_of(obj), files=[seen[key], src])
            seen[key] = src
        rows.append((entry, obj))
    rows.sort(key=lambda row: sort_key(row[0]))
    return [obj for _entry, obj in rows], [entry for entry, _obj in rows], skipped


def read_index(folder):
    """The index.json of the bundle in ``folder``, or None."""
    try:
        with open(os.path.join(folder, INDEX), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def write(objects, entries, dest, check_mode, revision, renderer):
    """Write the bundle next to its final place, then move it in, unless it is there already;
    ``changed`` when the content differs. Returns (the result, the index).

    Without ``dest`` the bundle goes to the content-addressed cache, one folder per index (content,
    revision and renderer: two revisions of the same content never share, or rewrite, a folder).
    In check mode an explicit ``dest`` is left alone: the bundle is written to the cache (later
    steps of a --check run need it) and ``changed`` says whether ``dest`` would change.
    A render that decrypted files (``renderer["decrypted"]``) has every object sealed: any of them
    may hold plaintext (a ConfigMap generated from an encrypted file, a Deployment from Helm values).
    """
    bundles = cache_folder()
    index = bundle_index(objects, entries, revision=revision, renderer=renderer)
    cached = os.path.join(bundles, hashlib.sha256(canonical_json(index).encode("utf-8")).hexdigest())
    final = os.path.abspath(os.path.expanduser(dest)) if dest else cached
    previous = read_index(final)
    changed = (previous or {}).get("digest") != index["digest"]
    if check_mode and dest:
        final, previous = cached, read_index(cached)
    # a reader that sees the index sees its objects (written before it); a bundle of a release
    # before objects.json gets it
    if previous != index or not os.path.exists(os.path.join(final, OBJECTS)):
        os.makedirs(bundles, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".render-", dir=bundles)
        try:
            write_bundle(staging, objects, entries, index=index, seal_all=bool(renderer.get("decrypted")))
            os.makedirs(final, exist_ok=True)
            for name in (MANIFEST, OBJECTS, INDEX):  # index last
                os.replace(os.path.join(staging, name), os.path.join(final, name))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    touch(final)
    evict_now_and_then(bundles)
    return {
        "changed": changed, "bundle": final, "digest": index["digest"], "count": index["count"],
        "kinds": index["kinds"], "objects": index["objects"], "revision": revision, "renderer": renderer,
    }, index
