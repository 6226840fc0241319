# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Who owns an object's fields, and how an object may be written.

Takeover from client-side apply: an object made by ``kubectl apply`` (client-side) has its fields
owned by the ``kubectl-client-side-apply`` manager (or ``before-first-apply``, which the server
names the owner of an object's fields the first time server-side apply meets it). A server-side
apply that no longer sends a field removes it only when our manager owns it, so a field deleted
from Git would stay for ever. Before our first apply such a manager's field set is merged into
ours and the ``last-applied-configuration`` annotation dropped, in one JSON patch guarded by the
resourceVersion (what ``kubectl``'s csaupgrade, Flux and Argo CD do).

Per-object sync options, read from the first of these annotations present:
``gitops.k8s/sync-options``, ``argocd.argoproj.io/sync-options``,
``harnesscd.harnessproj.io/sync-options`` (comma-separated ``Name=value``):

- ``Replace=true``: write with a replace (PUT, or a create when absent) instead of a server-side
  apply: the object becomes exactly what Git says, fields other managers added included;
- ``Force=true``: when the server refuses a change of an immutable field, delete the object and
  create it again (the app-level ``replace_on_immutable`` does it for every object);
- ``Prune=false``: never pruned (see diff.prune_disabled).
"""

from __future__ import annotations

import copy
import time

from ..refs import group_of

SYNC_OPTION_ANNOTATIONS = ("gitops.k8s/sync-options", "argocd.argoproj.io/sync-options",
                           "harnesscd.harnessproj.io/sync-options")
CLIENT_SIDE_MANAGERS = ("kubectl-client-side-apply", "before-first-apply")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Recreating these deletes what they hold (volumes' data, a namespace's objects, a CRD's resources):
# the app-level replace_on_immutable never does; only the object's own Force=true can.
HOLDERS = {("", "PersistentVolumeClaim"), ("", "PersistentVolume"), ("", "Namespace"),
           ("apiextensions.k8s.io", "CustomResourceDefinition")}
# How the API server words a refused change of a field that cannot change in place.
IMMUTABLE_WORDS = ("field is immutable", "may not change once set", "updates to statefulset spec for fields other",
                   "is immutable", "cannot be changed", "spec: Forbidden")


def sync_options(obj):
    """{Name: value} of the object's sync options (see the module docstring)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    for key in SYNC_OPTION_ANNOTATIONS:
        if key in annotations:
            pairs = (item.strip().partition("=") for item in str(annotations[key]).split(","))
            return {name.strip(): value.strip() for name, _eq, value in pairs if name.strip()}
    return {}


def option_on(obj, name):
    return sync_options(obj).get(name, "").lower() == "true"


def may_recreate(obj, replace_on_immutable):
    """Whether an immutable-field refusal of ``obj`` turns into delete-and-recreate."""
    return option_on(obj, "Force") or (replace_on_immutable and (group_of(obj["apiVersion"]), obj["kind"]) not in HOLDERS)


# -- immutable fields --------------------------------------------------------------------------

def immutable_fields(err):
    """The fields an ApiError says cannot change in place ([] when it is another refusal)."""
    if getattr(err, "status", None) != 422:
        return []
    causes = getattr(err, "causes", None) or ()
    fields = [c.get("field") or "?" for c in causes
              if any(word in (c.get("message") or "") for word in IMMUTABLE_WORDS)]
    if not fields and any(word in (err.server_message or "") for word in IMMUTABLE_WORDS):
        fields = ["?"]
    return list(dict.fromkeys(fields))


def immutable_message(fields):
    return ("%s cannot be changed in place; to delete and recreate the object, annotate it "
            "gitops.k8s/sync-options: Force=true (Argo CD: argocd.argoproj.io/sync-options: Replace=true,Force=true) "
            "or set replace_on_immutable: true on the application" % ", ".join(fields))


# -- takeover ----------------------------------------------------------------------------------

def takeover_managers(live):
    """The client-side managers whose fields our manager must take over, in ``live``'s order."""
    return [entry["manager"] for entry in (live or {}).get("metadata", {}).get("managedFields") or ()
            if entry.get("manager") in CLIENT_SIDE_MANAGERS and entry.get("operation") == "Update"
            and not entry.get("subresource")]


def _merge(into, fields):
    for key, sub in (fields or {}).items():
        _merge(into.setdefault(key, {}), sub)
    return into


def migration_patch(live, field_manager):
    """JSON patch moving the client-side managers' fields to ``field_manager`` (operation Apply)."""
    meta = live["metadata"]
    kept, merged, api_version = [], {}, live.get("apiVersion")
    for entry in meta.get("managedFields") or ():
        takeover = entry.get("manager") in CLIENT_SIDE_MANAGERS and entry.get("operation") == "Update" \
            and not entry.get("subresource")
        ours = entry.get("manager") == field_manager and entry.get("operation") == "Apply" and not entry.get("subresource")
        if takeover or ours:
            _merge(merged, copy.deepcopy(entry.get("fieldsV1")))
            api_version = entry.get("apiVersion") if ours else api_version
        else:
            kept.append(entry)
    metadata = merged.get("f:metadata") or {}
    annotations = metadata.get("f:annotations") or {}
    if annotations.pop("f:" + LAST_APPLIED, None) is not None and not annotations:
        metadata.pop("f:annotations")  # an empty set would read "owns every annotation"
        if not metadata:
            merged.pop("f:metadata")
    kept.append({"manager": field_manager, "operation": "Apply", "apiVersion": api_version,
                 "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "fieldsType": "FieldsV1",
                 "fieldsV1": merged})
    patch = [{"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
             {"op": "replace", "path": "/metadata/managedFields", "value": kept}]
    if LAST_APPLIED in (meta.get("annotations") or {}):
        patch.append({"op": "remove", "path": "/metadata/annotations/" + LAST_APPLIED.replace("~", "~0").replace("/", "~1")})
    return patch
