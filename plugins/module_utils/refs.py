"""Object references: the one vocabulary every module uses.

A reference is ``{apiVersion, kind, namespace, name}`` and reads ``Kind namespace/name`` in
messages (``Kind name`` for cluster-scoped objects).
"""


def group_of(api_version):
    """``apps/v1`` -> ``apps``; ``v1`` -> ``""`` (the core group)."""
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def ref_of(obj):
    meta = obj.get("metadata") or {}
    return {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "namespace": meta.get("namespace") or "",
        "name": meta.get("name") or meta.get("generateName") or "",
    }


def key_of(ref):
    """Identity of an object across versions of its API: (group, kind, namespace, name)."""
    return (group_of(ref.get("apiVersion", "")), ref.get("kind", ""), ref.get("namespace") or "", ref.get("name", ""))


def describe(ref):
    if ref.get("namespace"):
        return "%s %s/%s" % (ref.get("kind"), ref["namespace"], ref.get("name"))
    return "%s %s" % (ref.get("kind"), ref.get("name"))
