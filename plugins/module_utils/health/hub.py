# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The watches behind health waits: one list+watch per kind, shared by every wait of a run.

A WatchHub belongs to one run and one cluster client identity. A wait subscribes the objects it
waits for; on first demand the hub starts one feed per (resource, scope), the scope chosen as the
read phase chooses its reads (cluster/snapshot.py): the objects one by one (a field selector on
the name) when the run names at most READ_BY_NAME of the resource, else the one namespace they are
in, else cluster-wide (one feed per namespace when the credentials may not list cluster-wide).

A feed lists once (every object and a resourceVersion), then watches from that version, resuming
after the server ends the stream, reconnecting when the connection drops and re-listing when the
version has expired (410 Gone). It keeps the latest object per name and hands each change to the
waits subscribed to that object only, through the wait's own queue: a wait wakes for its own
objects, never for the fleet's, and costs no thread of its own beyond its caller's.

What a feed hands out is (wait key, object or None, as of resourceVersion): a wait that follows
its caller's writes compares that with the resourceVersion it wrote (health/watch.py), since a
shared cache may not have seen the write yet.
"""

from __future__ import annotations

import threading
import time

from ..cluster.client import READ_BY_NAME, ApiError
from ..errors import GitOpsError

# Server-side length of one watch request. Short enough that threads of a closed hub end soon (a
# blocked read cannot always be interrupted), long enough that reconnects cost nothing.
WATCH_SECONDS = 20
# How often a kind the cluster does not serve yet (CRD being established) is looked up again.
REDISCOVER_SECONDS = 2.0


class WatchHub:
    """The watches of one run on one cluster client identity; ``close()`` (or ``with``) at the run's end.

    ``keep_watching=False``: feeds list once and stop (a reading of the current health).
    """

    def __init__(self, cluster, keep_watching=True):
        self.cluster, self.keep_watching = cluster, keep_watching
        self._feeds = {}  # (resource, namespace or None, name or None) -> _Feed
        self._expected = {}  # resource -> {namespace (None: cluster-scoped): set of names}
        self._no_cluster_wide = set()  # resources the credentials may not list in every namespace
        self._unserved = {}  # (apiVersion, kind) -> (the error, when it was looked up)
        self._lock = threading.RLock()  # feeds and subscriptions; a feed's failure re-subscribes under it
        self._discovery = threading.Lock()  # one look-up of a missing kind at a time, for every wait
        self._closed = False

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()

    def resource(self, api_version, kind):
        """The Resource serving ``kind``; GitOpsError when the cluster does not serve it. A kind
        found unserved is looked up again at most every REDISCOVER_SECONDS, whatever the number of
        waits asking (each look-up reads discovery anew)."""
        with self._discovery:
            known = self._unserved.get((api_version, kind))
            if known and time.monotonic() - known[1] < REDISCOVER_SECONDS:
                raise known[0]
            if known:
                self.cluster.forget_discovery()
            try:
                resource = self.cluster.resource(api_version, kind)
            except ApiError:
                raise
            except GitOpsError as err:
                self._unserved[(api_version, kind)] = (err, time.monotonic())
                raise
            self._unserved.pop((api_version, kind), None)
            return resource

    def expect(self, refs):
        """Say up front which objects the run will wait for (refs), so that every feed gets its
        scope from the whole run rather than from the waits that came first. Optional."""
        wanted = []
        for ref in refs:
            try:
                resource = self.resource(ref["apiVersion"], ref["kind"])
            except GitOpsError:
                continue  # not served (yet): its waits look it up again
            wanted.append((resource, (ref.get("namespace") or None) if resource.namespaced else None, ref["name"]))
        with self._lock:
            self._expect(wanted)

    def subscribe(self, events):
        """A Subscription whose objects' states arrive in the queue ``events`` (see Subscription)."""
        return Subscription(self, events)

    def close(self):
        """End every feed now (their open streams too); a later subscription is refused."""
        with self._lock:
            self._closed = True
            feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            feed.close()

    def _expect(self, wanted):
        for resource, namespace, name in wanted:
            self._expected.setdefault(resource, {}).setdefault(namespace, set()).add(name)

    def _scope(self, resource, namespace, name):
        """(namespace, name) a new feed covers: None for every one (see the module doc)."""
        names = self._expected[resource]
        if sum(len(named) for named in names.values()) <= READ_BY_NAME:
            return namespace, name
        if len(names) == 1 or resource in self._no_cluster_wide:
            return namespace, None
        return None, None

    def _feed_for(self, resource, namespace, name):
        """The running feed that covers the object, or a new one (under the lock)."""
        if self._closed:
            raise GitOpsError("the run's watches are closed: no wait can start any more")
        for scope in ((None, None), (namespace, None), (namespace, name)):
            feed = self._feeds.get((resource,) + scope)
            if feed is not None:
                return feed
        scope = self._scope(resource, namespace, name)
        feed = self._feeds[(resource,) + scope] = _Feed(self, resource, *scope)
        feed.start()
        return feed

    def _failed(self, feed, err):
        """A feed stopped on ``err``: its waits move to per-namespace feeds when the credentials
        may not list cluster-wide (as the read phase does), else they fail with it."""
        with self._lock:
            if self._feeds.get(feed.scope) is feed:
                del self._feeds[feed.scope]  # a later demand starts it anew
            subscribers = feed.detach_all()
            forbidden = (isinstance(err, ApiError) and err.status == 403 and feed.namespace is None
                         and feed.resource.namespaced and not feed.listed and not self._closed)
            if forbidden:
                self._no_cluster_wide.add(feed.resource)
            for subscription, wanted in subscribers.items():
                subscription.moved(feed)
                if forbidden:
                    subscription.add({wait_key: (feed.resource, namespace, name)
                                      for (namespace, name), wait_key in wanted.items()})
                else:
                    subscription.fail(err)


