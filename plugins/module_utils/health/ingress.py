# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""networking.k8s.io/v1 Ingress: healthy once the ingress controller published an address."""

from __future__ import annotations

from .status import Health


def ingress(obj):
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    addresses = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
    if not addresses:
        return Health.PROGRESSING, "waiting for the ingress controller to publish an address"
    return Health.HEALTHY, "served at %s" % ", ".join(addresses)
