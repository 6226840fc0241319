# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Compare a bundle with the cluster: what would be created, updated, deleted, left alone.

``make_plan`` runs these phases (shared by gitops.k8s.diff, gitops.k8s.apply and the per-cluster
engine, which serves every app of a cluster from one snapshot of LISTs through ``live``):

1. resolve kinds   discovery for every kind of the bundle and of the app's record; its scope
                   decides the namespace (cluster-scoped objects never carry one, whatever the
                   bundle says); a recorded kind the cluster no longer serves at any version is
                   ``unserved``: reported and kept on record, never taken for gone.
2. list live       one LIST per kind and namespace (cluster-wide for cluster-scoped kinds).
3. fast path       an object is unchanged without any further request when its desired digest is
                   the one recorded at the last apply and the live object still carries what we
                   applied: same resourceVersion, or the same field set owned by our field manager
                   (``managed`` fingerprint). Controllers bump the resourceVersion of what they
                   manage without touching our fields; any change to a field we own moves it out
                   of our field set, so it cannot hide drift. Here each object also gets what apply
                   will send (``ignore_differences`` fields left out, see ignore.py), how it is
                   written (sync options, see ownership.py) and the client-side managers whose
                   fields it takes over.
4. dry-run         every other object gets a server-side dry-run of its write (apply, replace or
                   create); the result is compared with the live object after normalisation
                   (server-owned metadata and status dropped, ignored fields removed from both
                   sides). An immutable-field refusal names the field and the option that fixes
                   it, or with Force=true / replace_on_immutable turns the write into a recreate.
5. deletes         recorded objects no longer in the bundle are ``delete`` (what prune would do),
                   unless annotated ``gitops.k8s/prune: disabled`` or Argo CD's ``Prune=false``.

Everything that leaves this module for a person goes through masking (Secret values).
"""

from __future__ import annotations

import copy
import difflib
import hashlib

from ..bundle import canonical_json
from ..cluster.client import ApiError, denial_text
from ..concurrency import each
from ..deps import require_yaml
from ..errors import GitOpsError
from .ignore import check_ignore_rules, sendable, strip
from ..masking import mask_pair, redact
from .ownership import LAST_APPLIED, immutable_fields, immutable_message, may_recreate, option_on, takeover_managers
from ..refs import describe, group_of, key_of, ref_of

SERVER_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")
PRUNE_ANNOTATION = "gitops.k8s/prune"
ARGO_SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
# Objects headed for a namespace that does not exist yet (check mode, or create_namespaces off)
# cannot be dry-run there; they are validated by a dry-run create in this namespace instead.
STAND_IN_NAMESPACE = "default"
# How often a dry-run may find the object changed since it was read (and read it again) before the
# comparison goes by the last read.
STALE_READS = 3


# -- normalisation -----------------------------------------------------------------------------

def normalize(obj, rules=()):
    """A copy of ``obj`` without what the server owns and without the ignored fields."""
    if obj is None:
        return None
    out = strip(obj, rules)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for field in SERVER_METADATA:
        meta.pop(field, None)
    annotations = meta.get("annotations")
    if annotations is not None:
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            meta.pop("annotations")
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
    disabled) | rejected; ``merged`` is what the server would store (dry-run result) when one was
    made; ``body`` is what apply sends, ``method`` how (apply | replace | recreate); ``takeover``
    the client-side managers whose fields our manager takes over first.
    """

    __slots__ = ("entry", "obj", "ref", "key", "resource", "live", "action", "merged", "error", "unreachable",
                 "fast", "body", "method", "takeover")

    def __init__(self, entry, obj, ref, resource=None):
        self.entry, self.obj, self.ref, self.key, self.resource = entry, obj, ref, key_of(ref), resource
        self.live = self.action = self.merged = self.error = None
        self.unreachable = self.fast = False
        self.body, self.method, self.takeover = obj, "apply", []

    @property
    def source(self):
        return (self.entry or {}).get("source")

    @property
    def digest(self):
        return (self.entry or {}).get("digest")

    @property
    def wave(self):
        return (self.entry or {}).get("wave", 0)


