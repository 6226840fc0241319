# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""v1 PersistentVolumeClaim: Bound, Pending (waiting for a volume) or Lost."""

from __future__ import annotations

from .status import Health


def persistentvolumeclaim(obj):
    phase = (obj.get("status") or {}).get("phase")
    if phase == "Bound":
        return Health.HEALTHY, "bound to %s" % ((obj.get("spec") or {}).get("volumeName") or "a volume")
    if phase == "Lost":
        return Health.DEGRADED, "lost: its volume no longer exists"
    return Health.PROGRESSING, "pending: waiting for a volume (WaitForFirstConsumer classes bind when a pod uses it)"