class Subscription:
    """One wait's interest in some objects. Each state a feed sees of them arrives in ``events`` as
    ("seen", [(wait key, object or None, as of resourceVersion), ...]); a feed that stopped on an
    error sends ("fail", GitOpsError). ``close()`` when the wait ends."""

    def __init__(self, hub, events):
        self.hub, self.events = hub, events
        self._feeds = {}  # _Feed -> {(namespace, name): wait key}

    def add(self, wanted):
        """Follow more objects: {wait key: (resource, namespace (None: cluster-scoped), name)}."""
        with self.hub._lock:
            self.hub._expect(wanted.values())
            by_feed = {}
            for wait_key, (resource, namespace, name) in wanted.items():
                feed = self.hub._feed_for(resource, namespace, name)
                by_feed.setdefault(feed, {})[(namespace or "", name)] = wait_key
            for feed, keys in by_feed.items():
                self._feeds.setdefault(feed, {}).update(keys)
                feed.attach(self, keys)

    def close(self):
        with self.hub._lock:
            for feed, keys in self._feeds.items():
                feed.detach(self, keys)
            self._feeds = {}

    def seen(self, batch):
        self.events.put(("seen", batch))

    def fail(self, err):
        self.events.put(("fail", err))

    def moved(self, feed):
        self._feeds.pop(feed, None)


