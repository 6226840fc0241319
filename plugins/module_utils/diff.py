# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Compare a bundle with the cluster: what would be created, updated, deleted, left alone.

Method (shared by gitops.k8s.diff and gitops.k8s.apply):

1. One LIST per kind and namespace (cluster-wide for cluster-scoped kinds) covering every object
   of the bundle and every object of the app's inventory.
2. Fast path: an object is unchanged without any further request when its desired digest is the
   one recorded at the last apply and the live object still carries what we applied: same
   resourceVersion, or the same field set owned by our field manager (``managed`` fingerprint).
   The fingerprint matters because controllers bump the resourceVersion of what they manage
   (status, revision annotations) without touching our fields; any change to a field we own
   moves it out of our field set, so it cannot hide drift.
3. Every other live object gets a server-side dry-run apply (same field manager, force); the
   result is compared with the live object after normalisation (server-owned metadata and status
   dropped, ``ignore_differences`` JSON pointers removed from both sides).
4. Objects of the inventory that are no longer in the bundle are ``delete`` (what prune would do),
   unless annotated ``gitops.k8s/prune: disabled`` or Argo CD's ``Prune=false`` sync option.

Everything that leaves this module for a person goes through masking (Secret values).
"""

from __future__ import annotations

import copy
import difflib
import hashlib
from concurrent.futures import ThreadPoolExecutor

from .bundle import canonical_json
from .cluster import ApiError
from .deps import require_yaml
from .errors import GitOpsError
from .masking import mask_pair, redact
from .refs import describe, group_of, key_of, ref_of

SERVER_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
PRUNE_ANNOTATION = "gitops.k8s/prune"
ARGO_SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
# Objects headed for a namespace that does not exist yet cannot be dry-run there; they are
# validated by a dry-run create in this namespace instead (same schema, same admission).
STAND_IN_NAMESPACE = "default"

# The ``ignore_differences`` option of the diff and apply modules (documented in both).
IGNORE_ARGSPEC = {
    "ignore_differences": {"type": "list", "elements": "dict", "default": [], "options": {
        "group": {"type": "str", "default": ""},
        "kind": {"type": "str", "required": True},
        "name": {"type": "str"},
        "namespace": {"type": "str"},
        "json_pointers": {"type": "list", "elements": "str", "required": True},
    }},
}


# -- normalisation -----------------------------------------------------------------------------

def parse_pointer(pointer):
    """RFC 6901 JSON pointer -> list of reference tokens."""
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise GitOpsError("ignore_differences: %r is not a JSON pointer (it must start with '/')" % (pointer,),
                          json_pointer=pointer)
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def remove_pointer(doc, tokens):
    """Remove the value at ``tokens`` from ``doc`` in place; absent paths are ignored."""
    parent = doc
    for token in tokens[:-1]:
        parent = _child(parent, token)
        if parent is None:
            return
    last = tokens[-1]
    if isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]


def _child(node, token):
    if isinstance(node, dict):
        return node.get(token)
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    return None


def check_ignore_rules(rules):
    """Validate ``ignore_differences`` early so a typo fails before any request."""
    for rule in rules or ():
        if not rule.get("kind"):
            raise GitOpsError("ignore_differences: every rule needs a kind (got %r)" % (rule,))
        for pointer in rule.get("json_pointers") or ():
            parse_pointer(pointer)
    return list(rules or ())


def _rule_matches(rule, ref):
    return (
        rule.get("kind") == ref["kind"]
        and (rule.get("group") or "") == group_of(ref["apiVersion"])
        and rule.get("name") in (None, "", ref["name"])
        and rule.get("namespace") in (None, "", ref["namespace"])
    )


def normalize(obj, rules=()):
    """A copy of ``obj`` without what the server owns and without the ignored paths."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for field in SERVER_METADATA:
        meta.pop(field, None)
    annotations = meta.get("annotations")
    if annotations is not None:
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            meta.pop("annotations")
    ref = ref_of(obj)
    for rule in rules:
        if _rule_matches(rule, ref):
            for pointer in rule.get("json_pointers") or ():
                remove_pointer(out, parse_pointer(pointer))
    return out


