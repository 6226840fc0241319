# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""v1 Service: a LoadBalancer needs an ingress address; other types are ready when they exist."""

from __future__ import annotations

from .status import Health


def service(obj):
    spec = obj.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return Health.HEALTHY, "%s service" % (spec.get("type") or "ClusterIP")
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    addresses = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
    if not addresses:
        return Health.PROGRESSING, "waiting for the load balancer to get an address"
    return Health.HEALTHY, "load balancer at %s" % ", ".join(addresses)