class _Feed(threading.Thread):
    """Lists then watches one resource in one scope, keeps its objects, tells the subscribers."""

    def __init__(self, hub, resource, namespace, name):
        where = (namespace or "*") + ("/" + name if name else "")
        super().__init__(daemon=True, name="watch %s %s" % (resource.plural, where))
        # the object's name when it is watched alone (not ``name``: a Thread's name is its label)
        self.hub, self.cluster, self.resource, self.namespace, self.object_name = hub, hub.cluster, resource, namespace, name
        self.scope = (resource, namespace, name)
        self.field_selector = "metadata.name=%s" % name if name else None
        self.objects = {}  # (namespace, name) -> latest object
        self.version, self.listed = None, False  # the cache is current up to ``version`` once listed
        self.subscribers = {}  # (namespace, name) -> {Subscription: wait key}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.stream, self._stream_lock = None, threading.Lock()  # the open watch response, ended by close()

    # -- subscribers (called under the hub's lock) ---------------------------------------------

    def attach(self, subscription, keys):
        """Tell ``subscription`` about ``keys`` ({(namespace, name): wait key}) from now on, and
        what is known of them now."""
        with self.lock:
            for live_key, wait_key in keys.items():
                self.subscribers.setdefault(live_key, {})[subscription] = wait_key
            if self.listed:
                subscription.seen([(wait_key, self.objects.get(live_key), self.version)
                                   for live_key, wait_key in keys.items()])

    def detach(self, subscription, keys):
        with self.lock:
            for live_key in keys:
                waiting = self.subscribers.get(live_key)
                if waiting is not None:
                    waiting.pop(subscription, None)
                    if not waiting:
                        del self.subscribers[live_key]

    def detach_all(self):
        """{Subscription: {(namespace, name): wait key}} of every subscriber, now detached."""
        with self.lock:
            by_subscription = {}
            for live_key, waiting in self.subscribers.items():
                for subscription, wait_key in waiting.items():
                    by_subscription.setdefault(subscription, {})[live_key] = wait_key
            self.subscribers = {}
        return by_subscription

    # -- what the server says --------------------------------------------------------------------

    def _listed(self, items, version):
        objects = {_live_key(obj): _slim(obj) for obj in items}
        with self.lock:
            self.objects, self.version, self.listed = objects, version, True
            by_subscription = {}
            for live_key, waiting in self.subscribers.items():
                for subscription, wait_key in waiting.items():
                    by_subscription.setdefault(subscription, []).append((wait_key, objects.get(live_key), version))
            for subscription, batch in by_subscription.items():  # under the lock: each wait sees states in order
                subscription.seen(batch)

    def _changed(self, kind, obj):
        live_key, version = _live_key(obj), (obj.get("metadata") or {}).get("resourceVersion")
        obj = None if kind == "DELETED" else _slim(obj)
        with self.lock:
            if obj is None:
                self.objects.pop(live_key, None)
            else:
                self.objects[live_key] = obj
            self.version = version or self.version
            for subscription, wait_key in self.subscribers.get(live_key, {}).items():
                subscription.seen([(wait_key, obj, version)])

    def _bookmark(self, version):
        with self.lock:
            self.version = version or self.version

    # -- the stream ------------------------------------------------------------------------------

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
            self.hub._failed(self, err)
        except Exception as err:  # a feed must never die silently: its waits would hang until their timeout
            self.hub._failed(self, GitOpsError("watching %s failed: %r" % (self.resource.plural, err)))

    def _loop(self):
        version, pause = None, 0.1
        while not self.stop.is_set():
            if version is None:
                items, version = self.cluster.list(self.resource, self.namespace, field_selector=self.field_selector)
                self._listed(items, version)
                if not self.hub.keep_watching:
                    return
            try:
                version, troubled = self._follow(version)
                if troubled:  # the server said something other than 410 Gone: do not hammer it
                    self.stop.wait(pause)
                    pause = min(pause * 2, 5)
                else:
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

    def _follow(self, version):
        """One watch request from ``version``: (version to go on from (None: list again), whether
        the server reported an error other than an expired version)."""
        for event in self.cluster.watch(self.resource, self.namespace, version, WATCH_SECONDS,
                                        field_selector=self.field_selector, opened=self._opened):
            if self.stop.is_set():
                return version, False
            obj = event.get("object") or {}
            if event.get("type") == "ERROR":  # 410 Gone (expired resourceVersion) or similar: list again
                return None, obj.get("code") != 410
            version = (obj.get("metadata") or {}).get("resourceVersion") or version
            if event.get("type") == "BOOKMARK":
                self._bookmark(version)
            else:
                self._changed(event.get("type"), obj)
        return version, False


def _live_key(obj):
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def _slim(obj):
    """The object without what no health rule reads and that weighs most (a fleet's objects are kept)."""
    (obj.get("metadata") or {}).pop("managedFields", None)
    return obj


def _urllib3_error():
    import urllib3

    return urllib3.exceptions.HTTPError


def not_older(version, than):
    """True when resourceVersion ``version`` is at least ``than`` (None: no bound). Versions are
    compared as integers, as the API server's storage and client-go's MutationCache compare them;
    when one is not an integer it cannot be told, and the newer object is taken to be there."""
    if than is None:
        return True
    try:
        return int(version) >= int(than)
    except (TypeError, ValueError):
        return True


class RunWatches:
    """The WatchHubs of one run: one per client identity (the run's own, an app's impersonated
    one), made on first demand, all closed with the run."""

    def __init__(self):
        self._hubs, self._lock = {}, threading.Lock()

    def hub_for(self, cluster):
        with self._lock:
            hub = self._hubs.get(cluster.identity)
            if hub is None:
                hub = self._hubs[cluster.identity] = WatchHub(cluster)
            return hub

    def close(self):
        with self._lock:
            hubs, self._hubs = list(self._hubs.values()), {}
        for hub in hubs:
            hub.close()