def to_yaml(obj):
    if obj is None:
        return ""
    yaml = require_yaml("showing a diff")
    return yaml.dump(obj, Dumper=yaml.SafeDumper, default_flow_style=False, sort_keys=True)


def unified(before, after, ref):
    """Unified diff text between two normalised, masked objects (either may be None)."""
    label = describe(ref)
    lines = difflib.unified_diff(
        to_yaml(before).splitlines(keepends=True), to_yaml(after).splitlines(keepends=True),
        fromfile="live: " + label, tofile="desired: " + label,
    )
    return "".join(lines)


# -- fingerprints ------------------------------------------------------------------------------

def managed_fingerprint(obj, field_manager):
    """Digest of the field set ``field_manager`` owns through apply in ``obj`` (None if it owns none)."""
    entries = [
        {k: entry.get(k) for k in ("apiVersion", "fieldsV1", "subresource")}
        for entry in (obj.get("metadata") or {}).get("managedFields") or ()
        if entry.get("manager") == field_manager and entry.get("operation") == "Apply"
    ]
    if not entries:
        return None
    return hashlib.sha256(canonical_json(entries).encode("utf-8")).hexdigest()


def in_sync_with_record(recorded, desired_digest, live, field_manager):
    """The fast path: True when ``live`` provably still is what we applied from ``desired_digest``."""
    if not recorded or recorded.get("digest") != desired_digest:
        return False
    live_rv = (live.get("metadata") or {}).get("resourceVersion")
    if recorded.get("resourceVersion") and recorded["resourceVersion"] == live_rv:
        return True
    return bool(recorded.get("managed")) and recorded["managed"] == managed_fingerprint(live, field_manager)


def prune_disabled(obj):
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if str(annotations.get(PRUNE_ANNOTATION, "")).strip().lower() == "disabled":
        return True
    options = [o.strip() for o in str(annotations.get(ARGO_SYNC_OPTIONS, "")).split(",")]
    return "Prune=false" in options


# -- the plan ----------------------------------------------------------------------------------

class Item:
    """One object of the comparison.

    ``action`` is create | update | unchanged | delete | keep (an inventory object whose prune is
    disabled); ``merged`` is what the server would store (dry-run result) when one was made.
    """

    __slots__ = ("entry", "obj", "ref", "key", "live", "action", "merged", "error", "fast")

    def __init__(self, entry, obj, ref, live=None, action=None):
        self.entry, self.obj, self.ref, self.key = entry, obj, ref, key_of(ref)
        self.live, self.action, self.merged, self.error, self.fast = live, action, None, None, False

    @property
    def source(self):
        return (self.entry or {}).get("source")

    @property
    def digest(self):
        return (self.entry or {}).get("digest")


class Plan:
    """The comparison of a bundle with the cluster (see the module docstring)."""

    def __init__(self, items, deletes, kept, rejected, unvalidated, missing_namespaces):
        self.items = items                  # bundle objects (no hooks), bundle order
        self.deletes = deletes              # inventory objects to prune, inventory order
        self.kept = kept                    # inventory objects whose prune is disabled
        self.rejected = rejected            # [{..ref, source, message}]
        self.unvalidated = unvalidated      # refs whose kind a CRD of the bundle will define
        self.missing_namespaces = missing_namespaces

    @property
    def changes(self):
        return [i for i in self.items if i.action in ("create", "update")]

    def summary(self):
        count = {"create": 0, "update": 0, "unchanged": 0}
        for item in self.items:
            count[item.action] += 1
        count["delete"] = len(self.deletes)
        return count


def crd_kinds(objects):
    """(group, kind) of every custom resource the bundle's CRDs define."""
    return {
        ((obj.get("spec") or {}).get("group", ""), ((obj.get("spec") or {}).get("names") or {}).get("kind", ""))
        for obj in objects
        if obj.get("kind") == "CustomResourceDefinition" and group_of(obj.get("apiVersion", "")) == "apiextensions.k8s.io"
    }


