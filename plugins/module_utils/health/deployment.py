# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""apps/v1 Deployment: the checks of `kubectl rollout status`, plus paused and failure conditions."""

from __future__ import annotations

from .status import Health, condition, condition_text, generation_observed


def deployment(obj):
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if spec.get("paused"):
        return Health.SUSPENDED, "rollout is paused"
    if not generation_observed(obj, required=True):
        return Health.PROGRESSING, "waiting for the controller to observe generation %s" % obj["metadata"]["generation"]
    progressing = condition(obj, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health.DEGRADED, "progress deadline exceeded: %s" % condition_text(progressing)
    failure = condition(obj, "ReplicaFailure")
    if failure and failure.get("status") == "True":
        return Health.DEGRADED, "cannot create pods: %s" % condition_text(failure)
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    total = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < wanted:
        return Health.PROGRESSING, "%d of %d replicas are updated" % (updated, wanted)
    if total > updated:
        return Health.PROGRESSING, "%d old replicas are pending termination" % (total - updated)
    if available < updated:
        return Health.PROGRESSING, "%d of %d updated replicas are available" % (available, updated)
    return Health.HEALTHY, "%d of %d replicas are available" % (available, wanted)
