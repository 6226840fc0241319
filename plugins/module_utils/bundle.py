# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The bundle: the hand-off between render and the cluster-facing steps.

On disk a bundle is a directory with
  manifest.yaml  every object, in apply order, as a multi-document YAML stream
  objects.json   the same documents as one JSON array: what ``Bundle.load`` reads (a YAML parser
                 takes ten times as long, and a reconcile loads every app's bundle)
  index.json     {"digest", "revision", "renderer": {"type", "version"}, "count", "kinds", "objects": [entry...]}
where an entry describes one object (same order as the manifest):
  {apiVersion, kind, namespace, name, wave, hook, hook_delete_policy, source, digest}
``hook`` is a list of phases (PreSync, Sync, PostSync, SyncFail) or null; ``digest`` is the
sha256 of the object's canonical JSON; the bundle digest is the sha256 of the entries' digests.

Secrets are never written in clear: each Secret document of the manifest (every document, in a
bundle rendered from decrypted files) is sealed, i.e. replaced
by ``{apiVersion, kind, metadata: {name, namespace}, gitops.k8s/sealed: <AES-256-GCM ciphertext>}``
of the whole object, under a key of this controller (``<cache>/keys/bundle.key``, mode 0600,
made on first use). ``Bundle.load`` opens them again, so a bundle rendered by one task is usable
by the next tasks of the play on the same controller, while a copy of the cache (or a bundle left
behind) reveals no secret value. A bundle whose key is gone must be rendered again.

Bundles in the cache are evicted by ``evict`` when unused (index.json untouched: render and load
touch it) for longer than CACHE_MAX_AGE, or beyond CACHE_MAX_BUNDLES, never those used within
cache.IN_USE: a play's render and apply are minutes apart.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile

from . import cache
from .deps import import_library, require_yaml
from .errors import GitOpsError
from .sources.git import cache_root

MANIFEST = "manifest.yaml"
OBJECTS = "objects.json"
INDEX = "index.json"
SEALED = "gitops.k8s/sealed"
CACHE_MAX_AGE = 24 * 3600
CACHE_MAX_BUNDLES = 256


def cache_folder():
    """Where rendered bundles are kept, one folder per index (see render.write)."""
    return os.path.join(cache_root(), "bundles")


def controller_key(create):
    """This controller's bundle key (32 bytes), or None when absent and not ``create``."""
    path = os.path.join(cache_root(), "keys", "bundle.key")
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        if not create:
            return None
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    # written aside, then linked into place: a concurrent reader sees no key or the whole key
    fd, aside = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".bundle.key")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(32))
        try:
            os.link(aside, path)
        except FileExistsError:  # another thread or process made it first: theirs is the key
            pass
    finally:
        os.unlink(aside)
    return controller_key(False)


def _aead(key):
    aead = import_library("cryptography.hazmat.primitives.ciphers.aead", "cryptography", "sealing Secrets in bundles")
    return aead.AESGCM(key)


def seal(obj, key):
    """The stand-in document for the Secret ``obj`` (see the module docstring)."""
    nonce = os.urandom(12)
    meta = obj.get("metadata") or {}
    sealed = nonce + _aead(key).encrypt(nonce, canonical_json(obj).encode("utf-8"), b"gitops.k8s bundle")
    stand_in = {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                "metadata": {k: meta[k] for k in ("name", "namespace") if meta.get(k)}}
    stand_in[SEALED] = base64.b64encode(sealed).decode("ascii")
    return stand_in


def unseal(doc, key, path):
    if SEALED not in doc:
        return doc
    if key is None:
        raise GitOpsError("bundle %s holds sealed Secrets and this controller has no key to open them (the bundle was "
                          "rendered elsewhere, or the key was removed): render it again" % path, bundle=path)
    blob = base64.b64decode(doc[SEALED])
    try:
        return json.loads(_aead(key).decrypt(blob[:12], blob[12:], b"gitops.k8s bundle"))
    except Exception:  # InvalidTag: another controller's key, or a tampered file
        raise GitOpsError("bundle %s: a sealed Secret does not open with this controller's key: render it again" % path,
                          bundle=path)


def _is_secret(obj):
    return obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def touch(path):
    try:
        os.utime(os.path.join(path, INDEX))
    except OSError:
        pass