class WriteSettings:
    """How objects are written and compared: the knobs every phase shares."""

    def __init__(self, field_manager="gitops.k8s", ignore=(), force=True, replace_on_immutable=False, concurrency=8):
        self.field_manager, self.ignore, self.force = field_manager, check_ignore_rules(ignore), force
        self.replace_on_immutable, self.concurrency = replace_on_immutable, max(1, concurrency)


class Plan:
    """The comparison of a bundle with the cluster (see the module docstring)."""

    def __init__(self, items, deletes, kept, unserved, rejected, unvalidated, missing_namespaces, settings):
        self.items = items                  # bundle objects (no hooks), bundle order
        self.deletes = deletes              # inventory objects to prune, inventory order
        self.kept = kept                    # inventory objects whose prune is disabled
        self.unserved = unserved            # inventory refs whose kind the cluster does not serve
        self.rejected = rejected            # [{..ref, source, message}]
        self.unvalidated = unvalidated      # refs whose kind a CRD of the bundle will define
        self.missing_namespaces = missing_namespaces
        self.settings = settings

    @property
    def changes(self):
        return [i for i in self.items if i.action in ("create", "update")]

    def summary(self):
        count = {"create": 0, "update": 0, "unchanged": 0}
        for item in self.items:
            count[item.action] += 1
        count["delete"] = len(self.deletes)
        return count


class Kinds:
    """What phase 1 found: bundle items and prune candidates with their Resource, and the rest."""

    def __init__(self):
        self.items, self.candidates, self.unserved, self.rejected, self.unvalidated = [], [], [], [], []

    def lists(self):
        """(resource, namespace or None, names) triples: one read each covers every item and candidate."""
        wanted = {}
        for item in self.items + self.candidates:
            if item.resource:
                namespace = item.ref["namespace"] if item.resource.namespaced else None
                key = (item.resource.group, item.resource.version, item.resource.plural, namespace)
                wanted.setdefault(key, (item.resource, namespace, set()))[2].add(item.ref["name"])
        return [(resource, namespace, sorted(names)) for resource, namespace, names in wanted.values()]


def crd_kinds(objects):
    """{(group, kind): scope} of every custom resource the bundle's CRDs define."""
    return {
        ((obj.get("spec") or {}).get("group", ""), ((obj.get("spec") or {}).get("names") or {}).get("kind", "")):
            (obj.get("spec") or {}).get("scope", "Namespaced")
        for obj in objects
        if obj.get("kind") == "CustomResourceDefinition" and group_of(obj.get("apiVersion", "")) == "apiextensions.k8s.io"
    }


def rejection(ref, source, message, objects=(), unreachable=False):
    out = dict(ref)
    out.update({"source": source, "message": redact(message, objects)})
    if unreachable:
        out["unreachable"] = True
    return out


def _scoped(obj, ref, namespaced):
    """``obj`` and ``ref`` without a namespace when the kind is cluster-scoped (bundles may say otherwise)."""
    if namespaced or not ref["namespace"]:
        return obj, ref
    if obj is not None:
        obj = copy.deepcopy(obj)
        obj["metadata"].pop("namespace", None)
    return obj, dict(ref, namespace="")


def make_plan(cluster, bundle, record=None, field_manager="gitops.k8s", ignore=(), concurrency=8,
              validate_creates=False, force=True, live=None, replace_on_immutable=False, live_index=None):
    """Compare ``bundle`` (hooks excluded) and the inventory ``record`` with the cluster.

    With ``validate_creates`` objects that do not exist yet get a dry-run too (apply validates the
    whole bundle before its first write; diff shows them as they are written). ``force`` is the
    force of the dry-run apply: without it, field conflicts are rejections. ``live`` serves the
    reads, ``(resource, namespace or None, names or None) -> [objects]`` (at least those named);
    by default ``Cluster.read``.
    ``live_index`` instead is ``{key_of(ref): object}`` of every live object of the kinds the bundle
    and the record name (the per-cluster engine's one read, shared by all its apps).
    """
    settings = WriteSettings(field_manager, ignore, force, replace_on_immutable, concurrency)
    live = live or cluster.read
    recorded = {key_of(o): o for o in (record or {}).get("objects", ())}
    kinds = resolve_kinds(cluster, bundle, recorded)
    live_objects = live_index if live_index is not None else list_live(kinds.lists(), live, settings.concurrency)
    to_dry_run = fast_path(kinds.items, recorded, live_objects, settings, validate_creates)
    missing = missing_namespaces(cluster, to_dry_run, live) if validate_creates else set()
    rejected = kinds.rejected + dry_run(cluster, to_dry_run, settings, missing)
    deletes, kept = prune_candidates(kinds.candidates, live_objects)
    position = {key_of(ref_of(obj)): n for n, obj in enumerate(bundle.objects)}
    rejected.sort(key=lambda r: position.get(key_of(r), 0))
    return Plan(kinds.items, deletes, kept, kinds.unserved, rejected, kinds.unvalidated, sorted(missing), settings)


