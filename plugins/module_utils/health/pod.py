# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""v1 Pod: ready, completed, or stuck in a state that waiting will not fix."""

from __future__ import annotations

from .status import Health, condition, condition_text

# Container waiting reasons that mean "broken until someone changes something".
FAILING_REASONS = frozenset([
    "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName",
    "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
])


def _container_failure(status):
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in FAILING_REASONS:
            text = "container %s: %s" % (container.get("name"), waiting["reason"])
            return text + (": " + waiting["message"] if waiting.get("message") else "")
    return None


def _terminated_reason(status):
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        done = (container.get("state") or {}).get("terminated") or {}
        if done.get("exitCode"):
            return "container %s exited with code %s (%s)" % (
                container.get("name"), done["exitCode"], done.get("message") or done.get("reason") or "no reason")
    return None


def pod(obj):
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    phase = status.get("phase")
    if phase == "Succeeded":
        return Health.HEALTHY, "completed"
    if phase == "Failed":
        why = status.get("message") or status.get("reason") or _terminated_reason(status) or "no reason given"
        return Health.DEGRADED, "failed: %s" % why
    failure = _container_failure(status)
    if failure:
        return Health.DEGRADED, failure
    if phase == "Pending" or not phase:
        scheduled = condition(obj, "PodScheduled")
        if scheduled and scheduled.get("status") == "False":
            return Health.PROGRESSING, "not scheduled: %s" % condition_text(scheduled)
        return Health.PROGRESSING, "pending"
    if spec.get("restartPolicy") in ("Never", "OnFailure"):
        return Health.PROGRESSING, "running (a pod with restartPolicy %s is healthy once it completes)" % spec["restartPolicy"]
    ready = condition(obj, "Ready")
    if ready and ready.get("status") == "True":
        return Health.HEALTHY, "ready"
    waiting = [c.get("name") for c in status.get("containerStatuses") or [] if not c.get("ready")]
    return Health.PROGRESSING, "containers not ready: %s" % (", ".join(waiting) or "readiness gates pending")
