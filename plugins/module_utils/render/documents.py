# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Rendered text -> Kubernetes objects: parse once with the C loader, flatten Lists, validate."""

from __future__ import annotations

import functools

from ..deps import require_yaml
from ..errors import GitOpsError


@functools.lru_cache(maxsize=None)
def loader():
    """SafeLoader that keeps dates as strings, as the API server does (and JSON can carry them), and
    refuses duplicate keys; on libyaml's parser when PyYAML has it (several times faster).

    Built on first use, so that this module imports without PyYAML.
    """
    yaml = require_yaml("parsing manifests")

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        yaml_implicit_resolvers = {
            first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }

        def construct_mapping(self, node, deep=False):
            # PyYAML keeps the last of two equal keys; the API server and Argo CD refuse them
            seen = set()
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # '<<' merges may override on purpose
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key; the constructor reports it
                    continue
                if duplicate:
                    raise DuplicateKey(key, key_node.start_mark)
            return super().construct_mapping(node, deep=deep)

    return Loader


class DuplicateKey(Exception):
    def __init__(self, key, mark):
        super().__init__(key)
        self.key, self.line = key, mark.line + 1


def load_documents(source, text):
    """All YAML/JSON documents of ``text`` (from file ``source``); a syntax error names file and line."""
    yaml, yaml_loader = require_yaml("parsing manifests"), loader()
    try:
        return list(yaml.load_all(text, Loader=yaml_loader))
    except DuplicateKey as err:
        raise GitOpsError("%s:%s: duplicate key %r in a mapping" % (source, err.line, err.key), file=source,
                          line=err.line, key=err.key)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        raise GitOpsError("%s:%s: invalid YAML: %s" % (source, line, err.problem or err), file=source, line=line)
    except yaml.YAMLError as err:
        raise GitOpsError("%s: invalid YAML: %s" % (source, err), file=source)


def flatten(doc):
    """Yield the objects of one document: empty documents vanish, arrays and ``*List`` kinds are expanded."""
    if doc is None:
        return
    if isinstance(doc, list):
        for item in doc:
            yield from flatten(item)
    elif isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            yield from flatten(item)
    else:
        yield doc


def parse(documents):
    """[(source, text)] -> [(source, object)] in document order."""
    objects = []
    for source, text in documents:
        for doc in load_documents(source, text):
            objects.extend((source, obj) for obj in flatten(doc))
    return objects


def validate(source, obj):
    """Refuse what the API server would refuse anyway, naming the file (and the object when known)."""
    if not isinstance(obj, dict):
        raise GitOpsError("%s: a document is a %s, not a Kubernetes object" % (source, type(obj).__name__), file=source)
    missing = [field for field in ("apiVersion", "kind") if not isinstance(obj.get(field), str) or not obj[field]]
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        missing.append("metadata")
    elif not meta.get("name") and not meta.get("generateName"):
        missing.append("metadata.name")
    if missing:
        what = ("%s %s" % (obj.get("kind") or "an object", meta.get("name") or "")).strip()
        raise GitOpsError("%s: %s has no %s" % (source, what, ", ".join(missing)), file=source, missing=missing)


def dump(obj):
    """One object as YAML (no line folding, so ``${VAR}`` stays on one line)."""
    yaml = require_yaml("writing YAML")
    return yaml.dump(obj, Dumper=yaml.SafeDumper, default_flow_style=False, sort_keys=False, width=2 ** 30)
