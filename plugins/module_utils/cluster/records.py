# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The in-cluster record of every application: what was applied, when, with what result.

One ConfigMap (or Secret, for clusters where ConfigMaps are too widely readable) per app, named
``gitops-app-<app>`` in the inventory namespace (default ``gitops-system``), labelled
``gitops.k8s/app: <app>``. It holds one JSON document, the record:

  app, revision, digest (bundle), time (epoch seconds), result (Succeeded | Failed | Running),
  message, trigger, field_manager,
  cluster, prune, identity, project: the cluster host that syncs it, whether it prunes, the user it
            acted as and its project (sync/converge.stamp_records: what removes it once it departs)
  objects:  [{apiVersion, kind, namespace, name, digest, resourceVersion, managed}]
            digest = what we applied, resourceVersion / managed = the live object right after
            (``managed`` fingerprints our field manager's field set, see diff.py)
  history:  newest first, at most ``history_limit`` of
            {revision, digest, time, result, trigger, rollback, rollback_of?, message?, duration?,
             health?, health_time?, override?}
            health / health_time = the verdict of the health wait that followed that sync (written
            by health_wait); rollbacks go to the newest entry recorded Healthy. override = why a push
            went through a deployment window that would have refused it (gitops_override_window).

Each object entry also carries the ``uid`` of the live object (prune deletes only that object).
The ``digest`` of a Secret is an HMAC keyed with the cluster's digest key (the Secret
``gitops-digest-key`` of the inventory namespace), so that reading the record does not let anyone
test guesses of a secret value; other objects keep the plain sha256 of the bundle.

The record is gzip-compressed into ``binaryData`` when its JSON would not comfortably fit the
1 MiB object limit. A record of more than SHARD_OBJECTS objects keeps its object list in shards:
content-addressed objects ``gitops-rs-<sha256>`` (labelled ``gitops.k8s/record-of: <app>``) of at
most SHARD_OBJECTS entries each, which the head object lists under ``object_shards``. Shards are
written before the head and deleted after the head stops naming them, so a reader always finds
what the head it read names (or re-reads the head), and a write changes only the shards whose
objects changed.

Every write goes through ``Inventory.update``: read, change, write with the resourceVersion read
(optimistic concurrency), and on a conflict (409) read again and redo the change. apply writes
under its Lease (the update checks the Lease is still held before writing); health_wait writes
without it, which is safe because its change only sets the health of one history entry of the
record it just read. apply orders its writes so a crash never loses track of an object it created:
the union of old and new objects is recorded before the first write, the final set after prune.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import os
import random
import re
import threading
import time

from .client import ApiError
from ..errors import GitOpsError
from ..health.status import Health
from ..refs import key_of

INVENTORY_NAMESPACE = "gitops-system"
INVENTORY_KINDS = ("ConfigMap", "Secret")
APP_LABEL = "gitops.k8s/app"
MANAGED_BY = {"app.kubernetes.io/managed-by": "gitops.k8s"}
RECORD_KEY = "record.json"
COMPRESSED_KEY = "record.json.gz"
COMPRESS_ABOVE = 256 * 1024
SHARD_OBJECTS = 1000   # at most ~0.8 KiB an entry: a shard stays far below the 1 MiB object limit
SHARD_KEY = "objects.json.gz"
SHARD_LABEL = "gitops.k8s/record-of"
DIGEST_KEY_SECRET = "gitops-digest-key"
WRITE_ATTEMPTS = 8
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


def object_entry(ref, digest=None, resource_version=None, managed=None, uid=None):
    entry = {k: ref.get(k) or "" for k in REF_FIELDS}
    entry.update({"digest": digest, "resourceVersion": resource_version, "managed": managed})
    if uid:
        entry["uid"] = uid
    return entry


