# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""autoscaling HorizontalPodAutoscaler: able to scale and reading its metrics."""

from __future__ import annotations

from .status import Health, condition, condition_text


def horizontalpodautoscaler(obj):
    able, active = condition(obj, "AbleToScale"), condition(obj, "ScalingActive")
    if able is None and active is None:
        return Health.PROGRESSING, "waiting for the autoscaler to evaluate it"
    if able and able.get("status") == "False":
        return Health.DEGRADED, "cannot scale: %s" % condition_text(able)
    if active and active.get("status") == "False":
        if active.get("reason") == "ScalingDisabled":
            return Health.SUSPENDED, "scaling disabled: %s" % condition_text(active)
        return Health.DEGRADED, "cannot compute a replica count: %s" % condition_text(active)
    status = obj.get("status") or {}
    message = "%s current / %s desired replicas" % (status.get("currentReplicas", 0), status.get("desiredReplicas", 0))
    limited = condition(obj, "ScalingLimited")
    if limited and limited.get("status") == "True":
        message += " (limited: %s)" % condition_text(limited)
    return Health.HEALTHY, message