def resolve_kinds(cluster, bundle, recorded):
    """Phase 1: the Resource of every bundle object (hooks excluded) and every recorded one."""
    kinds = Kinds()
    _resolve_bundle(cluster, bundle, kinds)
    _resolve_recorded(cluster, recorded, kinds)
    return kinds


def _resolve_bundle(cluster, bundle, kinds):
    defined = crd_kinds(bundle.objects)
    for entry, obj in bundle.pairs():
        if entry.get("hook"):
            continue
        ref = ref_of(obj)
        group_kind = (group_of(ref["apiVersion"]), ref["kind"])
        try:
            resource = cluster.resource(ref["apiVersion"], ref["kind"])
        except GitOpsError as err:
            if group_kind not in defined:
                kinds.rejected.append(rejection(ref, entry.get("source"), str(err)))
                continue
            obj, ref = _scoped(obj, ref, defined[group_kind] != "Cluster")  # the bundle's CRD tells
            item = Item(entry, obj, ref)
            item.action = "create"  # validated once its CRD is established (apply) or never (diff)
            kinds.unvalidated.append(ref)
            kinds.items.append(item)
            continue
        if resource.namespaced and not ref["namespace"]:
            kinds.rejected.append(rejection(ref, entry.get("source"),
                                            "%s is namespaced but the object has no namespace" % ref["kind"]))
            continue
        obj, ref = _scoped(obj, ref, resource.namespaced)
        kinds.items.append(Item(entry, obj, ref, resource))


def _resolve_recorded(cluster, recorded, kinds):
    bundle_keys = {item.key for item in kinds.items}
    for ref in recorded.values():
        ref = {k: ref.get(k) or "" for k in ("apiVersion", "kind", "namespace", "name")}
        try:
            resource = cluster.resource(ref["apiVersion"], ref["kind"])
        except GitOpsError:
            # another version of the kind may still serve it; with none, it is unknown, not gone
            resource = cluster.served_resource(group_of(ref["apiVersion"]), ref["kind"])
        if resource is None:
            if key_of(ref) not in bundle_keys:
                kinds.unserved.append(ref)
            continue
        _obj, ref = _scoped(None, ref, resource.namespaced)
        if key_of(ref) not in bundle_keys:
            kinds.candidates.append(Item(None, None, ref, resource))


def list_live(lists, live, concurrency):
    """Phase 2: {key: live object} from one ``live(resource, namespace, names)`` call per triple."""
    found = {}
    for objects in each(concurrency, lambda triple: live(*triple), lists):
        for obj in objects:
            found[key_of(ref_of(obj))] = obj
    return found


def fast_path(items, recorded, live_objects, settings, validate_creates):
    """Phase 3: decide what is provably unchanged; prepare the writes of the rest; return what
    needs a dry-run."""
    to_dry_run = []
    for item in items:
        if item.action:  # already decided (kind from a CRD of this bundle)
            continue
        item.live = live_objects.get(item.key)
        prepare_write(item, settings)
        if item.live is None:
            item.action = "create"
            if validate_creates:
                to_dry_run.append(item)
        elif not item.takeover and in_sync_with_record(recorded.get(item.key), item.digest, item.live,
                                                       settings.field_manager):
            item.action, item.fast = "unchanged", True
        else:
            to_dry_run.append(item)
    return to_dry_run