def record_digest(ref, digest, key):
    """What the record keeps of an object's bundle ``digest``: keyed (HMAC) for a Secret, so that a
    reader of the record cannot test guesses of its values, the digest itself for anything else."""
    if not digest or not key or (ref.get("kind"), ref.get("apiVersion")) != ("Secret", "v1") or \
            digest.startswith("hmac-sha256:"):
        return digest
    return "hmac-sha256:" + hmac.new(key, digest.encode("ascii"), hashlib.sha256).hexdigest()


def key_secret_digests(bundle, key):
    """``bundle`` with the digest of every Secret keyed (a copy; the files are left alone), so that
    the comparison with the record (fast path) and the entries written to it use the same digests."""
    entries = [dict(e, digest=record_digest(e, e.get("digest"), key)) for e in bundle.entries]
    return type(bundle)(bundle.path, dict(bundle.index, objects=entries), bundle.objects)


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


def history_entry(revision, digest, result, trigger, rollback_of=None, message=None, duration=None, when=None,
                  override=None):
    entry = {"revision": revision, "digest": digest, "time": when if when is not None else time.time(),
             "result": result, "trigger": trigger, "rollback": bool(rollback_of)}
    if rollback_of:
        entry["rollback_of"] = rollback_of
    if message:
        entry["message"] = message
    if duration is not None:
        entry["duration"] = round(duration, 3)
    if override:
        entry["override"] = override
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


def _packed(text, kind, key):
    packed = base64.b64encode(gzip.compress(text.encode("utf-8"), mtime=0)).decode("ascii")
    return {"data": {key: packed}} if kind == "Secret" else {"binaryData": {key: packed}}


def _unpacked(obj, key):
    blob = (obj.get("data") or {}).get(key) or (obj.get("binaryData") or {})[key]
    return json.loads(gzip.decompress(base64.b64decode(blob)))


def encode_record(record, kind):
    """The ``data`` / ``binaryData`` of the inventory object holding ``record``."""
    text = json.dumps(record, separators=(",", ":"), sort_keys=True)
    if len(text) > COMPRESS_ABOVE:
        return _packed(text, kind, COMPRESSED_KEY)
    if kind == "Secret":
        return {"data": {RECORD_KEY: base64.b64encode(text.encode("utf-8")).decode("ascii")}}
    return {"data": {RECORD_KEY: text}}


def split_record(record, kind):
    """(head, {shard name: shard}) storing ``record``; each is ``{kind, data | binaryData}``.

    Records of at most SHARD_OBJECTS objects have no shards. A shard's name is the digest of its
    app and content: unchanged parts of a record keep their shard.
    """
    objects = record.get("objects") or []
    if len(objects) <= SHARD_OBJECTS:
        return dict(encode_record(record, kind), kind=kind), {}
    shards = {}
    for start in range(0, len(objects), SHARD_OBJECTS):
        text = json.dumps(objects[start:start + SHARD_OBJECTS], separators=(",", ":"), sort_keys=True)
        name = "gitops-rs-" + hashlib.sha256(("%s\n%s" % (record.get("app"), text)).encode("utf-8")).hexdigest()[:40]
        shards[name] = dict(_packed(text, kind, SHARD_KEY), kind=kind)
    head = dict(record, objects=[], object_shards=list(shards))
    return dict(encode_record(head, kind), kind=kind), shards


def join_record(head, shards):
    """The record stored as ``head`` and ``shards`` ({name: object}); KeyError names a missing shard."""
    record = decode_record(head)
    names = record.pop("object_shards", None)
    if names is not None:
        record["objects"] = [entry for name in names for entry in _unpacked(shards[name], SHARD_KEY)]
    return record


