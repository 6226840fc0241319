# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""What may hold a change the decide phase found: deployment windows and promotion gates.

Asked only for an app whose Verdict would apply something (a new revision, a push, self-heal):

- windows (windows.py): the cluster host's ``gitops_windows`` and the app's ``windows``. A
  reconcile outside an allow window or inside a deny window is held; a push there is refused
  unless the run carries an override reason (``gitops_override_window``), which the history entry
  of the sync and the report keep;
- a promotion gate (promotion.py): the app's ``promote_after``, else the cluster host's. A
  reconcile holds a revision until it was recorded healthy long enough on the gate's cluster. A
  push is a person's decision: gates do not hold it.

The gate's cluster is a cluster host of the inventory: its records are read where that host keeps
them (``promotion_clusters``: its connection options and inventory namespace, which the action
plugin fills in from the inventory), one GET of the app's record per run. A gate that names the
run's own cluster host is open (a ``gitops_promote_after`` of a group that holds the gate's
cluster too).

Nothing held is remembered: the next run decides again, and the first one after the window opens
or the gate opens applies the change.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from ..cluster.client import Cluster
from ..cluster.records import Inventory
from ..errors import GitOpsError
from .promotion import parse_gate, promotion_verdict
from .windows import parse_windows, window_verdict

# The keys of a promotion cluster that say where its records are, not how to reach it.
RECORD_PLACE = ("name", "inventory_namespace", "inventory_kind")


@dataclass(frozen=True)
class Gate:
    """What the gates say of one change: ``verdict`` go | hold | refuse, ``reason`` (why it is
    held, refused, or went through a window), ``until`` (epoch seconds it may go, when known),
    ``by`` (window | promotion) and ``override`` (the reason that let a refused push go)."""

    verdict: str
    reason: str = ""
    until: float | None = None
    by: str = ""
    override: str | None = None

    def as_dict(self):
        return {"by": self.by, "reason": self.reason, "until": self.until}


GO = Gate("go")


def app_windows(app):
    """The app's own ``windows`` (parse_windows; GitOpsError naming the app when one is wrong)."""
    return parse_windows(app.get("windows") or None, "application %r: windows" % app.get("name"))


def app_gate(app, default=None):
    """The app's ``promote_after`` (else ``default``, the cluster host's) parsed, or None."""
    if app.get("promote_after"):
        return parse_gate(app["promote_after"], "application %r: promote_after" % app.get("name"))
    return default


class Gates:
    """The windows and promotion gates of one run; ``now`` is taken once (or ``settings.clock``)."""

    def __init__(self, settings):
        self.settings = settings
        self.now = settings.clock if settings.clock is not None else time.time()
        self._places = {place["name"]: place for place in settings.promotion_clusters}
        self._clients, self._lock = {}, threading.Lock()

    def window(self, name, app=None):
        """The Gate of the windows over app ``name`` (``app``: its normalized item, None for an app
        that left ``gitops_apps``, which only the cluster host's windows cover)."""
        settings = self.settings
        windows = list(settings.windows) + (app_windows(app) if app else [])
        verdict = window_verdict(self.now, windows, name, settings.cluster_name, settings.trigger,
                                 settings.override_window)
        if verdict["verdict"] != "go":
            return Gate(verdict["verdict"], verdict["reason"], verdict["until"], "window")
        if verdict["override"]:
            return Gate("go", verdict["reason"], by="window", override=verdict["override"])
        return GO

    def verdict(self, app_sync):
        """The Gate of the change ``app_sync``'s Verdict would apply."""
        settings, app = self.settings, app_sync.app
        window = self.window(app_sync.name, app)
        if window.verdict != "go":
            return window
        gate = app_gate(app, settings.promote_after)
        if gate is None or settings.mode == "push" or gate["cluster"] == settings.cluster_name:
            return window
        promotion = promotion_verdict(gate, app_sync.revision, self.history(gate["cluster"], app_sync.name),
                                      self.now)
        if promotion["open"]:
            return GO
        reason = promotion["message"]
        if promotion["opens_at"] is not None:
            reason += " (opens %s if it stays healthy)" % _utc(promotion["opens_at"])
        return Gate("hold", reason, promotion["opens_at"], "promotion")

    def history(self, name, app):
        """The history of ``app`` on cluster host ``name`` (newest first; empty without a record)."""
        place = self._places.get(name)
        if place is None:
            raise GitOpsError("promote_after: no cluster host %r to read the history of %s from (promotion_clusters "
                              "names %s)" % (name, app, ", ".join(sorted(self._places)) or "none"), cluster=name)
        store = Inventory(self._client(place), place.get("inventory_namespace") or self.settings.inventory_namespace,
                          place.get("inventory_kind") or self.settings.inventory_kind)
        return (store.read(app)[0] or {}).get("history") or []

    def _client(self, place):
        with self._lock:
            if place["name"] not in self._clients:
                # no connection options: the cluster the environment names (K8S_AUTH_*, ~/.kube/config)
                self._clients[place["name"]] = Cluster.from_params(
                    {k: v for k, v in place.items() if k not in RECORD_PLACE and v is not None})
            return self._clients[place["name"]]


def _utc(moment):
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
