# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Which recorded objects prune may delete: the guards apply checks before each deletion.

Deleting a Namespace deletes everything in it, deleting a CustomResourceDefinition every custom
resource of its kind, whoever they belong to. So, beyond "recorded by this app and no longer in
its bundle":

- the object must still be the one the app applied: its uid is the recorded one (an object
  deleted and recreated by someone else under the same name is not ours); the deletion itself
  carries the uid as a precondition, so a recreation between the check and the delete is safe;
- a Namespace or a CRD is pruned only when it opts in with the annotation
  ``gitops.k8s/prune: allow`` (on the live object, so it must have been applied with it);
- never when other apps' records hold objects inside it (their namespace, or their kind);
- never the inventory namespace (every record and lease).
"""

from __future__ import annotations

from .compare import PRUNE_ANNOTATION
from ..refs import describe, group_of

OPT_IN = "allow"
NAMESPACE = ("", "Namespace")
CRD = ("apiextensions.k8s.io", "CustomResourceDefinition")


def guarded(ref):
    """True for the kinds whose deletion takes other objects with it."""
    return (group_of(ref["apiVersion"]), ref["kind"]) in (NAMESPACE, CRD)


def opted_in(live):
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(PRUNE_ANNOTATION, "")).strip().lower() == OPT_IN


def recreated(recorded, live):
    """True when ``live`` is not the object the app applied (another uid)."""
    uid = (recorded or {}).get("uid")
    return bool(uid) and uid != (live.get("metadata") or {}).get("uid")


def _inside(ref, live, obj):
    """True when the recorded object ``obj`` dies with the Namespace or CRD ``ref``/``live``."""
    if ref["kind"] == "Namespace":
        return obj.get("namespace") == ref["name"]
    spec = live.get("spec") or {}
    return group_of(obj.get("apiVersion") or "") == spec.get("group") and \
        obj.get("kind") == (spec.get("names") or {}).get("kind")


def refusal(ref, live, other_records, inventory_namespace):
    """Why the Namespace or CRD ``ref`` (live object ``live``) may not be pruned, or None."""
    if ref["kind"] == "Namespace" and ref["name"] == inventory_namespace:
        return "it is the inventory namespace (the records and leases of every app); never pruned"
    if not opted_in(live):
        return "a %s is pruned only when it opts in with the annotation %s: %s" % (ref["kind"], PRUNE_ANNOTATION, OPT_IN)
    for record in other_records:
        for obj in record.get("objects") or ():
            if _inside(ref, live, obj):
                return "it holds %s of app %s" % (describe(obj), record.get("app"))
    return None