def decode_record(obj):
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    secret = obj.get("kind") == "Secret"
    try:
        if COMPRESSED_KEY in data or COMPRESSED_KEY in binary:
            return _unpacked(obj, COMPRESSED_KEY)
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

    def _resource(self):
        return self.cluster.resource("v1", self.kind)

    def _shards(self, app=None):
        """{name: shard object} of one app's records (or of every app)."""
        selector = "%s=%s" % (SHARD_LABEL, app) if app else SHARD_LABEL
        items, _version = self.cluster.list(self._resource(), namespace=self.namespace, label_selector=selector)
        return {obj["metadata"]["name"]: obj for obj in items}

    def _read(self, app):
        """(record or None, resourceVersion or None, shard names the head lists)."""
        for _attempt in range(WRITE_ATTEMPTS):
            head = self.cluster.get(self._ref(app))
            if head is None:
                return None, None, []
            names = decode_record(head).get("object_shards")
            try:
                return join_record(head, self._shards(app) if names else {}), head["metadata"]["resourceVersion"], \
                    names or []
            except KeyError:
                continue  # a writer replaced the head (and deleted its old shards) meanwhile: read it again
        raise GitOpsError("inventory %s/%s keeps changing while being read" % (self.namespace, object_name(app)),
                          inventory=self.where(app))

    def read(self, app):
        """(record or None, resourceVersion or None)."""
        record, version, _names = self._read(app)
        return record, version

    def read_all(self):
        """Every record of the namespace, sorted by app."""
        items, _version = self.cluster.list(self._resource(), namespace=self.namespace, label_selector=APP_LABEL)
        shards = self._shards() if any("object_shards" in decode_record(obj) for obj in items) else {}
        records = []
        for obj in items:
            try:
                records.append(join_record(obj, shards))
            except KeyError:  # rewritten since the list: read that one again
                record = self.read((obj["metadata"].get("labels") or {}).get(APP_LABEL))[0]
                if record is not None:
                    records.append(record)
        return sorted(records, key=lambda r: r.get("app") or "")

    def owners(self, keys, except_app):
        """{key: app} for the ``keys`` recorded in another app's inventory."""
        return OwnerIndex(self.read_all()).owners(keys, except_app)

    def _body(self, name, stored, labels):
        body = {"apiVersion": "v1", "kind": self.kind,
                "metadata": {"name": name, "namespace": self.namespace, "labels": dict(MANAGED_BY, **labels)}}
        body.update({k: v for k, v in stored.items() if k != "kind"})
        return body

    def _write(self, app, record, version, existing):
        """Write the shards ``record`` needs (those not in ``existing``), then the head with the
        resourceVersion read; returns (new resourceVersion, shard names written)."""
        head, shards = split_record(record, self.kind)
        resource = self._resource()
        for name, shard in shards.items():
            if name in existing:
                continue
            try:
                self.cluster.request("POST", resource.path(self.namespace),
                                     body=self._body(name, shard, {SHARD_LABEL: app}),
                                     what="inventory shard of app %s" % app)
            except ApiError as err:
                if err.status != 409:  # content-addressed: an existing shard holds the same objects
                    raise
        body = self._body(object_name(app), head, {APP_LABEL: app})
        what = "inventory of app %s" % app
        if version is None:
            out = self.cluster.request("POST", resource.path(self.namespace), body=body, what=what)
        else:
            body["metadata"]["resourceVersion"] = version
            out = self.cluster.request("PUT", resource.path(self.namespace, object_name(app)), body=body, what=what)
        return out["metadata"]["resourceVersion"], list(shards)

    def _drop_shards(self, names):
        for name in names:
            self.cluster.delete({"apiVersion": "v1", "kind": self.kind, "namespace": self.namespace, "name": name})

    def update(self, app, change, lease=None):
        """The one way a record is written: read, ``change(record) -> record``, write with the
        resourceVersion read; on a concurrent write (409) read again and redo the change.

        ``change`` gets a fresh copy each attempt and returns None when there is nothing to write
        (then nothing is). With ``lease``, the write happens only while the lease is still held.
        Returns the record written, or None.
        """
        created = set()
        for attempt in range(WRITE_ATTEMPTS):
            record, version, names = self._read(app)
            changed = change(record or new_record(app))
            if changed is None:
                return None
            if lease is not None:
                lease.check()
            try:
                _version, written = self._write(app, changed, version, set(names))
            except ApiError as err:
                if err.status not in (404, 409) or attempt == WRITE_ATTEMPTS - 1:
                    raise
                created.update(n for n in split_record(changed, self.kind)[1] if n not in names)
                time.sleep(random.uniform(0, 0.05 * 2 ** attempt))
                continue
            self._drop_shards((set(names) | created) - set(written))
            return changed
        return None

    def digest_key(self, create=False):
        """The cluster's key for Secret digests (see ``record_digest``); made on first use when
        ``create``, else None while it does not exist or cannot be read."""
        ref = {"apiVersion": "v1", "kind": "Secret", "namespace": self.namespace, "name": DIGEST_KEY_SECRET}
        for _attempt in range(3):
            try:
                found = self.cluster.get(ref)
            except ApiError as err:
                if err.status == 403 and not create:
                    return None
                raise
            if found is not None:
                return base64.b64decode((found.get("data") or {}).get("key", ""))
            if not create:
                return None
            body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": DIGEST_KEY_SECRET, "namespace": self.namespace, "labels": dict(MANAGED_BY)},
                    "data": {"key": base64.b64encode(os.urandom(32)).decode("ascii")}}
            try:
                self.cluster.request("POST", "/api/v1/namespaces/%s/secrets" % self.namespace, body=body,
                                     what="digest key %s/%s" % (self.namespace, DIGEST_KEY_SECRET))
            except ApiError as err:
                if err.status != 409:  # another run made it first: read theirs
                    raise
        raise GitOpsError("cannot read or create the digest key Secret %s/%s" % (self.namespace, DIGEST_KEY_SECRET))

    def delete(self, app):
        """Remove the app's record and its shards; False when there was no record."""
        existed = self.cluster.delete(self._ref(app))
        self._drop_shards(self._shards(app))
        return existed

    def ensure_namespace(self):
        ensure_namespace(self.cluster, self.namespace)


