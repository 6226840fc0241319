# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""apps/v1 StatefulSet: ready replicas, partitioned rollouts, OnDelete, current vs update revision."""

from __future__ import annotations

from .status import Health, generation_observed


def statefulset(obj):
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not generation_observed(obj, required=True):
        return Health.PROGRESSING, "waiting for the controller to observe generation %s" % obj["metadata"]["generation"]
    wanted = spec.get("replicas", 1)
    ready = status.get("readyReplicas", 0)
    if ready < wanted:
        return Health.PROGRESSING, "%d of %d replicas are ready" % (ready, wanted)
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") == "OnDelete":
        # pods are only replaced when someone deletes them: nothing to wait for
        return Health.HEALTHY, "%d replicas ready (OnDelete: pods update when deleted)" % ready
    partition = (strategy.get("rollingUpdate") or {}).get("partition") or 0
    updated = status.get("updatedReplicas", 0)
    if partition > 0:
        target = max(wanted - partition, 0)
        if updated < target:
            return Health.PROGRESSING, "partitioned rollout: %d of %d pods updated" % (updated, target)
        return Health.HEALTHY, "partitioned rollout complete: %d pods updated, %d held back" % (updated, partition)
    if status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
        return Health.PROGRESSING, "rolling update: %d of %d pods at revision %s" % (
            updated, wanted, status["updateRevision"])
    return Health.HEALTHY, "%d of %d replicas are ready" % (ready, wanted)
