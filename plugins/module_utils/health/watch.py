# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Wait until objects are healthy: watches, not sleep-polling.

The watching is health/hub.py's: one list+watch per (resource, scope), resumed, reconnected and
re-listed on 410 Gone, handing each state of the waited objects to the wait's own queue. A wait
re-assesses only what changed, so a change is seen within the network round trip and waiting
costs almost no CPU. Alone, a wait runs its own hub for its own objects; the waits of a run share
the run's hub (``hub=``), so that a fleet's waits cost one watch per kind, not one per app.

What is wrong with the objects that did not become healthy is told by health_drilldown.py.
"""

from __future__ import annotations

import queue
import time

from ..cluster.client import ApiError
from ..errors import GitOpsError
from . import CustomHealth, Health, assess, worst
from .drilldown import unhealthy_summary
from .hub import REDISCOVER_SECONDS, WatchHub, not_older
from ..refs import describe, key_of

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


class _Wait:
    """State of one wait_healthy call."""

    def __init__(self, cluster, refs, custom_health, wait, hub=None, written=None):
        self.cluster, self.hub = cluster, hub
        self.rules = custom_health if isinstance(custom_health, CustomHealth) else CustomHealth(custom_health)
        self.refs = refs  # key -> clean ref, in the caller's order
        self.wait = wait
        self.written = written or {}  # key -> resourceVersion the caller wrote: older states are not its health
        self.started = time.monotonic()
        self.events = queue.Queue()
        self.subscription = None
        self.unread = set()  # keys watched whose state (as new as written) has not arrived yet
        self.unserved = set()  # keys whose kind the cluster does not serve (yet)
        self.objects = {}  # key -> live object, or None when it does not exist
        self.verdicts = {key: (Health.UNKNOWN, "not read yet") for key in refs}
        self.healthy_since = {}  # key -> seconds after start when it became settled

    def elapsed(self):
        return time.monotonic() - self.started

    def start(self, keys):
        """Subscribe ``keys`` to the hub's feeds; those of kinds not served (yet) are Missing."""
        wanted = {}
        for key in keys:
            ref = self.refs[key]
            try:
                resource = self.hub.resource(ref["apiVersion"], ref["kind"])
            except ApiError:
                raise
            except GitOpsError:
                self.unserved.add(key)
                self.verdicts[key] = (Health.MISSING, "the cluster does not serve %s %s yet" % (ref["apiVersion"], ref["kind"]))
                continue
            self.unserved.discard(key)
            if resource.namespaced and not ref["namespace"]:
                raise GitOpsError("%s needs a namespace (%s is namespaced)" % (describe(ref), ref["kind"]), ref=ref)
            wanted[key] = (resource, ref["namespace"] if resource.namespaced else None, ref["name"])
        if wanted:
            self.unread.update(wanted)
            self.subscription = self.subscription or self.hub.subscribe(self.events)
            self.subscription.add(wanted)

    def close(self):
        if self.subscription is not None:
            self.subscription.close()

    def receive(self, timeout):
        """Take what arrives within ``timeout`` seconds and everything that came with it, then assess once."""
        changed = set()
        try:
            changed.update(self.take(self.events.get(timeout=timeout)))
            while True:
                changed.update(self.take(self.events.get_nowait()))
        except queue.Empty:
            pass
        self.reassess(changed)

    def take(self, item):
        """Record one report of the hub; return the keys whose object changed."""
        kind, payload = item
        if kind == "fail":
            raise payload
        changed = []
        for key, obj, as_of in payload:
            if key in self.unread and not not_older(as_of, self.written.get(key)):
                continue  # the shared watch has not seen the caller's write yet: what it has is older
            self.unread.discard(key)
            self.objects[key] = obj
            changed.append(key)
        return changed

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

    def outcome(self, fail_fast):
        """How the wait ends on what is known now; None: it goes on."""
        if self.unread:
            return None
        statuses = self.statuses()
        if not self.wait:
            return "current health"
        if all(status in Health.SETTLED for status in statuses):
            return "healthy"
        if fail_fast and Health.DEGRADED in statuses:
            return "degraded"
        return None

    def progress_line(self):
        waiting = [key for key in self.refs if self.verdicts[key][0] not in Health.SETTLED]
        line = "%d/%d healthy" % (len(self.refs) - len(waiting), len(self.refs))
        if waiting:
            line += " \u2014 waiting for %s: %s" % (describe(self.refs[waiting[0]]), self.verdicts[waiting[0]][1])
            if len(waiting) > 1:
                line += " (+%d more)" % (len(waiting) - 1)
        return line


class _Progress:
    """Progress lines: when the line changes (at most once per MIN seconds), and at least every MAX."""

    def __init__(self, report, started):
        self.report, self.last_line, self.last_time = report, None, started
        self.due = started + PROGRESS_MIN_SECONDS

    def tick(self, state, now):
        if not self.report or state.unread or now < self.due:
            return
        self.due = now + PROGRESS_MIN_SECONDS
        line = state.progress_line()
        if line != self.last_line or now - self.last_time >= PROGRESS_MAX_SECONDS:
            self.report(line)
            self.last_line, self.last_time = line, now


