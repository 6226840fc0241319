# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Deployment windows: may an app sync on a cluster at a given time, and if not, until when.

A rule (one mapping of ``gitops_windows`` on a cluster host or an app):

  kind      allow | deny
  schedule  when each window opens: five-field cron (minute hour day-of-month month day-of-week;
            names such as FRI or JAN work) or @yearly, @monthly, @weekly, @daily, @hourly
  duration  how long each window stays open: seconds or "2h30m" (see durations.py), on the clock
            of ``timezone`` (see below)
  timezone  the IANA zone the schedule is read in (default UTC)
  apps      globs on app names (default: every app)
  clusters  globs on cluster host names (default: every cluster)
  manual    true: a push (a sync a person started) may go while this window holds syncs

A rule applies to an app on a cluster when the app matches one of ``apps`` and the cluster one
of ``clusters``. (Argo CD ORs its filters unless told to AND them; a rule meant for the prod
clusters of one app would then hold that app everywhere.) Of the rules that apply, as Argo CD's
sync windows decide:

- none: go;
- a deny window is open: held (deny wins over allow); a push goes when every open deny window
  has ``manual: true``;
- allow windows exist: go while one is open; outside all of them held, and a push goes when every
  allow window has ``manual: true``.

A push that would be held is refused, unless an override reason is given (recorded by the caller).

Across DST changes, windows keep to the clock on the wall, as people write them. Schedules at
fixed times follow Debian cron (cronsim does): a start in the hour a spring-forward night skips
happens at the first minute after it; a start in the hour a fall-back night repeats happens once,
in its first pass. A window closes the first time after its start that the clock reads its start
time plus ``duration`` (or the first minute after, when the clock skips that time): a freeze
"0 18 * * 5" for 2d12h ends on Monday at 06:00 local time also on the weekends the clocks change,
59 or 61 hours later. (Argo CD adds elapsed time, and its window ends at 07:00 or 05:00.)

