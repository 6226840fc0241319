# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""batch/v1 Job: Complete, Failed, suspended or still running."""

from __future__ import annotations

from .status import Health, condition, condition_text


def _true(obj, kind):
    cond = condition(obj, kind)
    return cond if cond and cond.get("status") == "True" else None


def job(obj):
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    failed = _true(obj, "Failed") or _true(obj, "FailureTarget")
    if failed:
        return Health.DEGRADED, "failed: %s" % condition_text(failed)
    if _true(obj, "Complete"):
        return Health.HEALTHY, "completed: %d succeeded" % status.get("succeeded", 0)
    if spec.get("suspend"):
        return Health.SUSPENDED, "suspended"
    return Health.PROGRESSING, "running: %d active, %d of %d succeeded, %d failed" % (
        status.get("active", 0), status.get("succeeded", 0), spec.get("completions") or 1, status.get("failed", 0))