def wait_healthy(cluster, refs, timeout=300, fail_fast=True, custom_health=None, ignore=None, wait=True, progress=None,
                 hub=None, written=None):
    """Watch ``refs`` until every one is Healthy (or Suspended), one is Degraded (with
    ``fail_fast``), or ``timeout`` seconds pass (never healthy then). No refs: healthy at once.
    ``wait=False`` reports the current health.

    ``hub``: the run's WatchHub (health/hub.py) for ``cluster``'s identity, shared by the waits of
    the run; without one the wait watches on its own. ``written``: the objects as the caller wrote
    them (refs with their ``resourceVersion``, such as a record's objects): a shared watch's state
    of one counts only once it is at least that new.

    Returns {healthy, status, resources: [{ref, status, message}], elapsed, timeline:
    [{ref, healthy_after}], summary}; an unhealthy result is not an exception (callers decide).
    GitOpsError only for bad input or when the cluster refuses to be read.
    """
    targets = {}
    for ref in refs:
        ref = clean_ref(ref)
        if not is_ignored(ref, ignore):
            targets.setdefault(key_of(ref), ref)
    own_hub = WatchHub(cluster, keep_watching=wait) if hub is None and targets else None
    if hub is not None and cluster is not None and hub.cluster.identity != cluster.identity:
        raise GitOpsError("the run's watches act as %s, not as %s" % (hub.cluster.identity, cluster.identity))
    state = _Wait(cluster, targets, custom_health, wait, hub or own_hub, _versions(written))
    try:
        outcome = _watch(state, timeout, fail_fast, progress)
    finally:
        state.close()
        if own_hub is not None:
            own_hub.close()
    return _result(state, outcome)


def _versions(written):
    """{key: resourceVersion} of ``written``; a cluster-scoped object also under an empty namespace
    (bundles may give it the app's)."""
    versions = {}
    for obj in written or ():
        if obj.get("resourceVersion"):
            key = key_of(obj)
            versions[key] = versions[key[:2] + ("",) + key[3:]] = obj["resourceVersion"]
    return versions


def _watch(state, timeout, fail_fast, progress):
    """Wait as wait_healthy says; returns the outcome (healthy, degraded, current health, timed out)."""
    deadline = state.started + timeout
    lines = _Progress(progress, state.started)
    next_discovery = state.started + REDISCOVER_SECONDS
    state.start(list(state.refs))
    while True:  # decide on what is known before waiting: a wait for no object has nothing to wait for
        now = time.monotonic()
        outcome = state.outcome(fail_fast)
        if outcome or now >= deadline:
            return outcome or "timed out"
        rediscover = bool(state.unserved) and state.wait
        if rediscover and now >= next_discovery:
            next_discovery = now + REDISCOVER_SECONDS
            state.start(list(state.unserved))
        lines.tick(state, now)
        wake = min(deadline, lines.due if progress else deadline, next_discovery if rediscover else deadline)
        state.receive(max(wake - now, 0))


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


def stay_healthy(cluster, refs, duration, custom_health=None, hub=None):
    """Watch ``refs`` for ``duration`` seconds (a rollout's bake, after they became healthy): they
    stayed healthy unless one turned Degraded or Missing meanwhile -- the watch ends then -- or one
    is not Healthy (or Suspended) when the time is up. A Progressing object meanwhile (a rolling
    restart, a scale-up) is no failure by itself.

    Returns wait_healthy's result, with ``failed``: {ref, status, message, after} of the first
    object that turned Degraded or Missing, None when none did.
    """
    targets = {}
    for ref in refs:
        ref = clean_ref(ref)
        targets.setdefault(key_of(ref), ref)
    own_hub = WatchHub(cluster) if hub is None and targets else None
    state = _Wait(cluster, targets, custom_health, True, hub or own_hub)
    deadline, failed = state.started + duration, None
    try:
        state.start(list(targets))
        while failed is None:
            now = time.monotonic()
            bad = [] if state.unread else \
                [key for key in targets if state.verdicts[key][0] in (Health.DEGRADED, Health.MISSING)]
            if bad:
                status, message = state.verdicts[bad[0]]
                failed = {"ref": targets[bad[0]], "status": status, "message": message,
                          "after": round(state.elapsed(), 3)}
            elif now >= deadline:
                break
            else:
                state.receive(deadline - now)
    finally:
        state.close()
        if own_hub is not None:
            own_hub.close()
    settled = not state.unread and all(status in Health.SETTLED for status in state.statuses())
    result = _result(state, "healthy" if settled and not failed else
                     "%s during the bake" % failed["status"].lower() if failed else "not healthy when the bake ended")
    result["failed"] = failed
    return result
