# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The health vocabulary (status names, their order) and reading status conditions."""

from __future__ import annotations


class Health:
    HEALTHY = "Healthy"
    SUSPENDED = "Suspended"
    PROGRESSING = "Progressing"
    MISSING = "Missing"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"

    # Best to worst: the overall status of many objects is the worst of theirs.
    ORDER = (HEALTHY, SUSPENDED, PROGRESSING, MISSING, DEGRADED, UNKNOWN)
    # An object in one of these states will not change by waiting longer.
    SETTLED = (HEALTHY, SUSPENDED)


_RANK = {name: rank for rank, name in enumerate(Health.ORDER)}


def worst(statuses):
    """The worst of ``statuses`` (Healthy when there are none)."""
    return max(statuses, key=_RANK.__getitem__, default=Health.HEALTHY)


def condition(obj, kind):
    """The status condition of type ``kind`` (a dict), or None."""
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return cond
    return None


def condition_text(cond):
    """``reason: message`` of a condition, whichever parts it has."""
    parts = [cond.get("reason"), cond.get("message")]
    return ": ".join(p for p in parts if p) or "%s=%s" % (cond.get("type"), cond.get("status"))


def generation_observed(obj, required=False):
    """False while the controller has not yet seen the latest spec (status.observedGeneration behind).

    ``required``: the kind's controller always reports observedGeneration, so its absence means
    the controller has not looked at the object yet (built-in workloads); otherwise a missing
    field means the kind does not report it (many CRDs).
    """
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    if generation is None:
        return True
    if observed is None:
        return not required
    return observed >= generation
