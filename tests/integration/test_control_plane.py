"""Proof that the local control plane is a real Kubernetes: controllers, scheduler, kwok nodes,
server-side apply conflicts and CRDs behave as on any cluster."""

import ipaddress
import os
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from kubernetes.utils.quantity import parse_quantity

import localcluster
from localcluster import wait_for
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import ApiError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import audit  # noqa: E402

# What the tests of the cluster's own configuration say when `up` reused an older cluster (see README).
OUTDATED = "started by an older tests/cluster/localcluster.py? restart it: %s=1 tests/cluster/up" % localcluster.RESTART_ENV


def condition(obj, kind):
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return cond["status"]
    return None


def deployment(ns, image, replicas=3):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": image}]}},
        },
    }


def test_deployment_becomes_available_and_rolls_out_a_new_image(cluster, namespace):
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": namespace, "name": "web"}
    cluster.apply(deployment(namespace, "nginx:1.27"), "test")

    def available():
        obj = cluster.get(ref)
        status = obj.get("status", {})
        return status.get("availableReplicas") == 3 and condition(obj, "Available") == "True" and obj

    wait_for("3 available replicas", available)

    cluster.apply(deployment(namespace, "nginx:1.28"), "test")

    def rolled_out():
        obj = cluster.get(ref)
        status = obj.get("status", {})
        return (status.get("observedGeneration") == obj["metadata"]["generation"]
                and status.get("updatedReplicas") == 3 and status.get("availableReplicas") == 3
                and status.get("replicas") == 3 and obj)

    wait_for("the rollout of nginx:1.28", rolled_out)
    pods, _version = cluster.list(cluster.resource("v1", "Pod"), namespace, label_selector="app=web")
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert {p["spec"]["containers"][0]["image"] for p in live} == {"nginx:1.28"}
    assert all(p["spec"].get("nodeName", "").startswith("kwok-node-") for p in live)


def test_job_completes(cluster, namespace):
    job = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once", "namespace": namespace},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
    }
    cluster.apply(job, "test")
    ref = {"apiVersion": "batch/v1", "kind": "Job", "namespace": namespace, "name": "once"}
    done = wait_for("Job complete", lambda: condition(cluster.get(ref), "Complete") == "True" and cluster.get(ref))
    assert done["status"].get("succeeded") == 1


def test_statefulset_becomes_ready(cluster, namespace):
    sts = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": namespace},
        "spec": {
            "replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres"}]}},
        },
    }
    cluster.apply(sts, "test")
    ref = {"apiVersion": "apps/v1", "kind": "StatefulSet", "namespace": namespace, "name": "db"}
    ready = wait_for("3 ready replicas", lambda: (cluster.get(ref).get("status", {}).get("readyReplicas") == 3) and cluster.get(ref))
    assert ready["status"]["readyReplicas"] == ready["spec"]["replicas"]


def test_server_side_apply_conflict_needs_force(cluster, namespace):
    def config_map(value):
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owned", "namespace": namespace},
                "data": {"key": value}}

    cluster.apply(config_map("from-a"), "manager-a", force=False)
    with pytest.raises(ApiError) as conflict:
        cluster.apply(config_map("from-b"), "manager-b", force=False)
    assert conflict.value.status == 409
    assert "manager-a" in conflict.value.server_message

    cluster.apply(config_map("from-b"), "manager-b", force=True)
    live = cluster.get({"apiVersion": "v1", "kind": "ConfigMap", "namespace": namespace, "name": "owned"})
    assert live["data"]["key"] == "from-b"
    owners = {m["manager"] for m in live["metadata"]["managedFields"] if "f:data" in str(m.get("fieldsV1"))}
    assert owners == {"manager-b"}


def test_crd_becomes_established_and_serves_custom_resources(cluster, namespace):
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.proof.gitops.test"},
        "spec": {
            "group": "proof.gitops.test", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}],
        },
    }
    cluster.apply(crd, "test")
    crd_ref = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "name": "widgets.proof.gitops.test"}
    wait_for("CRD Established", lambda: condition(cluster.get(crd_ref), "Established") == "True")
    widget = {"apiVersion": "proof.gitops.test/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": namespace},
              "spec": {"size": 3}}
    created = wait_for("the new kind to be served", lambda: _try_apply(cluster, widget))
    assert created["spec"]["size"] == 3
    with pytest.raises(ApiError) as invalid:
        cluster.apply(dict(widget, spec={"size": "three"}), "test")
    # the schema is enforced (server-side apply reports a type mismatch as a 500, as on any cluster)
    assert invalid.value.status >= 400 and ".spec.size" in invalid.value.server_message
    cluster.delete(crd_ref)


def _try_apply(cluster, obj):
    try:
        return cluster.apply(obj, "test")
    except Exception:  # discovery can lag the Established condition by a moment
        cluster.forget_discovery()
        return None


def test_version_is_the_pinned_release(cluster):
    assert cluster.request("GET", "/version")["gitVersion"] == "v1.36.3"


def test_hundreds_of_services_get_addresses_from_a_kubeadm_sized_range(cluster, namespace):
    [cidr] = cluster.request("GET", "/apis/networking.k8s.io/v1/servicecidrs/kubernetes")["spec"]["cidrs"]
    assert cidr == "10.96.0.0/12", OUTDATED

    def create(i):
        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s%d" % i, "namespace": namespace},
                   "spec": {"selector": {"app": "s%d" % i}, "ports": [{"port": 80}]}}
        return cluster.request("POST", "/api/v1/namespaces/%s/services" % namespace, body=service)["spec"]["clusterIP"]

    with ThreadPoolExecutor(8) as pool:
        addresses = list(pool.map(create, range(300)))  # more than a /24 holds
    assert len(set(addresses)) == 300
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network(cidr) for ip in addresses)


def test_nodes_hold_a_thousand_app_benchmark_beside_the_tests(cluster):
    nodes = [n for n in cluster.request("GET", "/api/v1/nodes")["items"] if n["metadata"]["name"].startswith("kwok-node-")]
    assert len(nodes) == 3
    assert sum(parse_quantity(n["status"]["allocatable"]["pods"]) for n in nodes) >= 2000, OUTDATED


def test_audit_log_counts_every_request_of_a_client(kubeconfig):
    """Benchmarks count any client's requests (kubectl's, kubernetes.core's, ours) from the audit log."""
    agent = "audit-proof-%s" % uuid.uuid4().hex[:8]
    port = localcluster._read_state()["ports"]["apiserver"]
    since = time.time()
    for path in ["/api/v1/namespaces/default"] * 5 + ["/api/v1/namespaces/kube-system/configmaps"] * 2:
        request = urllib.request.Request("https://127.0.0.1:%d%s" % (port, path), headers={"User-Agent": agent + "/1.0"})
        with urllib.request.urlopen(request, context=localcluster._ssl_context(), timeout=30) as resp:
            assert resp.status == 200
    audit.flush()
    events = audit.requests(since=since, user_agent=agent)
    assert [e["verb"] for e in events] == ["get"] * 5 + ["list"] * 2
    assert audit.count(since=since, user_agent=agent) == 7
    assert audit.by_client(since=since)[agent] == 7
    assert audit.count(until=since, user_agent=agent) == 0