def prepare_write(item, settings):
    """What apply sends for ``item`` and how (see ignore.py and ownership.py)."""
    item.method = "replace" if option_on(item.obj, "Replace") else "apply"
    item.body = sendable(item.obj, settings.ignore, item.live, settings.field_manager)
    item.takeover = takeover_managers(item.live) if item.method == "apply" else []


def missing_namespaces(cluster, items, live):
    """Namespaces that objects about to be created live in and that do not exist."""
    wanted = sorted({i.ref["namespace"] for i in items if i.live is None and i.ref["namespace"]})
    if not wanted:
        return set()
    existing = {ns["metadata"]["name"] for ns in live(cluster.resource("v1", "Namespace"), None, wanted)}
    return set(wanted) - existing


def dry_run(cluster, items, settings, missing=()):
    """Phase 4: dry-run every item's write, decide its action; returns the rejections."""
    each(settings.concurrency, lambda item: _dry_run_one(cluster, item, settings, missing), items)
    rejected = []
    for item in items:
        if item.error:
            rejected.append(rejection(item.ref, item.source, item.error, (item.obj,), item.unreachable))
            item.action = "rejected"
        elif item.live is None:
            item.action = "create"
        elif item.method == "recreate" or item.takeover:
            item.action = "update"
        else:
            same = normalize(item.live, settings.ignore) == normalize(item.merged, settings.ignore)
            item.action = "unchanged" if same else "update"
    return rejected


def write(cluster, item, settings, dry_run=False):
    """Write ``item`` the way its method says; returns what the server stored (or would)."""
    if item.method == "replace" and item.live is not None:
        return cluster.replace(item.body, settings.field_manager, dry_run=dry_run)
    if item.method == "replace" or item.method == "recreate":
        return cluster.create(item.body, settings.field_manager, dry_run=dry_run)
    return cluster.apply(item.body, settings.field_manager, force=settings.force, dry_run=dry_run)


def _dry_run_one(cluster, item, settings, missing):
    try:
        if item.ref["namespace"] in missing:
            item.merged = validate_elsewhere(cluster, item.obj, settings.field_manager)
            return
        item.merged = write(cluster, item, settings, dry_run=True)
        for _attempt in range(STALE_READS):
            if item.live is None or _version(item.merged) == _version(item.live):
                break
            # another writer changed the object since it was read (a controller's annotation, or
            # long since, for the per-cluster engine's one read): the dry-run merged into the newer
            # object, which is what our write must be compared with, else their change looks ours
            item.live = cluster.get(item.ref)
            prepare_write(item, settings)
            item.merged = write(cluster, item, settings, dry_run=True)
    except ApiError as err:
        fields = immutable_fields(err)
        if fields and item.live is not None and may_recreate(item.obj, settings.replace_on_immutable):
            _validate_recreate(cluster, item, settings)
        else:
            # a refusal of authorization says who may not do what, where (the app's identity: tenancy.py)
            item.error = denial_text(err.denied) if err.denied else (err.server_message or str(err))
            if fields:
                item.error += " (%s)" % immutable_message(fields)
    except GitOpsError as err:
        item.error, item.unreachable = str(err), True


def _version(obj):
    """An object's resourceVersion: a dry-run returns the one of the object it merged into."""
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


def _validate_recreate(cluster, item, settings):
    """Dry-run the create that follows the delete, under a generated name (the name is taken)."""
    item.method, item.takeover = "recreate", []
    probe = copy.deepcopy(item.body)
    probe["metadata"]["generateName"] = probe["metadata"].pop("name")[:50] + "-"
    try:
        cluster.create(probe, settings.field_manager, dry_run=True)
        item.merged = item.obj
    except ApiError as err:
        item.error = err.server_message or str(err)
    except GitOpsError as err:
        item.error, item.unreachable = str(err), True


def prune_candidates(candidates, live_objects):
    """Phase 5: recorded objects no longer in the bundle that still exist -> (deletes, kept)."""
    deletes, kept = [], []
    for item in candidates:
        item.live = live_objects.get(item.key)
        if item.live is None:
            continue
        if prune_disabled(item.live):
            item.action = "keep"
            kept.append(item)
        else:
            item.action = "delete"
            deletes.append(item)
    return deletes, kept


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


