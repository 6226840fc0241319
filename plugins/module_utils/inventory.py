# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The in-cluster record of every application: what was applied, when, with what result.

One ConfigMap (or Secret, for clusters where ConfigMaps are too widely readable) per app, named
``gitops-app-<app>`` in the inventory namespace (default ``gitops-system``), labelled
``gitops.k8s/app: <app>``. It holds one JSON document, the record:

  app, revision, digest (bundle), time (epoch seconds), result (Succeeded | Failed | Running),
  message, trigger, field_manager,
  objects:  [{apiVersion, kind, namespace, name, digest, resourceVersion, managed}]
            digest = what we applied, resourceVersion / managed = the live object right after
            (``managed`` fingerprints our field manager's field set, see diff.py)
  history:  newest first, at most ``history_limit`` of
            {revision, digest, time, result, trigger, rollback, rollback_of?, message?, duration?,
             health?, health_time?}
            health / health_time = the verdict of the health wait that followed that sync (written
            by health_wait); rollbacks go to the newest entry recorded Healthy.

The record is gzip-compressed into ``binaryData`` when its JSON would not comfortably fit the
1 MiB object limit (several thousand objects).

Writes use the record's resourceVersion (optimistic concurrency): two writers never silently
overwrite each other. apply orders its writes so a crash never loses track of an object it created:
the union of old and new objects is recorded before the first write, the final set after prune.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import time

from .cluster import ApiError
from .errors import GitOpsError
from .health.status import Health
from .refs import key_of

INVENTORY_NAMESPACE = "gitops-system"
INVENTORY_KINDS = ("ConfigMap", "Secret")
APP_LABEL = "gitops.k8s/app"
MANAGED_BY = {"app.kubernetes.io/managed-by": "gitops.k8s"}
RECORD_KEY = "record.json"
COMPRESSED_KEY = "record.json.gz"
COMPRESS_ABOVE = 256 * 1024
REF_FIELDS = ("apiVersion", "kind", "namespace", "name")
APP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,240}[a-z0-9])?$")


def object_name(app):
    if not APP_NAME.match(app or ""):
        raise GitOpsError("app %r is not a valid application name (lowercase letters, digits, '-' and '.')" % (app,),
                          app=app)
    return "gitops-app-" + app


# -- pure record logic -------------------------------------------------------------------------

def new_record(app):
    return {"app": app, "revision": None, "digest": None, "time": None, "result": None, "message": None,
            "trigger": None, "objects": [], "history": []}


def object_entry(ref, digest=None, resource_version=None, managed=None):
    entry = {k: ref.get(k) or "" for k in REF_FIELDS}
    entry.update({"digest": digest, "resourceVersion": resource_version, "managed": managed})
    return entry


def union_objects(previous, upcoming):
    """Every object of ``previous`` (kept as recorded) plus those of ``upcoming`` not in it.

    Written before apply's first change: if the run dies, the next one still knows every object
    it may have created.
    """
    seen = {key_of(o) for o in previous}
    merged = [dict(o) for o in previous]
    for obj in upcoming:
        if key_of(obj) not in seen:
            seen.add(key_of(obj))
            merged.append(object_entry(obj))
    return merged


def push_history(record, entry, limit):
    """Put ``entry`` first in the record's history, keeping at most ``limit`` entries."""
    record["history"] = ([entry] + list(record.get("history") or ()))[:max(1, limit)]
    return record


def history_entry(revision, digest, result, trigger, rollback_of=None, message=None, duration=None, when=None):
    entry = {"revision": revision, "digest": digest, "time": when if when is not None else time.time(),
             "result": result, "trigger": trigger, "rollback": bool(rollback_of)}
    if rollback_of:
        entry["rollback_of"] = rollback_of
    if message:
        entry["message"] = message
    if duration is not None:
        entry["duration"] = round(duration, 3)
    return entry


def current_entry(record):
    """The newest history entry when it is what the cluster runs -- a successful sync of the
    record's revision and digest -- else None (the last sync failed, or there is no history)."""
    history = (record or {}).get("history") or ()
    if not history:
        return None
    newest = history[0]
    if newest.get("result") != "Succeeded" or \
            (newest.get("revision"), newest.get("digest")) != (record.get("revision"), record.get("digest")):
        return None
    return newest


def mark_health(record, status, expected, when=None):
    """Put the health verdict ``status`` on the record's current entry; return that entry.

    ``expected`` is the current entry as read before waiting: when a newer sync replaced it
    meanwhile, the verdict is about objects that are gone, so nothing is marked (None).
    """
    entry = current_entry(record)
    if entry is None or expected is None or \
            any(entry.get(k) != expected.get(k) for k in ("revision", "digest", "time")):
        return None
    entry.update(health=status, health_time=when if when is not None else time.time())
    return entry


def rollback_target(history, failed_revision):
    """The newest history entry recorded healthy whose revision is not ``failed_revision``, or None.

    Healthy as health_wait means it: Healthy, or Suspended (an app with a suspended CronJob is
    as good as it gets). Only a verdict of health_wait counts: a revision that applied but never
    became healthy (or whose health was never waited for) is no place to roll back to.
    """
    for entry in history or ():
        if entry.get("health") in Health.SETTLED and entry.get("revision") and entry["revision"] != failed_revision:
            return entry
    return None


def encode_record(record, kind):
    """The ``data`` / ``binaryData`` of the inventory object holding ``record``."""
    text = json.dumps(record, separators=(",", ":"), sort_keys=True)
    if len(text) > COMPRESS_ABOVE:
        packed = base64.b64encode(gzip.compress(text.encode("utf-8"), mtime=0)).decode("ascii")
        return {"data": {COMPRESSED_KEY: packed}} if kind == "Secret" else {"binaryData": {COMPRESSED_KEY: packed}}
    if kind == "Secret":
        return {"data": {RECORD_KEY: base64.b64encode(text.encode("utf-8")).decode("ascii")}}
    return {"data": {RECORD_KEY: text}}


