# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The bundle: the hand-off between render and the cluster-facing steps.

On disk a bundle is a directory with
  manifest.yaml  every object, in apply order, as a multi-document YAML stream
  index.json     {"digest", "revision", "renderer": {"type", "version"}, "count", "kinds", "objects": [entry...]}
where an entry describes one object (same order as the manifest):
  {apiVersion, kind, namespace, name, wave, hook, hook_delete_policy, source, digest}
``hook`` is a list of phases (PreSync, Sync, PostSync, SyncFail) or null; ``digest`` is the
sha256 of the object's canonical JSON; the bundle digest is the sha256 of the entries' digests.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile

from .deps import require_yaml
from .errors import GitOpsError

MANIFEST = "manifest.yaml"
INDEX = "index.json"


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
        index_path, manifest_path = os.path.join(path, INDEX), os.path.join(path, MANIFEST)
        try:
            with open(index_path, encoding="utf-8") as handle:
                index = json.load(handle)
            with open(manifest_path, encoding="utf-8") as handle:
                objects = [doc for doc in yaml.load_all(handle, Loader=yaml.SafeLoader) if doc]
        except (OSError, ValueError, yaml.YAMLError) as err:
            raise GitOpsError("%s is not a readable bundle (run gitops.k8s.render first): %s" % (path, err), bundle=path)
        if len(objects) != len(index.get("objects", [])):
            raise GitOpsError("bundle %s is inconsistent: %d objects in %s, %d in %s"
                              % (path, len(objects), MANIFEST, len(index.get("objects", [])), INDEX), bundle=path)
        return cls(path, index, objects)


def write_bundle(dest, objects, entries, revision=None, renderer=None):
    """Write ``objects`` (already ordered) with their ``entries`` to ``dest``; return the index.

    Entries get their ``digest`` filled in here. Files are written to a temporary name and
    renamed so a reader never sees half a bundle.
    """
    yaml = require_yaml("writing a bundle")
    kinds = {}
    for obj, entry in zip(objects, entries):
        entry["digest"] = object_digest(obj)
        kinds[entry["kind"]] = kinds.get(entry["kind"], 0) + 1
    index = {
        "digest": bundle_digest(entries),
        "revision": revision,
        "renderer": renderer or {},
        "count": len(entries),
        "kinds": kinds,
        "objects": entries,
    }
    os.makedirs(dest, exist_ok=True)
    manifest = yaml.dump_all(objects, Dumper=yaml.SafeDumper, default_flow_style=False, sort_keys=False, explicit_start=True)
    for name, text in ((MANIFEST, manifest), (INDEX, json.dumps(index, indent=1, sort_keys=True))):
        fd, tmp = tempfile.mkstemp(dir=dest, prefix="." + name)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, os.path.join(dest, name))
    return index
