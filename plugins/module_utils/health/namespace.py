# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""v1 Namespace: Active, or Terminating (with what blocks the deletion)."""

from __future__ import annotations

from .status import Health, condition_text


def namespace(obj):
    status = obj.get("status") or {}
    if status.get("phase", "Active") == "Active":
        return Health.HEALTHY, "active"
    blocking = [condition_text(c) for c in status.get("conditions") or [] if c.get("status") == "True"]
    return Health.PROGRESSING, "terminating" + (": " + "; ".join(blocking) if blocking else "")
