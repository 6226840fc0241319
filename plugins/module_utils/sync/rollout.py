# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Rollout waves: which cluster hosts each wave of ``gitops_rollout`` takes, and whether it passed.

A wave (one mapping of the ``gitops_rollout`` list):

  hosts               what the wave takes: one or a list of
                      - a group of the inventory (its hosts that are in the run),
                      - a cluster host name, or a glob on them ("prod-eu-*"),
                      - a percentage ("25%"), cumulative as in staged rollouts: the waves so
                        far (this one's names included) reach P% of the run's cluster hosts,
                        rounded down but at least one (as Ansible rounds ``serial``), taking
                        the next hosts in the run's order. On 8 hosts, canary / "25%" / "100%"
                        is 1, 1 and 6 hosts (``serial``, which sizes each batch alone: 1, 2, 5).
  bake                how long its clusters must stay healthy after they are (default 0)
  max_unavailable     how many of its clusters may fail with the wave still passing: a count
                      or "N%" of the wave's clusters, rounded down (as Kubernetes rounds it)
  max_fail_percentage the same as Ansible writes it: the wave fails when more than N percent
                      of its clusters fail. One of the two per wave (default: none may fail).

A host is in the first wave that takes it; a wave that takes nothing new is empty (it passes at
once, with no bake). Every cluster host of the run must be in a wave: a rollout that ends with
"100%" says where the rest goes, one that does not is refused rather than leaving hosts out.
"""

from __future__ import annotations

import fnmatch
import math
import re
from fractions import Fraction

from ..errors import GitOpsError
from .durations import seconds

WAVE_KEYS = ("hosts", "bake", "max_unavailable", "max_fail_percentage")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)\s*(%?)")


def plan_waves(waves, hosts, groups=None, where="gitops_rollout"):
    """The waves resolved over ``hosts`` (the run's cluster hosts, in order) with ``groups``
    (group name -> host names, Ansible's ``groups``); GitOpsError naming the wave when one is wrong.

    Returns a list of {number, name, hosts, bake, max_failures}: ``number`` counts from 1,
    ``name`` reads "wave 2 (25%)" in messages, ``max_failures`` is how many of the wave's hosts
    may fail with the wave still passing.
    """
    if not isinstance(waves, list) or not waves:
        raise GitOpsError("%s: expected a non-empty list of waves, got %r" % (where, waves), option=where)
    groups = groups or {}
    known = set(hosts).union(*(members for members in groups.values()))
    taken, plan = set(), []
    for number, wave in enumerate(waves, start=1):
        selectors = _selectors(wave, "%s wave %d" % (where, number))
        name = "wave %d (%s)" % (number, ", ".join(selectors))
        label = "%s %s" % (where, name)
        chosen = _resolve(selectors, hosts, groups, known, taken, label)
        taken.update(chosen)
        plan.append({"number": number, "name": name, "hosts": chosen,
                     "bake": seconds(wave.get("bake", 0), label + " bake"),
                     "max_failures": _max_failures(wave, len(chosen), label)})
    left = [host for host in hosts if host not in taken]
    if left:
        raise GitOpsError("%s: %s in no wave; end the waves with {hosts: \"100%%\"} to take the rest"
                          % (where, _some(left, "is", "are")), option=where, hosts=left)
    return plan


def _selectors(wave, label):
    if not isinstance(wave, dict):
        raise GitOpsError("%s: expected a mapping such as {hosts: canary, bake: 300}, got %r" % (label, wave),
                          option=label)
    unknown = sorted(set(wave) - set(WAVE_KEYS))
    if unknown:
        raise GitOpsError("%s: unknown key %s (known: %s)" % (label, ", ".join(unknown), ", ".join(WAVE_KEYS)),
                          option=label)
    value = wave.get("hosts")
    selectors = [value] if isinstance(value, str) else value
    if not isinstance(selectors, list) or not selectors or not all(isinstance(s, str) and s.strip() for s in selectors):
        raise GitOpsError("%s: hosts must be a group, a cluster host name or glob, a percentage such as \"25%%\", "
                          "or a list of them, not %r" % (label, value), option=label)
    return [selector.strip() for selector in selectors]


def _resolve(selectors, hosts, groups, known, taken, label):
    """The hosts, in run order, that the wave's selectors add to those ``taken`` by earlier waves."""
    named, percents = set(), []
    for selector in selectors:
        match = _PERCENT.fullmatch(selector)
        if match:
            percents.append(_percent(match.group(1), label))
        elif selector in groups:
            named.update(groups[selector])
        elif any(fnmatch.fnmatchcase(host, selector) for host in known):
            named.update(host for host in known if fnmatch.fnmatchcase(host, selector))
        else:
            raise GitOpsError("%s: no group or cluster host matches %r" % (label, selector), option=label)
    chosen = [host for host in hosts if host in named and host not in taken]
    if percents:
        # Cumulative: with the earlier waves and this wave's names, reach the target count.
        target = max(1, math.floor(len(hosts) * max(percents) / 100)) if hosts else 0
        wanted = max(0, target - len(taken) - len(chosen))
        extra = set([host for host in hosts if host not in taken and host not in named][:wanted])
        chosen = [host for host in hosts if host in extra or (host in named and host not in taken)]
    return chosen


def _percent(text, label):
    # A Fraction, not a float: 29% of 100 hosts must be 29, and 0.29 * 100 is 28.999999999999996.
    value = Fraction(text)
    if not 0 < value <= 100:
        raise GitOpsError("%s: a percentage is more than 0 and at most 100, not %s%%" % (label, text), option=label)
    return value


def _max_failures(wave, size, label):
    if "max_unavailable" in wave and "max_fail_percentage" in wave:
        raise GitOpsError("%s: max_unavailable and max_fail_percentage say the same thing; give one" % label,
                          option=label)
    if "max_fail_percentage" in wave:
        return _share(wave["max_fail_percentage"], size, label + " max_fail_percentage", percent_only=True)
    return _share(wave.get("max_unavailable", 0), size, label + " max_unavailable")


def _share(value, size, label, percent_only=False):
    """How many of ``size`` hosts ``value`` lets fail: a whole count, or N percent of them rounded
    down (Ansible's max_fail_percentage fails a batch when more than N percent failed)."""
    match = _AMOUNT.fullmatch(str(value).strip()) if not isinstance(value, bool) else None
    percent = bool(match) and (percent_only or match.group(2) == "%")
    amount = Fraction(match.group(1)) if match else None
    if amount is None or (percent and amount > 100) or (not percent and amount.denominator != 1):
        kind = "a percentage from 0 to 100" if percent_only else "a whole count or a percentage such as \"25%\""
        raise GitOpsError("%s: expected %s, not %r" % (label, kind, value), option=label)
    return math.floor(size * amount / 100) if percent else int(amount)


def wave_verdict(wave, outcomes):
    """Did ``wave`` (one entry of plan_waves) pass, given ``outcomes``: host -> True when all its
    selected apps were synced and healthy through the bake, False when not. A host of the wave
    with no outcome (unreachable, the run stopped) failed: nothing says it is healthy.

    Returns {passed, failed, message}; ``failed`` lists the wave's failed hosts in order, even
    when few enough of them failed for the wave to pass.
    """
    failed = [host for host in wave["hosts"] if not outcomes.get(host)]
    passed = len(failed) <= wave["max_failures"]
    size = len(wave["hosts"])
    if not size:
        return {"passed": True, "failed": [], "message": "%s passed: the waves before took its clusters" % wave["name"]}
    if not failed:
        return {"passed": True, "failed": [], "message": "%s passed: %s healthy" % (wave["name"], _clusters(size))}
    described = ", ".join(host if host in outcomes else host + " (no outcome)" for host in failed)
    message = "%s %s: %s of %s failed: %s; %s may fail" % (
        wave["name"], "passed" if passed else "failed", len(failed), _clusters(size), described,
        "at most %d" % wave["max_failures"] if wave["max_failures"] else "none")
    return {"passed": passed, "failed": failed, "message": message}


def host_waves(plan):
    """host -> the number of its wave, for the playbook to give each cluster host its place."""
    return {host: wave["number"] for wave in plan for host in wave["hosts"]}


def _clusters(count):
    return "%d cluster%s" % (count, "" if count == 1 else "s")


def _some(hosts, singular, plural, shown=5):
    more = " and %d more" % (len(hosts) - shown) if len(hosts) > shown else ""
    return "%s%s %s" % (", ".join(hosts[:shown]), more, singular if len(hosts) == 1 else plural)
