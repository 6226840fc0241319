# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""apps/v1 DaemonSet: every scheduled node runs an updated, available pod."""

from __future__ import annotations

from .status import Health, generation_observed


def daemonset(obj):
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not generation_observed(obj, required=True):
        return Health.PROGRESSING, "waiting for the controller to observe generation %s" % obj["metadata"]["generation"]
    wanted = status.get("desiredNumberScheduled", 0)
    available = status.get("numberAvailable", 0)
    if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        if available < wanted:
            return Health.PROGRESSING, "%d of %d pods are available" % (available, wanted)
        return Health.HEALTHY, "%d pods available (OnDelete: pods update when deleted)" % available
    updated = status.get("updatedNumberScheduled", 0)
    if updated < wanted:
        return Health.PROGRESSING, "%d of %d pods are updated" % (updated, wanted)
    if available < wanted:
        return Health.PROGRESSING, "%d of %d updated pods are available" % (available, wanted)
    return Health.HEALTHY, "%d of %d pods are available" % (available, wanted)
