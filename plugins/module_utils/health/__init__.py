# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Health of Kubernetes objects: one pure rule per kind, the generic kstatus rules for the rest.

``assess(obj, custom_health=None) -> (status, message)``; ``worst(statuses)``; ``Health`` holds
the status names. Rules never touch the cluster: callers fetch or watch the objects.
"""

from __future__ import annotations

from ..refs import group_of
from .apiservice import apiservice
from .cronjob import cronjob
from .crd import customresourcedefinition
from .custom import CustomHealth
from .daemonset import daemonset
from .deployment import deployment
from .hpa import horizontalpodautoscaler
from .ingress import ingress
from .job import job
from .kstatus import generic
from .namespace import namespace
from .pod import pod
from .pvc import persistentvolumeclaim
from .replicaset import replicaset
from .service import service
from .statefulset import statefulset
from .status import Health, worst

__all__ = ["Health", "worst", "assess", "CustomHealth"]

RULES = {
    ("apps", "Deployment"): deployment,
    ("apps", "StatefulSet"): statefulset,
    ("apps", "DaemonSet"): daemonset,
    ("apps", "ReplicaSet"): replicaset,
    ("", "Pod"): pod,
    ("batch", "Job"): job,
    ("batch", "CronJob"): cronjob,
    ("", "PersistentVolumeClaim"): persistentvolumeclaim,
    ("", "Service"): service,
    ("networking.k8s.io", "Ingress"): ingress,
    ("autoscaling", "HorizontalPodAutoscaler"): horizontalpodautoscaler,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): customresourcedefinition,
    ("apiregistration.k8s.io", "APIService"): apiservice,
    ("", "Namespace"): namespace,
}


def assess(obj, custom_health=None):
    """(status, message) of one object; ``obj`` None means it does not exist (Missing).

    ``custom_health``: a list of rules or a CustomHealth (see custom.py); a matching rule wins
    over the built-in one.
    """
    if obj is None:
        return Health.MISSING, "not found"
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return Health.PROGRESSING, "being deleted"
    group, kind = group_of(obj.get("apiVersion", "")), obj.get("kind", "")
    if custom_health and not isinstance(custom_health, CustomHealth):
        custom_health = CustomHealth(custom_health)
    rule = custom_health.rule_for(group, kind) if custom_health else None
    if rule:
        return CustomHealth.evaluate(rule, obj)
    try:
        return RULES.get((group, kind), generic)(obj)
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        # a malformed status (wrong types) is a fact about the object, not a crash of the run
        return Health.UNKNOWN, "cannot read its status: %s: %s" % (type(err).__name__, err)
