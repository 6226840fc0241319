# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""apps/v1 ReplicaSet: available replicas, and pods it cannot create (quota, admission)."""

from __future__ import annotations

from .status import Health, condition, condition_text, generation_observed


def replicaset(obj):
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not generation_observed(obj, required=True):
        return Health.PROGRESSING, "waiting for the controller to observe generation %s" % obj["metadata"]["generation"]
    failure = condition(obj, "ReplicaFailure")
    if failure and failure.get("status") == "True":
        return Health.DEGRADED, "cannot create pods: %s" % condition_text(failure)
    wanted = spec.get("replicas", 1)
    available = status.get("availableReplicas", 0)
    if available < wanted:
        return Health.PROGRESSING, "%d of %d replicas are available" % (available, wanted)
    return Health.HEALTHY, "%d of %d replicas are available" % (available, wanted)