def rejection(ref, source, message, objects=()):
    out = dict(ref)
    out.update({"source": source, "message": redact(message, objects)})
    return out


def _pool(concurrency, func, items):
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(items)))) as pool:
        return list(pool.map(func, items))


def make_plan(cluster, bundle, record=None, field_manager="gitops.k8s", ignore=(), concurrency=8,
              validate_creates=False, force=True):
    """Compare ``bundle`` (hooks excluded) and the inventory ``record`` with the cluster.

    With ``validate_creates`` objects that do not exist yet get a dry-run too (apply validates the
    whole bundle before its first write; diff shows them as they are written). ``force`` is the
    force of the dry-run apply: without it, field conflicts are rejections.
    """
    defined = crd_kinds(bundle.objects)
    recorded = {key_of(o): o for o in (record or {}).get("objects", ())}
    items, rejected, unvalidated = [], [], []
    lists = set()  # (resource, namespace or None): one LIST each

    def want(item, resource):
        lists.add((resource, item.ref["namespace"] if resource.namespaced else None))

    for entry, obj in bundle.pairs():
        if entry.get("hook"):
            continue
        ref = ref_of(obj)
        item = Item(entry, obj, ref)
        try:
            resource = cluster.resource(ref["apiVersion"], ref["kind"])
        except GitOpsError as err:
            if (group_of(ref["apiVersion"]), ref["kind"]) not in defined:
                rejected.append(rejection(ref, item.source, str(err)))
                continue
            item.action = "create"
            unvalidated.append(ref)
            resource = None
        if resource and resource.namespaced and not ref["namespace"]:
            rejected.append(rejection(ref, item.source, "%s is namespaced but the object has no namespace" % ref["kind"]))
            continue
        items.append(item)
        if resource:
            want(item, resource)

    bundle_keys = {item.key for item in items}
    candidates = []
    for key, ref in recorded.items():
        if key in bundle_keys:
            continue
        ref = {k: ref.get(k) or "" for k in ("apiVersion", "kind", "namespace", "name")}
        try:
            resource = cluster.resource(ref["apiVersion"], ref["kind"])
        except GitOpsError:
            continue  # its kind is gone from the cluster, and with it the object
        item = Item(None, None, ref)
        candidates.append(item)
        want(item, resource)

    live = {}
    for found in _pool(concurrency, lambda pair: cluster.list(pair[0], namespace=pair[1])[0], list(lists)):
        for obj in found:
            live[key_of(ref_of(obj))] = obj

    existing_namespaces = None
    if validate_creates:
        existing_namespaces = {ns["metadata"]["name"] for ns in
                               cluster.list(cluster.resource("v1", "Namespace"))[0]}
    missing_namespaces = set()

    to_dry_run = []
    for item in items:
        if item.action:  # already decided (kind from a CRD of this bundle)
            continue
        item.live = live.get(item.key)
        if item.live is None:
            item.action = "create"
            if validate_creates:
                to_dry_run.append(item)
        elif in_sync_with_record(recorded.get(item.key), item.digest, item.live, field_manager):
            item.action, item.fast = "unchanged", True
        else:
            to_dry_run.append(item)
        if existing_namespaces is not None and item.ref["namespace"] and item.ref["namespace"] not in existing_namespaces \
                and item.live is None:
            missing_namespaces.add(item.ref["namespace"])

    def dry_run(item):
        try:
            if item.ref["namespace"] in missing_namespaces:
                item.merged = validate_elsewhere(cluster, item.obj, field_manager)
            else:
                item.merged = cluster.apply(item.obj, field_manager, force=force, dry_run=True)
        except ApiError as err:
            item.error = err.server_message or str(err)
        except GitOpsError as err:
            item.error = str(err)

    _pool(concurrency, dry_run, to_dry_run)
    for item in to_dry_run:
        if item.error:
            rejected.append(rejection(item.ref, item.source, item.error, (item.obj,)))
            item.action = "rejected"
        elif item.live is not None:
            same = normalize(item.live, ignore) == normalize(item.merged, ignore)
            item.action = "unchanged" if same else "update"

    deletes, kept = [], []
    for item in candidates:
        item.live = live.get(item.key)
        if item.live is None:
            continue
        if prune_disabled(item.live):
            item.action = "keep"
            kept.append(item)
        else:
            item.action = "delete"
            deletes.append(item)
    position = {key_of(ref_of(obj)): n for n, obj in enumerate(bundle.objects)}
    rejected.sort(key=lambda r: position.get(key_of(r), 0))
    return Plan(items, deletes, kept, rejected, unvalidated, sorted(missing_namespaces))


