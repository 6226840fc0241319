# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""One writer per application: a coordination.k8s.io/v1 Lease named ``gitops-app-<app>``.

The holder renews the lease every third of its duration from a background thread; a run that
crashed stops renewing, and the next run takes the lease over once it has seen it unchanged for
``duration`` seconds. Expiry is judged as client-go's leader election judges it: by this
process's own monotonic clock since it last saw the lease change, never by comparing its clock
with the holder's ``renewTime``, so clock skew between controllers cannot let two holders in (a
newcomer waits one full duration before taking over the lease of a crashed run).

Each renewal has a deadline shorter than the lease (a third of it) and is not retried by the
client; a holder that could not renew for two thirds of the duration considers the lease lost
and stops writing before anyone else may take it. A run that finds the lease held waits
(polling) up to ``lock_timeout`` and then fails with a message naming the holder. Every update
carries the resourceVersion read, so two runs that race for a free or expired lease cannot both
win.
"""

from __future__ import annotations

import datetime
import getpass
import os
import socket
import threading
import time
import uuid

from .client import ApiError
from ..errors import GitOpsError
from .records import object_name

DEFAULT_DURATION = 30
POLL_SECONDS = 1.0
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _format(moment):
    return moment.strftime(TIME_FORMAT)


def default_identity():
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = str(os.getuid())
    return "%s@%s pid %d (%s)" % (user, socket.gethostname(), os.getpid(), uuid.uuid4().hex[:8])


class Observer:
    """Judges a held lease's expiry by how long this process has seen it unchanged."""

    def __init__(self):
        self._seen, self._since = None, None

    def expired(self, spec, now=None):
        """True when nobody holds the lease, or its holder has not renewed it for its duration as
        observed here (``now``: a monotonic time)."""
        if not spec.get("holderIdentity"):
            return True
        now = time.monotonic() if now is None else now
        seen = tuple(spec.get(k) for k in ("holderIdentity", "renewTime", "acquireTime", "leaseTransitions",
                                           "leaseDurationSeconds"))
        if seen != self._seen:
            self._seen, self._since = seen, now
            return False
        return now - self._since > (spec.get("leaseDurationSeconds") or DEFAULT_DURATION)


class Lease:
    """``lease.acquire(lock_timeout)`` makes this run the app's only writer until ``release()``."""

    def __init__(self, cluster, app, namespace, duration=DEFAULT_DURATION, identity=None, name=None):
        self.cluster, self.app, self.namespace = cluster, app, namespace
        self.name = name or object_name(app)
        self.duration = int(duration)
        self.identity = identity or default_identity()
        self.lost = None  # why the lease was lost while held, if it was
        self._observer = Observer()
        self._obj = None
        self._stop = threading.Event()
        self._thread = None
        self._path = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % namespace

    def where(self):
        return {"kind": "Lease", "namespace": self.namespace, "name": self.name}

    @property
    def transitions(self):
        """The held Lease's ``leaseTransitions``: how many times it was acquired (0: created by this acquisition)."""
        return ((self._obj or {}).get("spec") or {}).get("leaseTransitions")

    def _spec(self, transitions):
        now = _format(_now())
        return {"holderIdentity": self.identity, "leaseDurationSeconds": self.duration,
                "acquireTime": now, "renewTime": now, "leaseTransitions": transitions}

    def _try_acquire(self):
        """Take the lease if free or expired; return None on success, else the holder's spec."""
        try:
            current = self.cluster.request("GET", "%s/%s" % (self._path, self.name), what="lease %s" % self.name)
        except ApiError as err:
            if err.status != 404:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": self._spec(0)}
            try:
                self._obj = self.cluster.request("POST", self._path, body=body, what="lease %s" % self.name)
                return None
            except ApiError as race:
                if race.status == 409:
                    return {}  # someone created it first: look again
                raise
        spec = current.get("spec") or {}
        if spec.get("holderIdentity") == self.identity:  # ours already (an answer lost on the way back)
            self._obj = current
            return None
        if not self._observer.expired(spec):
            return spec
        current["spec"] = self._spec((spec.get("leaseTransitions") or 0) + 1)
        try:
            self._obj = self.cluster.request("PUT", "%s/%s" % (self._path, self.name), body=current,
                                             what="lease %s" % self.name)
            return None
        except ApiError as race:
            if race.status == 409:
                return {}
            raise

    def acquire(self, timeout):
        deadline = time.monotonic() + max(0, timeout)
        while True:
            holder = self._try_acquire()
            if holder is None:
                self._start_renewing()
                return
            if time.monotonic() >= deadline and holder:
                raise GitOpsError(
                    "app %s is locked by %s (lease %s/%s, acquired %s, renewed %s); gave up after waiting %ss"
                    % (self.app, holder.get("holderIdentity"), self.namespace, self.name,
                       holder.get("acquireTime"), holder.get("renewTime"), timeout),
                    holder=holder.get("holderIdentity"), lease=self.where(),
                )
            time.sleep(POLL_SECONDS if holder else 0.05)

    def _start_renewing(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name="lease-%s" % self.name, daemon=True)
        self._thread.start()

    def _renew_loop(self):
        period = self.duration / 3.0
        renewed = time.monotonic()
        while not self._stop.wait(period):
            body = dict(self._obj)
            body["spec"] = dict(body["spec"], renewTime=_format(_now()))
            try:
                self._obj = self.cluster.request("PUT", "%s/%s" % (self._path, self.name), body=body,
                                                 what="lease %s" % self.name, timeout=period, retry=False)
                renewed = time.monotonic()
            except GitOpsError as err:
                # a 409 means someone took it over (we were too slow); anything else may be
                # transient and the next tick retries -- while others cannot have taken it yet
                if isinstance(err, ApiError) and err.status == 409:
                    self.lost = "lease %s/%s was taken over by another run" % (self.namespace, self.name)
                    return
                if time.monotonic() - renewed > 2 * period:
                    self.lost = "lease %s/%s could not be renewed for %.0fs (%s)" % (
                        self.namespace, self.name, time.monotonic() - renewed, err)
                    return

    def check(self):
        """Raise when the lease was lost while held (another run may be writing)."""
        if self.lost:
            raise GitOpsError("app %s: %s; stopping" % (self.app, self.lost), lease=self.where())

    def release(self):
        self._stop.set()
        if self._thread:
            self._thread.join()
            self._thread = None
        if self._obj is None or self.lost:
            return
        body = dict(self._obj)
        body["spec"] = dict(body["spec"], holderIdentity=None, renewTime=None, acquireTime=None)
        try:
            self.cluster.request("PUT", "%s/%s" % (self._path, self.name), body=body, what="lease %s" % self.name)
        except ApiError:
            pass  # taken over meanwhile, or gone: either way it is no longer ours to free
        self._obj = None