def decode_record(obj):
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    secret = obj.get("kind") == "Secret"
    try:
        if COMPRESSED_KEY in data or COMPRESSED_KEY in binary:
            return json.loads(gzip.decompress(base64.b64decode(data.get(COMPRESSED_KEY) or binary[COMPRESSED_KEY])))
        text = data.get(RECORD_KEY)
        if text is None:
            raise ValueError("no %s key" % RECORD_KEY)
        return json.loads(base64.b64decode(text) if secret else text)
    except (ValueError, OSError, KeyError) as err:
        meta = obj.get("metadata") or {}
        raise GitOpsError("inventory %s %s/%s is unreadable: %s"
                          % (obj.get("kind"), meta.get("namespace"), meta.get("name"), err))


# -- the store ---------------------------------------------------------------------------------

class Inventory:
    """Records of one inventory namespace, kept in ConfigMaps (or Secrets)."""

    def __init__(self, cluster, namespace=INVENTORY_NAMESPACE, kind="ConfigMap"):
        if kind not in INVENTORY_KINDS:
            raise GitOpsError("inventory kind must be one of %s, not %r" % (", ".join(INVENTORY_KINDS), kind))
        self.cluster, self.namespace, self.kind = cluster, namespace, kind

    def where(self, app=None):
        out = {"kind": self.kind, "namespace": self.namespace}
        if app:
            out["name"] = object_name(app)
        return out

    def _ref(self, app):
        return {"apiVersion": "v1", "kind": self.kind, "namespace": self.namespace, "name": object_name(app)}

    def read(self, app):
        """(record or None, resourceVersion or None)."""
        obj = self.cluster.get(self._ref(app))
        if obj is None:
            return None, None
        return decode_record(obj), obj["metadata"]["resourceVersion"]

    def read_all(self):
        """Every record of the namespace, sorted by app."""
        resource = self.cluster.resource("v1", self.kind)
        items, _version = self.cluster.list(resource, namespace=self.namespace, label_selector=APP_LABEL)
        records = [decode_record(obj) for obj in items]
        return sorted(records, key=lambda r: r.get("app") or "")

    def owners(self, keys, except_app):
        """{key: app} for the ``keys`` recorded in another app's inventory."""
        keys, found = set(keys), {}
        for record in self.read_all():
            if record.get("app") == except_app:
                continue
            for obj in record.get("objects") or ():
                if key_of(obj) in keys:
                    found.setdefault(key_of(obj), record["app"])
        return found

    def write(self, app, record, resource_version=None):
        """Create or replace the record; returns the new resourceVersion.

        ``resource_version`` is the one read: a concurrent writer makes this fail (409) instead
        of being overwritten.
        """
        ref = self._ref(app)
        resource = self.cluster.resource("v1", self.kind)
        body = {
            "apiVersion": "v1", "kind": self.kind,
            "metadata": {"name": ref["name"], "namespace": self.namespace,
                         "labels": dict(MANAGED_BY, **{APP_LABEL: app})},
        }
        body.update(encode_record(record, self.kind))
        if resource_version is None:
            out = self.cluster.request("POST", resource.path(self.namespace), body=body,
                                       what="inventory of app %s" % app)
        else:
            body["metadata"]["resourceVersion"] = resource_version
            out = self.cluster.request("PUT", resource.path(self.namespace, ref["name"]), body=body,
                                       what="inventory of app %s" % app)
        return out["metadata"]["resourceVersion"]

    def update(self, app, change, attempts=5):
        """Read-modify-write ``change(record) -> record`` with retries on concurrent writes.

        ``change`` returns None when there is nothing to write (then neither is anything written).
        """
        for attempt in range(attempts):
            record, version = self.read(app)
            changed = change(record or new_record(app))
            if changed is None:
                return None
            try:
                return self.write(app, changed, version)
            except ApiError as err:
                if err.status != 409 or attempt == attempts - 1:
                    raise

    def delete(self, app):
        """Remove the app's record; False when there was none."""
        return self.cluster.delete(self._ref(app))

    def ensure_namespace(self):
        ensure_namespace(self.cluster, self.namespace)


def ensure_namespace(cluster, name):
    """Create namespace ``name`` unless it exists."""
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(MANAGED_BY)}}
    try:
        cluster.request("POST", "/api/v1/namespaces", body=body, what="namespace %s" % name)
    except ApiError as err:
        # 409: it exists. 403: a least-privilege identity (docs/awx.md) may not create namespaces; an
        # admin created it, and if not, the first write into it fails naming the missing namespace.
        if err.status not in (403, 409):
            raise


# -- the functions other modules use -----------------------------------------------------------

def read_record(cluster, app, namespace=INVENTORY_NAMESPACE, kind="ConfigMap"):
    """The app's record (see the module docstring), or None when it was never applied."""
    return Inventory(cluster, namespace, kind).read(app)[0]


def record_health(cluster, app, status, expected, namespace=INVENTORY_NAMESPACE, kind="ConfigMap", when=None):
    """Write the health verdict ``status`` into the app's current history entry (see ``mark_health``).

    ``expected`` is ``current_entry`` of the record read before waiting. Returns the marked entry,
    or None when the entry is no longer current (nothing is written then).
    """
    marked = []

    def change(record):
        del marked[:]  # a retry after a concurrent write starts over
        entry = mark_health(record, status, expected, when)
        if entry is None:
            return None
        marked.append(dict(entry))
        return record

    Inventory(cluster, namespace, kind).update(app, change)
    return marked[-1] if marked else None