Time is an argument (epoch seconds): nothing here reads the clock or sleeps.
"""

from __future__ import annotations

import fnmatch
import heapq
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from ..deps import import_library
from ..errors import GitOpsError
from .durations import describe, seconds

RULE_KEYS = ("kind", "schedule", "duration", "timezone", "apps", "clusters", "manual")
# Argo CD (robfig/cron's standard parser) accepts these; cronsim takes five fields only.
DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
               "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
# How far ahead the end of a hold is looked for. A year covers every yearly window; the boundary
# count bounds the work when a frequent deny window (every minute, lasting an hour) never ends.
HORIZON = 366 * 86400
MAX_BOUNDARIES = 2000
# The most a DST change moves a clock (2 h: Antarctica/Troll): a window open at a moment started
# at most its duration plus this before it.
CLOCK_SHIFT = 3 * 3600


@dataclass(frozen=True)
class Window:
    """One validated rule; ``label`` says where it was written ("gitops_windows[0]")."""

    label: str
    kind: str
    schedule: str
    duration: float
    zone: ZoneInfo
    apps: tuple
    clusters: tuple
    manual: bool

    def applies(self, app, cluster):
        return any(fnmatch.fnmatchcase(app, glob) for glob in self.apps) and \
            any(fnmatch.fnmatchcase(cluster, glob) for glob in self.clusters)

    def describe(self):
        return '%s ("%s" for %s, %s)' % (self.label, self.schedule, describe(self.duration), self.zone.key)


def parse_windows(rules, where="gitops_windows"):
    """The rules (a list of mappings, or None) as Windows; GitOpsError naming the rule when one is wrong.

    ``where`` names the list in messages: rules of a cluster host and of an app are parsed apart
    and their Windows joined, so that each error and verdict says which list the rule is in.
    """
    if rules is None:
        return []
    if not isinstance(rules, list):
        raise GitOpsError("%s: expected a list of window rules, got %s" % (where, type(rules).__name__), option=where)
    return [_window(rule, "%s[%d]" % (where, index)) for index, rule in enumerate(rules)]


def _window(rule, label):
    if not isinstance(rule, dict):
        raise GitOpsError("%s: expected a mapping, got %r" % (label, rule), option=label)
    unknown = sorted(set(rule) - set(RULE_KEYS))
    if unknown:
        raise GitOpsError("%s: unknown key %s (known: %s)" % (label, ", ".join(unknown), ", ".join(RULE_KEYS)),
                          option=label)
    missing = [key for key in ("kind", "schedule", "duration") if rule.get(key) in (None, "")]
    if missing:
        raise GitOpsError("%s: %s required" % (label, " and ".join(missing)), option=label)
    if rule["kind"] not in ("allow", "deny"):
        raise GitOpsError("%s: kind must be allow or deny, not %r" % (label, rule["kind"]), option=label)
    if not isinstance(rule.get("manual", False), bool):
        raise GitOpsError("%s: manual must be true or false, not %r" % (label, rule["manual"]), option=label)
    return Window(label, rule["kind"], _schedule(rule["schedule"], label),
                  seconds(rule["duration"], label + ".duration", positive=True),
                  _zone(rule.get("timezone") or "UTC", label), _globs(rule, "apps", label),
                  _globs(rule, "clusters", label), rule.get("manual", False))


def _schedule(expr, label):
    """The cron expression, checked by cronsim now rather than at the first run it would hold."""
    text = " ".join(str(expr).split())
    text = DESCRIPTORS.get(text.lower(), text)
    cronsim = _cronsim()
    try:
        if len(text.split()) != 5:  # cronsim would read six fields as seconds first, Argo CD refuses them
            raise cronsim.CronSimError("expected five fields (minute hour day-of-month month day-of-week)")
        cronsim.CronSim(text, datetime(2000, 1, 1, tzinfo=timezone.utc))
    except cronsim.CronSimError as err:
        raise GitOpsError('%s: schedule "%s": %s' % (label, expr, err), option=label) from None
    return text


def _zone(name, label):
    try:
        return ZoneInfo(str(name))
    except (ValueError, LookupError):  # ZoneInfoNotFoundError is a KeyError
        raise GitOpsError("%s: unknown timezone %r (an IANA name such as Europe/Berlin; is the tz database "
                          "installed? pip install tzdata)" % (label, name), option=label) from None


def _globs(rule, key, label):
    value = rule.get(key)
    if value is None:
        return ("*",)
    globs = (value,) if isinstance(value, str) else value
    if not isinstance(globs, (list, tuple)) or not globs or not all(isinstance(g, str) and g for g in globs):
        raise GitOpsError("%s: %s must be a non-empty list of globs (leave it out for all), not %r"
                          % (label, key, value), option=label)
    return tuple(globs)


def _cronsim():
    return import_library("cronsim", "cronsim", "gitops_windows")


def window_verdict(now, windows, app, cluster, trigger="pull", override=None):
    """May ``app`` sync on ``cluster`` at ``now`` (epoch seconds) under ``windows`` (parse_windows)?

    ``trigger`` is "push" (a person started the sync) or "pull" (reconcile, self-heal).
    ``override`` (the reason of ``gitops_override_window``) lets a refused push go; it is for
    pushes only, so that a scheduled reconcile that carries one cannot run through every freeze.

    Returns {verdict: go | hold | refuse, reason, until, windows, override}: ``reason`` says
    which windows decided (empty for a plain go); ``until`` is, for hold and refuse, the first
    moment (epoch seconds) the same sync may go, None when no window opens within HORIZON;
    ``windows`` the labels of the deciding windows; ``override`` the reason that let a push go.
    """
    applicable = [window for window in windows if window.applies(app, cluster)]
    push = trigger == "push"
    held = _holding(now, applicable, push=False)
    if held is None:
        return _verdict("go")
    kind, deciding = held
    reason = _reason(kind, deciding)
    if push and _holding(now, applicable, push=True) is None:
        return _verdict("go", reason + "; manual: true lets pushes through", deciding)
    if push and override:
        return _verdict("go", "%s; overridden: %s" % (reason, override), deciding, override=override)
    opening = _opening(now, applicable, push)
    if opening is None:
        reason += "; no opening within the next %d days" % (HORIZON // 86400)
    else:
        reason += " until " + _local_time(*opening)
    if push:
        reason += '; push anyway with -e gitops_override_window="<reason>"'
    return _verdict("refuse" if push else "hold", reason, deciding, until=opening and opening[0])


def _verdict(verdict, reason="", deciding=(), until=None, override=None):
    return {"verdict": verdict, "reason": reason, "until": until,
            "windows": [window.label for window in deciding], "override": override}


def _reason(kind, deciding):
    described = ", ".join(window.describe() for window in deciding)
    plural = "s" if len(deciding) > 1 else ""
    if kind == "deny":
        return "inside deny window%s %s" % (plural, described)
    return "outside allow window%s %s" % (plural, described)


def _holding(when, windows, push):
    """What holds a sync at ``when``: ("deny", the open deny windows), ("allow", the allow windows,
    none open), or None when it may go. Argo CD's CanSync, ``push`` being its manual sync."""
    open_now = [window for window in windows if _is_open(window, when)]
    denies = [window for window in open_now if window.kind == "deny"]
    if denies:
        return None if push and all(window.manual for window in denies) else ("deny", denies)
    allows = [window for window in windows if window.kind == "allow"]
    if not allows or any(window.kind == "allow" for window in open_now):
        return None
    return None if push and all(window.manual for window in allows) else ("allow", allows)