def evict_now_and_then(folder, sweep=None):
    """``sweep(folder)`` (default ``evict``) at most once every cache.EVICT_EVERY seconds."""
    cache.now_and_then(folder, sweep or evict)


def _index_time(path):
    return os.stat(os.path.join(path, INDEX)).st_mtime


def evict(folder, now=None):
    """Remove the bundles of the cache ``folder`` unused (index.json untouched) for CACHE_MAX_AGE,
    and the least recently used beyond CACHE_MAX_BUNDLES, keeping any used within cache.IN_USE."""
    cache.evict(folder, CACHE_MAX_AGE, CACHE_MAX_BUNDLES, last_used=_index_time, now=now)


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def object_digest(obj):
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def bundle_digest(entries):
    return hashlib.sha256("".join(e["digest"] for e in entries).encode("ascii")).hexdigest()


class Bundle:
    """A loaded bundle: ``objects`` and ``entries`` are parallel lists in apply order."""

    def __init__(self, path, index, objects):
        self.path = path
        self.index = index
        self.objects = objects

    @property
    def entries(self):
        return self.index["objects"]

    @property
    def digest(self):
        return self.index["digest"]

    @property
    def revision(self):
        return self.index.get("revision")

    def pairs(self):
        return zip(self.entries, self.objects)

    @classmethod
    def load(cls, path):
        yaml = require_yaml("reading a bundle")
        try:
            with open(os.path.join(path, INDEX), encoding="utf-8") as handle:
                index = json.load(handle)
            read = OBJECTS
            try:
                with open(os.path.join(path, OBJECTS), encoding="utf-8") as handle:
                    objects = json.load(handle)
            except FileNotFoundError:  # written by a release before objects.json
                read = MANIFEST
                with open(os.path.join(path, MANIFEST), encoding="utf-8") as handle:
                    objects = [doc for doc in yaml.load_all(handle, Loader=yaml.SafeLoader) if doc]
            if any(SEALED in doc for doc in objects):
                key = controller_key(False)
                objects = [unseal(doc, key, path) for doc in objects]
        except (OSError, ValueError, yaml.YAMLError) as err:
            raise GitOpsError("%s is not a readable bundle (run gitops.k8s.render first): %s" % (path, err), bundle=path)
        if len(objects) != len(index.get("objects", [])):
            raise GitOpsError("bundle %s is inconsistent: %d objects in %s, %d in %s"
                              % (path, len(objects), read, len(index.get("objects", [])), INDEX), bundle=path)
        touch(path)
        return cls(path, index, objects)


def bundle_index(objects, entries, revision=None, renderer=None):
    """The index of a bundle of ``objects`` (already ordered); ``entries`` get their ``digest`` filled in."""
    kinds = {}
    for obj, entry in zip(objects, entries):
        entry["digest"] = object_digest(obj)
        kinds[entry["kind"]] = kinds.get(entry["kind"], 0) + 1
    return {
        "digest": bundle_digest(entries),
        "revision": revision,
        "renderer": renderer or {},
        "count": len(entries),
        "kinds": kinds,
        "objects": entries,
    }


def write_bundle(dest, objects, entries, revision=None, renderer=None, index=None, seal_all=False):
    """Write ``objects`` (already ordered) with their ``entries`` to ``dest``; return the index
    (``index``: the one ``bundle_index`` made of them already). Secrets are sealed; with
    ``seal_all``, every object.

    Files are written to a temporary name and renamed so a reader never sees half a bundle.
    """
    yaml = require_yaml("writing a bundle")
    index = index or bundle_index(objects, entries, revision, renderer)
    os.makedirs(dest, exist_ok=True)
    if any(seal_all or _is_secret(obj) for obj in objects):
        key = controller_key(True)
        objects = [seal(obj, key) if seal_all or _is_secret(obj) else obj for obj in objects]
    manifest = yaml.dump_all(objects, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), default_flow_style=False,
                             sort_keys=False, explicit_start=True)
    for name, text in ((MANIFEST, manifest), (OBJECTS, json.dumps(objects, separators=(",", ":"))),
                       (INDEX, json.dumps(index, indent=1, sort_keys=True))):
        fd, tmp = tempfile.mkstemp(dir=dest, prefix="." + name)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, os.path.join(dest, name))
    return index