class OwnerIndex:
    """Which apps record which object: one read of every record, shared by the apps of a run.

    ``fresh`` is the answer under the cluster-wide claims Lease (see sync/claims.py), the index kept
    instead of reading every record again for each app that claims objects (quadratic in a fleet's
    first sync): it stands while the Lease's ``leaseTransitions`` (one per acquisition) counts only
    this run's own acquisitions since the records were read, and this run adds its own claims
    (``claimed``). Otherwise -- another run claimed meanwhile, or the index names another owner,
    which may be stale (pruned since) -- every record is read again.
    """

    def __init__(self, records, store=None, transitions=None):
        """``transitions``: the claims Lease's count, read free before the records (None: unknown,
        -1: no Lease yet)."""
        self.store, self.transitions = store, transitions
        self._lock = threading.Lock()
        self._load(records)

    def _load(self, records):
        self._apps_of = {}
        for record in records:
            for obj in record.get("objects") or ():
                self._apps_of.setdefault(key_of(obj), []).append(record.get("app"))

    def owners(self, keys, except_app):
        """{key: app} for the ``keys`` recorded in another app's inventory (as the index stands)."""
        with self._lock:
            return self._others(keys, except_app)

    def _others(self, keys, except_app):
        found = {}
        for key in keys:
            others = [app for app in self._apps_of.get(key, ()) if app != except_app]
            if others:
                found[key] = others[0]
        return found

    def fresh(self, keys, except_app, transitions):
        """``owners`` as every record says now; the caller holds the claims Lease, acquired as
        its ``transitions``-th holder."""
        with self._lock:
            known = self.transitions is not None and transitions == self.transitions + 1
            self.transitions = transitions
            found = self._others(keys, except_app) if known else None
            if found is None or found:
                self._load(self.store.read_all())
                found = self._others(keys, except_app)
            return found

    def claimed(self, app, keys, moved=()):
        """``app`` now records ``keys`` (``moved``: adopted from their other apps)."""
        with self._lock:
            for key in keys:
                apps = self._apps_of.setdefault(key, [])
                if key in moved:
                    apps[:] = []
                if app not in apps:
                    apps.append(app)


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