def rejected_error(rejected, bundle_path, written=None):
    """One error listing every object the server refused or that could not be sent, with its
    message and source file. ``written`` says what was written before (default: nothing)."""
    refused = [r for r in rejected if not r.get("unreachable")]
    unreached = [r for r in rejected if r.get("unreachable")]
    parts = []
    if refused:
        parts.append("the server rejected %d object(s)" % len(refused))
    if unreached:
        parts.append("could not reach the API server to validate %d object(s)" % len(unreached))
    lines = ["%s (%s): %s" % (describe(r), r.get("source") or "?", r["message"]) for r in refused + unreached]
    return GitOpsError(
        "%s of bundle %s; %s:\n  %s" % (" and ".join(parts), bundle_path, written or "nothing was changed",
                                        "\n  ".join(lines)),
        rejected=rejected, bundle=bundle_path,
    )


# -- what a person sees ------------------------------------------------------------------------

def diff_report(plan, ignore=None, show_secrets=False, deletes=None):
    """(resources, ansible_diff) for every object that would change (``deletes``: default all
    prune candidates of the plan; ``ignore``: default the rules the plan was made with).

    A created object is shown as written in the bundle, an updated one as the server would store it.

    ``resources`` is [{apiVersion, kind, namespace, name, action, diff, method?}] and
    ``ansible_diff`` the before/after list that ``ansible-playbook --diff`` prints. Secret values
    are masked unless ``show_secrets``.
    """
    ignore = plan.settings.ignore if ignore is None else check_ignore_rules(ignore)
    resources, ansible_diff = [], []
    rows = [(i, normalize(i.live, ignore), normalize(i.obj if i.action == "create" else i.merged, ignore))
            for i in plan.changes]
    rows += [(i, normalize(i.live, ignore), None) for i in (plan.deletes if deletes is None else deletes)]
    for item, before, after in rows:
        if not show_secrets:
            before, after = mask_pair(before, after)
        row = dict(item.ref)
        text = unified(before, after, item.ref)
        if item.takeover:
            text += ("# %s: fields owned by %s move to field manager %s; fields no longer in Git are removed\n"
                     % (describe(item.ref), ", ".join(item.takeover), plan.settings.field_manager))
        row.update({"action": item.action, "diff": text})
        if item.action == "update" and item.method != "apply":
            row["method"] = item.method
        if item.source:
            row["source"] = item.source
        resources.append(row)
        label = describe(item.ref)
        ansible_diff.append({
            "before_header": "%s (live)" % label, "after_header": "%s (%s)" % (label, item.action),
            "before": to_yaml(before), "after": to_yaml(after),
        })
    return resources, ansible_diff


def diff(cluster, bundle, record=None, field_manager="gitops.k8s", ignore=(), show_secrets=False, concurrency=8,
         prune=True, replace_on_immutable=False, live=None):
    """The gitops.k8s.diff engine: returns the module result, Ansible's diff in ``ansible_diff`` (as apply).

    Without ``prune`` the recorded objects no longer in the bundle are ``orphaned``: listed, not a
    difference (the app does not delete them).
    """
    before = cluster.requests_made
    plan = make_plan(cluster, bundle, record, field_manager=field_manager, ignore=ignore, concurrency=concurrency,
                     live=live, replace_on_immutable=replace_on_immutable)
    if plan.rejected:
        raise rejected_error(plan.rejected, bundle.path)
    resources, ansible_diff = diff_report(plan, show_secrets=show_secrets, deletes=None if prune else [])
    summary = plan.summary()
    if not prune:
        summary["delete"] = 0
    return {
        "changed": bool(resources),
        "summary": summary,
        "resources": resources,
        "unvalidated": plan.unvalidated,
        "kept": [i.ref for i in plan.kept],
        "orphaned": [] if prune else [i.ref for i in plan.deletes],
        "unserved": plan.unserved,
        "fast_path": sum(1 for i in plan.items if i.fast),
        "api_requests": cluster.requests_made - before,
        "ansible_diff": ansible_diff,
    }
