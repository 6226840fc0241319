# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Wait until objects are healthy: watches, not sleep-polling.

One thread per (resource, namespace) lists once (to learn every object and a resourceVersion),
then watches from that version, resuming after the server closes the stream, reconnecting when
the connection drops and re-listing when the version has expired (410 Gone). Threads hand
objects to the caller's thread through a queue; it re-assesses only what changed, so a change
is seen within the network round trip and waiting costs almost no CPU.

What is wrong with the objects that did not become healthy is told by health_drilldown.py.
"""

from __future__ import annotations

import queue
import threading
import time

from ..cluster.client import ApiError
from ..errors import GitOpsError
from . import CustomHealth, Health, assess, worst
from .drilldown import unhealthy_summary
from ..refs import describe, key_of

# Server-side length of one watch request. Short enough that threads of a finished wait end
# soon (a blocked read cannot be interrupted), long enough that reconnects cost nothing.
WATCH_SECONDS = 20
# How often a kind the cluster does not serve yet (CRD being established) is looked up again.
REDISCOVER_SECONDS = 2.0
# Progress lines: when the line changes (at most once per MIN), and at least every MAX seconds.
PROGRESS_MIN_SECONDS, PROGRESS_MAX_SECONDS = 1.0, 10.0


def clean_ref(ref):
    missing = [field for field in ("apiVersion", "kind", "name") if not (isinstance(ref, dict) and ref.get(field))]
    if missing:
        raise GitOpsError("object reference %r lacks %s" % (ref, ", ".join(missing)), ref=ref)
    return {"apiVersion": ref["apiVersion"], "kind": ref["kind"], "namespace": ref.get("namespace") or "",
            "name": ref["name"]}


def is_ignored(ref, ignore):
    """``ignore`` items are kind names ("Job") or partial refs ({kind: Job, name: migrate})."""
    for item in ignore or ():
        if isinstance(item, str):
            if item == ref["kind"]:
                return True
        elif all(ref.get(field) == value for field, value in item.items()):
            return True
    return False


class _Watcher(threading.Thread):
    """Lists then watches one resource in one namespace (or cluster-wide); reports to ``events``."""

    def __init__(self, cluster, resource, namespace, keys, events, stop, keep_watching):
        super().__init__(daemon=True, name="watch %s %s" % (resource.plural, namespace or "*"))
        self.cluster, self.resource, self.namespace = cluster, resource, namespace or None
        # one resource in one namespace: a name identifies the object (and its ref key)
        self.keys = {key[3]: key for key in keys}
        self.events, self.stop, self.keep_watching = events, stop, keep_watching
        # one object: let the server filter; several: one stream for the whole namespace
        self.field_selector = "metadata.name=%s" % next(iter(self.keys)) if len(self.keys) == 1 else None
        self.stream, self._stream_lock = None, threading.Lock()  # the open watch response, ended by close()

    def close(self):
        """Stop now: end the open stream, whose read would otherwise block until the watch times out."""
        self.stop.set()
        with self._stream_lock:
            if self.stream is not None:
                self.cluster.close_stream(self.stream)

    def _opened(self, stream):
        with self._stream_lock:
            self.stream = stream
            if stream is not None and self.stop.is_set():  # close() came before the stream opened
                self.cluster.close_stream(stream)

    def run(self):
        try:
            self._loop()
        except GitOpsError as err:
            self.events.put(("fail", self, err))
        except Exception as err:  # a thread must never die silently: the waiter would hang until timeout
            self.events.put(("fail", self, GitOpsError("watching %s failed: %r" % (self.resource.plural, err))))

    def _loop(self):
        version, pause = None, 0.1
        while not self.stop.is_set():
            if version is None:
                items, version = self.cluster.list(self.resource, self.namespace, field_selector=self.field_selector)
                self.events.put(("list", self, items))
                if not self.keep_watching:
                    return
            try:
                for event in self.cluster.watch(self.resource, self.namespace, version, WATCH_SECONDS,
                                                field_selector=self.field_selector, opened=self._opened):
                    if self.stop.is_set():
                        return
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        version = None  # 410 Gone (expired resourceVersion) or similar: re-list
                        if obj.get("code") != 410:
                            self.stop.wait(pause)  # something else is wrong: do not hammer the server
                            pause = min(pause * 2, 5)
                        break
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if event.get("type") != "BOOKMARK":
                        self.events.put((event.get("type"), self, obj))
                pause = 0.1
            except ApiError as err:
                if err.status == 410:
                    version = None
                elif err.status in (401, 403, 404):
                    raise
                else:
                    self.stop.wait(pause)
                    pause = min(pause * 2, 5)
            except (GitOpsError, OSError, ValueError, _urllib3_error()):
                # connection dropped mid-stream: resume from the last version seen
                self.stop.wait(pause)
                pause = min(pause * 2, 5)


def _urllib3_error():
    import urllib3

    return urllib3.exceptions.HTTPError


class _Wait:
    """State of one wait_healthy call."""

    def __init__(self, cluster, refs, custom_health, wait):
        self.cluster = cluster
        self.rules = custom_health if isinstance(custom_health, CustomHealth) else CustomHealth(custom_health)
        self.refs = refs  # key -> clean ref, in the caller's order
        self.wait = wait
        self.started = time.monotonic()
        self.events = queue.Queue()
        self.stop = threading.Event()
        self.watchers = []
        self.unlisted = set()  # watchers that have not reported their first list
        self.unserved = set()  # keys whose kind the cluster does not serve (yet)
        self.objects = {}  # key -> live object, or None when it does not exist
        self.verdicts = {key: (Health.UNKNOWN, "not read yet") for key in refs}
        self.healthy_since = {}  # key -> seconds after start when it became settled

    def elapsed(self):
        return time.monotonic() - self.started

    def start(self, keys):
        """Start watchers for ``keys``, grouped by (resource, namespace)."""
        groups = {}
        for key in keys:
            ref = self.refs[key]
            try:
                resource = self.cluster.resource(ref["apiVersion"], ref["kind"])
            except ApiError:
                raise
            except GitOpsError:
                self.unserved.add(key)
                self.verdicts[key] = (Health.MISSING, "the cluster does not serve %s %s yet" % (ref["apiVersion"], ref["kind"]))
                continue
            self.unserved.discard(key)
            if resource.namespaced and not ref["namespace"]:
                raise GitOpsError("%s needs a namespace (%s is namespaced)" % (describe(ref), ref["kind"]), ref=ref)
            namespace = ref["namespace"] if resource.namespaced else ""
            groups.setdefault((resource, namespace), []).append(key)
        for (resource, namespace), group_keys in groups.items():
            watcher = _Watcher(self.cluster, resource, namespace, frozenset(group_keys), self.events, self.stop, self.wait)
            self.unlisted.add(watcher)
            self.watchers.append(watcher)
            watcher.start()

    def take(self, item):
        """Record one report from a watcher; return the keys whose object changed."""
        kind, watcher, payload = item
        if kind == "fail":
            raise payload
        if kind == "list":
            self.unlisted.discard(watcher)
            present = {obj["metadata"]["name"]: obj for obj in payload}
            for name, key in watcher.keys.items():
                self.objects[key] = present.get(name)
            return watcher.keys.values()
        key = watcher.keys.get((payload.get("metadata") or {}).get("name"))
        if key is None:
            return ()
        self.objects[key] = None if kind == "DELETED" else payload
        return (key,)

    def reassess(self, keys):
        for key in keys:
            if key in self.unserved or key not in self.objects:
                continue
            self.verdicts[key] = assess(self.objects[key], self.rules)
            if self.verdicts[key][0] in Health.SETTLED:
                self.healthy_since.setdefault(key, self.elapsed())
            else:
                self.healthy_since.pop(key, None)

    def statuses(self):
        return [status for status, message in self.verdicts.values()]

    def progress_line(self):
        waiting = [key for key in self.refs if self.verdicts[key][0] not in Health.SETTLED]
        line = "%d/%d healthy" % (len(self.refs) - len(waiting), len(self.refs))
        if waiting:
            line += " \u2014 waiting for %s: %s" % (describe(self.refs[waiting[0]]), self.verdicts[waiting[0]][1])
            if len(waiting) > 1:
                line += " (+%d more)" % (len(waiting) - 1)
        return line


def wait_healthy(cluster, refs, timeout=300, fail_fast=True, custom_health=None, ignore=None, wait=True, progress=None):
    """Watch ``refs`` until every one is Healthy (or Suspended), one is Degraded (with
    ``fail_fast``), or ``timeout`` seconds pass (never healthy then). No refs: healthy at once.
    ``wait=False`` reports the current health.

    Returns {healthy, status, resources: [{ref, status, message}], elapsed, timeline:
    [{ref, healthy_after}], summary}; an unhealthy result is not an exception (callers decide).
    GitOpsError only for bad input or when the cluster refuses to be read.
    """
    targets = {}
    for ref in refs:
        ref = clean_ref(ref)
        if not is_ignored(ref, ignore):
            targets.setdefault(key_of(ref), ref)
    state = _Wait(cluster, targets, custom_health, wait)
    deadline = state.started + timeout
    outcome = "timed out"
    last_line, last_progress = None, state.started
    next_line, next_discovery = state.started + PROGRESS_MIN_SECONDS, state.started + REDISCOVER_SECONDS
    try:
        state.start(list(targets))
        while True:  # decide on what is known before waiting: a wait for no object has nothing to wait for
            now = time.monotonic()
            if not state.unlisted:
                statuses = state.statuses()
                if not wait:
                    outcome = "current health"
                    break
                if all(status in Health.SETTLED for status in statuses):
                    outcome = "healthy"
                    break
                if fail_fast and Health.DEGRADED in statuses:
                    outcome = "degraded"
                    break
            if now >= deadline:
                break
            if state.unserved and wait and now >= next_discovery:
                next_discovery = now + REDISCOVER_SECONDS
                cluster.forget_discovery()
                state.start(list(state.unserved))
            if progress and not state.unlisted and now >= next_line:
                next_line = now + PROGRESS_MIN_SECONDS
                line = state.progress_line()
                if line != last_line or now - last_progress >= PROGRESS_MAX_SECONDS:
                    progress(line)
                    last_line, last_progress = line, now
            wake = min(deadline, next_line if progress else deadline,
                       next_discovery if state.unserved and wait else deadline)
            changed = set()
            try:
                changed.update(state.take(state.events.get(timeout=max(wake - now, 0))))
                while True:  # take everything that arrived together, then assess once
                    changed.update(state.take(state.events.get_nowait()))
            except queue.Empty:
                pass
            state.reassess(changed)
    finally:
        for watcher in state.watchers:
            watcher.close()
    return _result(state, outcome)


def _result(state, outcome):
    elapsed = round(state.elapsed(), 3)  # rounded once: the summary says what ``elapsed`` says
    resources = [{"ref": ref, "status": state.verdicts[key][0], "message": state.verdicts[key][1]}
                 for key, ref in state.refs.items()]
    overall = worst(r["status"] for r in resources)
    # health is what the wait saw: one that ran out of time never counts as healthy, whatever the
    # verdicts it was left with say
    healthy = outcome == "healthy" or (outcome == "current health" and overall in Health.SETTLED)
    if not healthy and overall in Health.SETTLED:
        overall = Health.UNKNOWN
    timeline = sorted(({"ref": state.refs[key], "healthy_after": round(after, 3)}
                       for key, after in state.healthy_since.items()), key=lambda t: t["healthy_after"])
    return {
        "healthy": healthy,
        "status": overall,
        "resources": resources,
        "elapsed": elapsed,
        "timeline": timeline,
        "summary": unhealthy_summary(state.cluster, resources, state.objects, outcome, elapsed) if not healthy else
        "%d of %d objects healthy after %.1fs" % (len(resources), len(resources), elapsed),
    }
