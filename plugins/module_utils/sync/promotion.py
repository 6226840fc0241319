# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Promotion gates: a revision goes to this cluster only after it was healthy long enough on another.

``promote_after: {cluster: staging, healthy_for: 3600}`` on an app or a cluster host. The gate
reads the app's history on the other cluster (inventory.py: newest first, entries
{revision, time, result, health?, health_time?}), so separate jobs or schedules keep the order.

How long a revision has been healthy there: its newest run of consecutive history entries
(re-syncs of the same revision do not reset the clock), counted from the health verdict of the
oldest entry of the run's unbroken healthy part (Healthy or Suspended, as rollbacks count it)
until the next revision replaced it there, or until now when it still runs there. The newest
entry may have no verdict yet (its health wait is under way): it neither counts nor breaks.
A revision replaced before it was healthy long enough keeps the gate closed: it never proved
itself. Only recorded verdicts count; health between runs is not seen.
"""

from __future__ import annotations

import re

from ..errors import GitOpsError
from ..health.status import Health
from .durations import describe, seconds

GATE_KEYS = ("cluster", "healthy_for")
_SHA = re.compile(r"[0-9a-f]{40}")


def parse_gate(gate, where="promote_after"):
    """{cluster, healthy_for (seconds)} from the mapping a user wrote; GitOpsError naming ``where``."""
    if not isinstance(gate, dict) or not isinstance(gate.get("cluster"), str) or not gate["cluster"]:
        raise GitOpsError("%s: expected {cluster: <cluster host>, healthy_for: <duration>}, got %r" % (where, gate),
                          option=where)
    unknown = sorted(set(gate) - set(GATE_KEYS))
    if unknown:
        raise GitOpsError("%s: unknown key %s (known: %s)" % (where, ", ".join(unknown), ", ".join(GATE_KEYS)),
                          option=where)
    return {"cluster": gate["cluster"], "healthy_for": seconds(gate.get("healthy_for", 0), where + " healthy_for")}


def promotion_verdict(gate, revision, history, now):
    """May ``revision`` go here at ``now`` (epoch seconds), given the app's ``history`` on the gate's
    cluster (newest first; empty or None when the app has no record there)?

    Returns {open, message, healthy_for, required, opens_at}: ``healthy_for`` the seconds the
    revision has been (or was) healthy there, ``opens_at`` the moment the gate opens if the
    revision stays healthy there (None when open, or when waiting cannot open it).
    """
    required, where = gate["healthy_for"], gate["cluster"]
    run, replaced_at = _newest_run(history or (), revision)
    since = _healthy_since(run)
    if since is None:
        return _verdict(False, "waiting for %s: %s" % (where, _not_healthy(run, revision)), 0, required)
    healthy_for = max(0.0, (replaced_at if replaced_at is not None else now) - since)
    if healthy_for >= required:
        return _verdict(True, "%s was healthy on %s for %s (%s required)"
                        % (_short(revision), where, describe(healthy_for), describe(required)), healthy_for, required)
    if replaced_at is not None:
        return _verdict(False, "waiting for %s: %s was replaced there after being healthy for %s"
                        % (where, _short(revision), _amount(healthy_for, required)), healthy_for, required)
    return _verdict(False, "waiting for %s: healthy for %s" % (where, _amount(healthy_for, required)),
                    healthy_for, required, opens_at=since + required)


def _verdict(is_open, message, healthy_for, required, opens_at=None):
    return {"open": is_open, "message": message, "healthy_for": healthy_for, "required": required,
            "opens_at": opens_at}


def _newest_run(history, revision):
    """(entries of the newest run of ``revision``, newest first; the time of the entry that replaced
    the run, None when the run is the newest)."""
    run, replaced_at = [], None
    for entry in history:
        if entry.get("revision") == revision:
            run.append(entry)
        elif run:
            break
        else:
            replaced_at = entry.get("time")
    return run, replaced_at


def _healthy_since(run):
    """The health_time at which the run's unbroken healthy part began, or None."""
    since = None
    for position, entry in enumerate(run):
        if entry.get("result") == "Succeeded" and entry.get("health") in Health.SETTLED:
            since = entry.get("health_time", entry.get("time"))
        elif not (position == 0 and entry.get("result") == "Succeeded" and entry.get("health") is None):
            break
    return since


def _not_healthy(run, revision):
    """Why ``revision`` has no healthy run to count, from its newest entry."""
    if not run:
        return "%s is not deployed there yet" % _short(revision)
    newest = run[0]
    if newest.get("result") != "Succeeded":
        return "the sync of %s failed there" % _short(revision)
    if newest.get("health") is None:
        return "%s is synced there, its health not recorded yet" % _short(revision)
    return "%s is %s there" % (_short(revision), newest["health"])


def _amount(healthy_for, required):
    """"12 of 60 minutes": minutes when the requirement is whole minutes, seconds otherwise."""
    if required >= 60 and required % 60 == 0:
        return "%d of %d minutes" % (healthy_for // 60, required // 60)
    return "%d of %d seconds" % (healthy_for, required)


def _short(revision):
    # A git commit reads as its first 7 hex digits, as everywhere in messages; a chart revision whole.
    return revision[:7] if _SHA.fullmatch(revision or "") else revision
