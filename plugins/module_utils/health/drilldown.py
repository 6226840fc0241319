# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Why objects are not healthy: the summary a failed wait ends with.

Every unhealthy object with its reason, then (for the first few) its latest Warning events and,
for workloads, the unhealthy pods they own with theirs. Best effort: what cannot be read (no
right to list events, pods gone) is left out, since every object's own verdict is already listed.
"""

from __future__ import annotations

from ..errors import GitOpsError
from . import Health, assess
from ..refs import describe, group_of, key_of, ref_of

# Workloads whose unhealthy pods are listed in the summary, and how much of it.
POD_OWNERS = {("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet"), ("apps", "ReplicaSet"),
              ("batch", "Job")}
MAX_DRILLDOWN, PODS_PER_OWNER, EVENTS_PER_OBJECT = 10, 3, 3


def unhealthy_summary(cluster, resources, objects, outcome, elapsed):
    """``resources`` as wait_healthy returns them, ``objects`` the live objects by ref key."""
    bad = [r for r in resources if r["status"] not in Health.SETTLED]
    lines = ["%d of %d objects are not healthy (%s after %.1fs):" % (len(bad), len(resources), outcome, elapsed)]
    events = _Events(cluster)
    for number, entry in enumerate(bad):
        ref = entry["ref"]
        lines.append("%s: %s (%s)" % (describe(ref), entry["message"], entry["status"]))
        if number >= MAX_DRILLDOWN:
            continue
        lines.extend("  " + text for text in events.warnings(ref))
        obj = objects.get(key_of(ref))
        if obj and (group_of(ref["apiVersion"]), ref["kind"]) in POD_OWNERS:
            for pod, (status, message) in _unhealthy_pods(cluster, obj):
                lines.append("  %s: %s (%s)" % (describe(pod), message, status))
                lines.extend("    " + text for text in events.warnings(pod))
    return "\n".join(lines)


def label_selector(selector):
    """A LabelSelector object as the query-string syntax the API accepts."""
    parts = ["%s=%s" % item for item in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, operator, values = expr["key"], expr["operator"], ",".join(expr.get("values") or [])
        parts.append({"In": "%s in (%s)" % (key, values), "NotIn": "%s notin (%s)" % (key, values),
                      "Exists": key, "DoesNotExist": "!" + key}[operator])
    return ",".join(parts)


def _unhealthy_pods(cluster, owner):
    selector = (owner.get("spec") or {}).get("selector")
    if not selector:
        return []
    try:
        pods = cluster.list(cluster.resource("v1", "Pod"), owner["metadata"].get("namespace"),
                            label_selector=label_selector(selector))[0]
    except GitOpsError:
        return []  # the summary is best effort; the object's own verdict is already listed
    verdicts = [(ref_of(pod), assess(pod)) for pod in pods]
    return [(ref, verdict) for ref, verdict in verdicts if verdict[0] not in Health.SETTLED][:PODS_PER_OWNER]


class _Events:
    """Latest Warning events per object: one list per namespace (core v1 events)."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.by_namespace = {}

    def warnings(self, ref):
        namespace = ref.get("namespace") or ""
        if namespace not in self.by_namespace:
            self.by_namespace[namespace] = self._load(namespace)
        found = self.by_namespace[namespace].get((ref["kind"], ref["name"]), [])
        found.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or
                   (e.get("metadata") or {}).get("creationTimestamp") or "", reverse=True)
        lines = []
        for event in found:
            line = "Warning %s: %s" % (event.get("reason"), (event.get("message") or "").strip())
            if line not in lines:  # the same complaint repeated by several event objects
                lines.append(line)
        return lines[:EVENTS_PER_OBJECT]

    def _load(self, namespace):
        try:
            # cluster-scoped objects' events: every namespace, involvedObject.namespace empty
            selector = "type=Warning" + ("" if namespace else ",involvedObject.namespace=")
            items = self.cluster.list(self.cluster.resource("v1", "Event"), namespace or None, field_selector=selector)[0]
        except GitOpsError:
            return {}  # no right to read events: the summary still lists every object's reason
        index = {}
        for event in items:
            involved = event.get("involvedObject") or {}
            index.setdefault((involved.get("kind"), involved.get("name")), []).append(event)
        return index