def validate_elsewhere(cluster, obj, field_manager):
    """Dry-run create ``obj`` in the stand-in namespace (its own does not exist yet)."""
    stand_in = copy.deepcopy(obj)
    stand_in["metadata"]["namespace"] = STAND_IN_NAMESPACE
    try:
        cluster.create(stand_in, field_manager, dry_run=True)
    except ApiError as err:
        if err.status != 409:  # AlreadyExists in the stand-in namespace says nothing about ours
            raise
    return None


def rejected_error(rejected, bundle_path):
    """One error listing every object the server refused, with its message and source file."""
    lines = ["%s (%s): %s" % (describe(r), r.get("source") or "?", r["message"]) for r in rejected]
    return GitOpsError(
        "the server rejected %d object(s) of bundle %s; nothing was changed:\n  %s"
        % (len(rejected), bundle_path, "\n  ".join(lines)),
        rejected=rejected, bundle=bundle_path,
    )


# -- what a person sees ------------------------------------------------------------------------

def report(plan, ignore=(), show_secrets=False, deletes=None):
    """(resources, ansible_diff) for every object that would change (``deletes``: default all
    prune candidates of the plan).

    A created object is shown as written in the bundle, an updated one as the server would store it.

    ``resources`` is [{apiVersion, kind, namespace, name, action, diff}] and ``ansible_diff`` the
    before/after list that ``ansible-playbook --diff`` prints. Secret values are masked unless
    ``show_secrets``.
    """
    resources, ansible_diff = [], []
    rows = [(i, normalize(i.live, ignore), normalize(i.obj if i.action == "create" else i.merged, ignore))
            for i in plan.changes]
    rows += [(i, normalize(i.live, ignore), None) for i in (plan.deletes if deletes is None else deletes)]
    for item, before, after in rows:
        if not show_secrets:
            before, after = mask_pair(before, after)
        row = dict(item.ref)
        row.update({"action": item.action, "diff": unified(before, after, item.ref)})
        if item.source:
            row["source"] = item.source
        resources.append(row)
        label = describe(item.ref)
        ansible_diff.append({
            "before_header": "%s (live)" % label, "after_header": "%s (%s)" % (label, item.action),
            "before": to_yaml(before), "after": to_yaml(after),
        })
    return resources, ansible_diff


def diff(cluster, bundle, record=None, field_manager="gitops.k8s", ignore=(), show_secrets=False, concurrency=8):
    """The gitops.k8s.diff engine: returns the module result, Ansible's diff in ``ansible_diff`` (as apply)."""
    ignore = check_ignore_rules(ignore)
    before = cluster.requests_made
    plan = make_plan(cluster, bundle, record, field_manager=field_manager, ignore=ignore, concurrency=concurrency)
    if plan.rejected:
        raise rejected_error(plan.rejected, bundle.path)
    resources, ansible_diff = report(plan, ignore, show_secrets)
    summary = plan.summary()
    return {
        "changed": bool(resources),
        "summary": summary,
        "resources": resources,
        "unvalidated": plan.unvalidated,
        "kept": [i.ref for i in plan.kept],
        "fast_path": sum(1 for i in plan.items if i.fast),
        "api_requests": cluster.requests_made - before,
        "ansible_diff": ansible_diff,
    }
