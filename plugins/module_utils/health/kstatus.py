# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Any other kind: the generic rules of sigs.k8s.io/cli-utils kstatus.

Controllers that follow the Kubernetes API conventions report observedGeneration and the
Ready / Reconciling / Stalled conditions; objects with no status at all (ConfigMap, Secret,
RBAC, ServiceAccount...) are healthy as soon as they exist.
"""

from __future__ import annotations

from .status import Health, condition, condition_text, generation_observed


def generic(obj):
    if not obj.get("status"):
        return Health.HEALTHY, "exists"
    if not generation_observed(obj):
        return Health.PROGRESSING, "waiting for the controller to observe generation %s" % obj["metadata"]["generation"]
    stalled = condition(obj, "Stalled")
    if stalled and stalled.get("status") == "True":
        return Health.DEGRADED, "stalled: %s" % condition_text(stalled)
    reconciling = condition(obj, "Reconciling")
    if reconciling and reconciling.get("status") == "True":
        return Health.PROGRESSING, "reconciling: %s" % condition_text(reconciling)
    ready = condition(obj, "Ready")
    if ready and ready.get("status") == "True":
        return Health.HEALTHY, "ready" + (": " + ready["message"] if ready.get("message") else "")
    if ready:
        return Health.PROGRESSING, "not ready: %s" % condition_text(ready)
    return Health.HEALTHY, "current"