def _is_open(window, when):
    """Whether an occurrence of ``window`` covers ``when``."""
    for start in _starts(window, when - window.duration - CLOCK_SHIFT):
        if start > when:
            return False
        if _end(window, start) > when:
            return True
    return False


def _opening(now, windows, push):
    """(moment, zone): the first moment after ``now`` that the sync may go, and the zone of the
    window whose start or end it is (for the message); None when none within HORIZON.

    A hold can only end where a deny window closes or an allow window opens, so those boundaries
    are visited in time order (merged from each window's own ascending ones), and the verdict at
    each is worked out again until one lets the sync go.
    """
    boundaries = heapq.merge(*(_boundaries(window, index, now) for index, window in enumerate(windows)))
    for count, (moment, index) in enumerate(boundaries):
        if moment > now + HORIZON or count >= MAX_BOUNDARIES:
            return None
        if _holding(moment, windows, push) is None:
            return moment, windows[index].zone
    return None


def _boundaries(window, index, now):
    """(moment, index) after ``now`` where ``window`` can let a held sync go, ascending."""
    if window.kind == "deny":
        ends = (_end(window, start) for start in _starts(window, now - window.duration - CLOCK_SHIFT))
        return ((end, index) for end in ends if end > now)
    return ((start, index) for start in _starts(window, now))


def _starts(window, after):
    """Epoch seconds of the window's starts later than ``after``, ascending, without end."""
    local = datetime.fromtimestamp(math.floor(after), window.zone)
    for start in _cronsim().CronSim(window.schedule, local):
        moment = start.timestamp()
        # From a time in the second pass of a repeated (fall-back) hour, cronsim's Debian-cron
        # handling yields the first pass of a start in that hour, which is earlier: skip it.
        if moment > after:
            yield moment


def _end(window, start):
    """When the occurrence that began at ``start`` closes (see the module's DST paragraph)."""
    wall = datetime.fromtimestamp(start, window.zone).replace(tzinfo=None) + timedelta(seconds=window.duration)
    while _skipped(wall, window.zone):
        wall = wall.replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = wall.replace(tzinfo=window.zone).timestamp()
    # A time the clock shows twice: the first pass, unless the window began in the second one.
    return end if end > start else wall.replace(tzinfo=window.zone, fold=1).timestamp()


def _skipped(wall, zone):
    """Whether the clock of ``zone`` never shows ``wall`` (a spring-forward gap)."""
    aware = wall.replace(tzinfo=zone)
    return aware.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) != wall


def _local_time(moment, zone):
    local = datetime.fromtimestamp(moment, zone)
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if local.second else "%Y-%m-%d %H:%M %Z")
