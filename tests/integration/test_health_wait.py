"""health_wait on the real control plane (kwok nodes): rollouts, stuck rollouts, Jobs, CRs, load balancers."""

import re
import threading
import time

import pytest
from localcluster import wait_for

from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import ApiError
from ansible_collections.gitops.k8s.plugins.module_utils.health import hub as health_hub
from ansible_collections.gitops.k8s.plugins.module_utils.health.watch import wait_healthy

NEVER_READY = {"gitops.k8s.test/never-ready": "true"}


def deployment(namespace, name, replicas=3, pod_labels=None, deadline=600, node_selector=None):
    labels = {"app": name}
    pod_spec = {"containers": [{"name": "main", "image": "registry.example/%s:1" % name}]}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "progressDeadlineSeconds": deadline, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": dict(labels, **(pod_labels or {}))}, "spec": pod_spec}},
    }


def ref(obj):
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "namespace": obj["metadata"].get("namespace", ""),
            "name": obj["metadata"]["name"]}


def apply_all(cluster, *objs):
    for obj in objs:
        cluster.apply(obj, "health-test")
    return [ref(obj) for obj in objs]


def when(what, condition, action, timeout=60):
    """Run ``action`` in a thread as soon as ``condition()`` holds, while the test waits.

    Returns a function that joins the thread and raises what it raised (a timeout naming
    ``what`` included): an exception in a thread would otherwise be lost.
    """
    failures = []

    def run():
        try:
            wait_for(what, condition, timeout, interval=0.05)
            action()
        except Exception as err:  # handed to the test's thread by join()
            failures.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join():
        thread.join()
        if failures:
            raise failures[0]
    return join


def settled(cluster, ref, status):
    """For wait_for: ``ref``'s health is ``status`` now."""
    return wait_healthy(cluster, [ref], wait=False)["status"] == status


def patch_status(cluster, resource, namespace, name, status):
    cluster.request("PATCH", resource.path(namespace, name, "status"), body={"status": status},
                    content_type="application/merge-patch+json")


def test_rollout_becomes_healthy_with_a_timeline(cluster, namespace):
    refs = apply_all(cluster, deployment(namespace, "web"), deployment(namespace, "api", replicas=2),
                     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace}})
    lines = []
    result = wait_healthy(cluster, refs, timeout=60, progress=lines.append)
    assert result["healthy"], result["summary"]
    assert result["status"] == "Healthy"
    assert [r["status"] for r in result["resources"]] == ["Healthy"] * 3
    assert result["resources"][0]["message"] == "3 of 3 replicas are available"
    assert {t["ref"]["name"] for t in result["timeline"]} == {"web", "api", "settings"}
    assert result["summary"] == "3 of 3 objects healthy after %.1fs" % result["elapsed"]


def test_a_finished_wait_leaves_no_watch_open(cluster, namespace):
    # a watch left open holds a connection to the API server until it times out (20 s): a run of
    # many apps would pile them up; the wait ends its streams as it returns
    refs = apply_all(cluster, deployment(namespace, "web", replicas=1), deployment(namespace, "api", replicas=1))
    before = {t for t in threading.enumerate() if t.name.startswith("watch ")}
    result = wait_healthy(cluster, refs, timeout=60)
    assert result["healthy"], result["summary"]
    wait_for("the wait's watch threads to end", lambda: not [
        t for t in threading.enumerate() if t.name.startswith("watch ") and t not in before and t.is_alive()], 3)


def test_pods_that_never_become_ready_end_degraded_at_the_progress_deadline(cluster, namespace):
    refs = apply_all(cluster, deployment(namespace, "stuck", replicas=2, pod_labels=NEVER_READY, deadline=5))
    result = wait_healthy(cluster, refs, timeout=120)
    assert not result["healthy"]
    assert result["status"] == "Degraded"
    assert "ProgressDeadlineExceeded" in result["resources"][0]["message"]
    assert result["elapsed"] < 60, "fail_fast stops at the deadline, not at the timeout"
    summary = result["summary"].splitlines()
    assert summary[0].startswith("1 of 1 objects are not healthy (degraded after")
    assert summary[1].startswith("Deployment %s/stuck: progress deadline exceeded" % namespace)
    assert any(line.strip().startswith("Pod %s/stuck-" % namespace) for line in summary[2:]), result["summary"]


def test_fail_fast_false_keeps_waiting_for_the_others(cluster, namespace):
    refs = apply_all(cluster, deployment(namespace, "stuck", replicas=1, pod_labels=NEVER_READY, deadline=2),
                     deployment(namespace, "fine", replicas=1))
    wait_for("stuck to pass its progress deadline", lambda: settled(cluster, refs[0], "Degraded"))
    wait_for("fine to become available", lambda: settled(cluster, refs[1], "Healthy"))
    result = wait_healthy(cluster, refs, timeout=3, fail_fast=False)
    assert result["elapsed"] >= 3
    assert [r["status"] for r in result["resources"]] == ["Degraded", "Healthy"]
    assert "timed out after" in result["summary"]


def test_job_completes(cluster, namespace):
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": namespace},
           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "main", "image": "registry.example/migrate:1"}]}}}}
    result = wait_healthy(cluster, apply_all(cluster, job), timeout=60)
    assert result["healthy"], result["summary"]
    assert result["resources"][0]["message"].startswith("completed")


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.health.gitops.test"},
    "spec": {"group": "health.gitops.test", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


@pytest.fixture(scope="module")
def widget_crd(cluster):
    cluster.apply(CRD, "health-test")
    result = wait_healthy(cluster, [ref(CRD)], timeout=30)
    assert result["healthy"], result["summary"]
    return cluster.resource("health.gitops.test/v1", "Widget")


def widget(namespace, name, **spec):
    return {"apiVersion": "health.gitops.test/v1", "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_custom_resource_follows_its_ready_condition(cluster, namespace, widget_crd):
    refs = apply_all(cluster, widget(namespace, "w1"))
    patch_status(cluster, widget_crd, namespace, "w1", {"conditions": [
        {"type": "Ready", "status": "False", "reason": "Provisioning", "message": "creating the volume"}]})
    now = wait_healthy(cluster, refs, wait=False)
    assert (now["status"], now["resources"][0]["message"]) == ("Progressing", "not ready: Provisioning: creating the volume")
    lines = []
    patched = when("the wait to report the Widget not ready", lambda: lines, lambda: patch_status(
        cluster, widget_crd, namespace, "w1",
        {"conditions": [{"type": "Ready", "status": "True", "reason": "Done", "message": "volume attached"}]}))
    result = wait_healthy(cluster, refs, timeout=60, progress=lines.append)
    patched()
    assert result["healthy"], result["summary"]
    assert result["resources"][0]["message"] == "ready: volume attached"
    assert lines[0] == "0/1 healthy \u2014 waiting for Widget %s/w1: not ready: Provisioning: creating the volume" % namespace


def test_loadbalancer_service_waits_for_its_address(cluster, namespace):
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "front", "namespace": namespace},
               "spec": {"type": "LoadBalancer", "selector": {"app": "front"}, "ports": [{"port": 80}],
                        "allocateLoadBalancerNodePorts": False}}
    refs = apply_all(cluster, service)
    services = cluster.resource("v1", "Service")
    lines = []
    patched = when("the wait to report the Service waiting", lambda: lines, lambda: patch_status(
        cluster, services, namespace, "front", {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}))
    result = wait_healthy(cluster, refs, timeout=60, progress=lines.append)
    patched()
    assert result["healthy"], result["summary"]
    assert result["resources"][0]["message"] == "load balancer at 203.0.113.10"
    assert lines[0] == "0/1 healthy \u2014 waiting for Service %s/front: waiting for the load balancer to get an address" \
        % namespace


def test_custom_health_rule(cluster, namespace, widget_crd):
    rules = [{"group": "health.gitops.test", "kind": "Widget",
              "healthy": "status.phase == 'Running'", "degraded": "status.phase == 'Failed'",
              "message": "join(': ', [status.phase, status.detail])"}]
    refs = apply_all(cluster, widget(namespace, "good"), widget(namespace, "bad"))
    patch_status(cluster, widget_crd, namespace, "good", {"phase": "Running", "detail": "3 shards"})
    patch_status(cluster, widget_crd, namespace, "bad", {"phase": "Failed", "detail": "disk full"})
    result = wait_healthy(cluster, refs, timeout=30, custom_health=rules)
    assert [(r["status"], r["message"]) for r in result["resources"]] == [
        ("Healthy", "Running: 3 shards"), ("Degraded", "Failed: disk full")]
    assert "Widget %s/bad: Failed: disk full (Degraded)" % namespace in result["summary"]


def test_timeout_lists_the_stuck_objects_and_their_events(cluster, namespace):
    refs = apply_all(cluster, deployment(namespace, "pinned", replicas=2, node_selector={"disk": "none-has-it"}),
                     deployment(namespace, "fine", replicas=1))
    refs.append({"apiVersion": "v1", "kind": "Secret", "namespace": namespace, "name": "never-created"})
    wait_for("fine to become available", lambda: settled(cluster, refs[1], "Healthy"))
    wait_for("the scheduler to refuse both pinned pods", lambda: refused(cluster, namespace, "pinned", 2))
    result = wait_healthy(cluster, refs, timeout=4)
    assert not result["healthy"]
    assert result["status"] == "Missing"
    summary = result["summary"]
    waited = re.match(r"2 of 3 objects are not healthy \(timed out after (\d+\.\d)s\):\n", summary)
    assert waited and float(waited.group(1)) >= 4, summary
    assert "Deployment %s/pinned: 0 of 2 updated replicas are available (Progressing)" % namespace in summary
    assert "not scheduled: Unschedulable" in summary
    assert "Warning FailedScheduling:" in summary and "node affinity/selector" in summary
    assert "Secret %s/never-created: not found (Missing)" % namespace in summary
    assert "fine" not in summary


def refused(cluster, namespace, app, replicas):
    """For wait_for: the scheduler has refused all ``replicas`` pods of ``app`` and said why in an event."""
    pods, _version = cluster.list(cluster.resource("v1", "Pod"), namespace, label_selector="app=" + app)
    events, _version = cluster.list(cluster.resource("v1", "Event"), namespace, field_selector="reason=FailedScheduling")
    return events and replicas == len([p for p in pods if any(
        c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable" for c in p.get("status", {}).get("conditions", []))])


def test_an_object_created_while_waiting_and_a_kind_served_later(cluster, namespace):
    """Missing objects are waited for; a kind whose CRD is applied during the wait is picked up."""
    crd = dict(CRD, metadata={"name": "gadgets.health.gitops.test"})
    crd["spec"] = dict(CRD["spec"], names={"plural": "gadgets", "singular": "gadget", "kind": "Gadget"})
    gadget = {"apiVersion": "health.gitops.test/v1", "kind": "Gadget", "metadata": {"name": "g", "namespace": namespace}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late", "namespace": namespace}}

    def try_apply_gadget():
        try:
            return cluster.apply(gadget, "health-test")
        except Exception:  # the CRD is not established yet, or discovery does not show it yet
            cluster.forget_discovery()
            return None

    def create():
        cluster.apply(cm, "health-test")
        cluster.apply(crd, "health-test")
        wait_for("the Gadget kind to be served", try_apply_gadget)

    lines = []
    try:
        created = when("the wait to report what it waits for", lambda: lines, create)
        result = wait_healthy(cluster, [ref(cm), ref(gadget)], timeout=120, progress=lines.append)
        created()
        assert result["healthy"], result["summary"]
        assert lines[0].startswith("0/2 healthy \u2014 waiting for "), lines
    finally:
        cluster.delete({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                        "name": "gadgets.health.gitops.test"})


def test_watch_reconnects_and_still_sees_changes(cluster, namespace, monkeypatch):
    """Each watch request lasts 1 s here, so the fix arrives after several reconnects."""
    monkeypatch.setattr(health_hub, "WATCH_SECONDS", 1)
    refs = apply_all(cluster, deployment(namespace, "web", replicas=1, pod_labels=NEVER_READY))
    before = cluster.requests_made
    fixed = when("a list and three watch requests", lambda: cluster.requests_made - before >= 4,
                 lambda: cluster.apply(deployment(namespace, "web", replicas=1), "health-test"))
    result = wait_healthy(cluster, refs, timeout=60)
    fixed()
    assert result["healthy"], result["summary"]


def test_watch_relists_when_its_resource_version_expired(cluster, namespace, monkeypatch):
    """The first list hands out a long-compacted resourceVersion: the server answers 410 Gone."""
    refs = apply_all(cluster, deployment(namespace, "web", replicas=1, pod_labels=NEVER_READY))
    real_list, calls = cluster.list, []

    def list_then_expire(*args, **kwargs):
        items, version = real_list(*args, **kwargs)
        calls.append(version)
        return items, ("1" if len(calls) == 1 else version)

    monkeypatch.setattr(cluster, "list", list_then_expire)
    fixed = when("the watcher to list again after 410 Gone", lambda: len(calls) >= 2,
                 lambda: cluster.apply(deployment(namespace, "web", replicas=1), "health-test"))
    result = wait_healthy(cluster, refs, timeout=60)
    fixed()
    assert result["healthy"], result["summary"]


def test_module_reports_and_fails_with_the_summary(ansible, kubeconfig, cluster, namespace):
    refs = apply_all(cluster, deployment(namespace, "web", replicas=1),
                     deployment(namespace, "stuck", replicas=1, pod_labels=NEVER_READY, deadline=3),
                     deployment(namespace, "slow", replicas=1, pod_labels=NEVER_READY))
    wait_for("web to become available", lambda: settled(cluster, refs[0], "Healthy"))
    wait_for("stuck to pass its progress deadline", lambda: settled(cluster, refs[1], "Degraded"))
    proc, result = ansible.module("gitops.k8s.health_wait", {"resources": refs[:2], "timeout": 60})
    assert result["failed"]
    assert "Deployment %s/stuck: progress deadline exceeded" % namespace in result["msg"]
    assert result["status"] == "Degraded"
    assert result["resources"][0]["status"] == "Healthy"

    # while it waits, a line says for what
    proc, result = ansible.module("gitops.k8s.health_wait", {"resources": [refs[2]], "timeout": 3})
    assert result["failed"] and result["status"] == "Progressing", result
    assert "0/1 healthy \u2014 waiting for Deployment %s/slow" % namespace in proc.stdout, proc.stdout

    proc, result = ansible.module("gitops.k8s.health_wait", {"resources": refs[:1]})
    assert not result.get("failed") and result["healthy"] and not result["changed"]
    assert result["api_requests"] >= 2


def test_module_check_mode_reports_without_waiting(ansible, kubeconfig, cluster, namespace):
    refs = apply_all(cluster, deployment(namespace, "stuck", replicas=1, pod_labels=NEVER_READY))
    proc, result = ansible.module("gitops.k8s.health_wait", {"resources": refs, "timeout": 300}, check=True)
    assert not result.get("failed"), result
    assert result["status"] in ("Progressing",) and not result["healthy"]
    assert result["elapsed"] < 10


def test_module_refuses_a_bad_custom_health_rule(ansible, kubeconfig, namespace):
    proc, result = ansible.module("gitops.k8s.health_wait", {
        "resources": [{"apiVersion": "v1", "kind": "ConfigMap", "namespace": namespace, "name": "x"}],
        "custom_health": [{"kind": "Widget", "healthy": "status.["}]})
    assert result["failed"]
    assert "custom_health rule 1 (Widget): healthy is not a valid JMESPath expression" in result["msg"]


def bundle_entry(obj, hook=None):
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "namespace": obj["metadata"].get("namespace"),
            "name": obj["metadata"]["name"], "wave": 0, "hook": hook, "hook_delete_policy": [], "source": "app.yaml"}


def test_module_waits_for_a_bundle_without_its_hooks(ansible, kubeconfig, cluster, namespace, workdir):
    from ansible_collections.gitops.k8s.plugins.module_utils.bundle import write_bundle

    web = deployment(namespace, "web", replicas=2)
    hook = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pre", "namespace": namespace},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "x"}]}}}}
    write_bundle(workdir, [hook, web], [bundle_entry(hook, ["PreSync"]), bundle_entry(web)])
    apply_all(cluster, web)  # the hook is never created: waiting for it would end Missing
    proc, result = ansible.module("gitops.k8s.health_wait", {"bundle": workdir, "timeout": 60})
    assert not result.get("failed"), result
    assert [r["ref"]["name"] for r in result["resources"]] == ["web"]


def test_module_waits_for_an_app_applied_by_apply(ansible, kubeconfig, cluster, namespace, workdir):
    from ansible_collections.gitops.k8s.plugins.module_utils.bundle import write_bundle

    app = "hw-" + namespace[-5:]
    objs = [deployment(namespace, "web", replicas=2),
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace}}]
    write_bundle(workdir, objs, [bundle_entry(o) for o in objs])
    proc, applied = ansible.module("gitops.k8s.apply", {"bundle": workdir, "app": app, "wait_waves": False})
    assert not applied.get("failed"), applied
    try:
        proc, result = ansible.module("gitops.k8s.health_wait", {"app": app, "timeout": 60})
        assert not result.get("failed"), result
        assert sorted(r["ref"]["name"] for r in result["resources"]) == ["settings", "web"]
        assert result["healthy"]
        proc, result = ansible.module("gitops.k8s.health_wait", {"app": "never-applied-" + app})
        assert result["failed"] and "has no inventory record" in result["msg"]
    finally:
        cluster.delete({"apiVersion": "v1", "kind": "ConfigMap", "namespace": "gitops-system", "name": "gitops-app-" + app})


# -- the waits of a run share its watches (health/hub.py) --------------------------------------

def config_map(namespace, name):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}


def watch_threads():
    return {t for t in threading.enumerate() if t.name.startswith("watch ") and t.is_alive()}


def wait_in_threads(waits):
    """Run each of ``waits`` (functions) in its own thread, as a run's apps wait; their results in order."""
    results = [None] * len(waits)

    def run(number):
        try:
            results[number] = waits[number]()
        except Exception as err:  # handed to the test's thread below
            results[number] = err

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(len(waits))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def test_the_waits_of_a_run_share_one_watch_per_kind_and_each_ends_with_its_own_objects(cluster, namespace):
    # a fleet's first push waited each app with its own list and watch of every kind: 1,000 apps
    # of 3 kinds were 3,000 lists and watches; one per kind serves them all
    apps = {"app-%d" % n: apply_all(cluster, config_map(namespace, "app-%d" % n),
                                    deployment(namespace, "app-%d" % n, replicas=1)) for n in range(12)}
    apps["stuck"] = apply_all(cluster, config_map(namespace, "stuck"),
                              deployment(namespace, "stuck", replicas=1, pod_labels=NEVER_READY))
    before_threads, before_requests = watch_threads(), cluster.requests_made
    with health_hub.WatchHub(cluster) as hub:
        hub.expect([ref for refs in apps.values() for ref in refs])
        results = dict(zip(apps, wait_in_threads([
            lambda refs=refs, name=name: wait_healthy(cluster, refs, timeout=8 if name == "stuck" else 60, hub=hub)
            for name, refs in apps.items()])))
        feeds = watch_threads() - before_threads
        requests = cluster.requests_made - before_requests
    assert not results["stuck"]["healthy"] and results["stuck"]["status"] == "Progressing", results["stuck"]
    for name, result in results.items():
        if name != "stuck":
            assert result["healthy"] and result["elapsed"] < 8, (name, result["summary"])
            assert [r["ref"]["name"] for r in result["resources"]] == [name, name], result
    assert sorted(t.name for t in feeds) == ["watch configmaps %s" % namespace, "watch deployments %s" % namespace]
    assert requests <= 6, "%d API requests for 13 waits (2 lists and 2 watches needed)" % requests
    wait_for("the hub's watch threads to end", lambda: not (watch_threads() - before_threads), 3)


def test_a_shared_watch_does_not_take_an_object_older_than_the_callers_write(cluster, namespace, monkeypatch):
    # the run's watch may not have seen an app's apply yet when the app starts waiting: its cache
    # still holds the old Deployment, rolled out, which would read healthy before the new one started
    real_watch, lagging = cluster.watch, threading.Event()

    def lagging_watch(*args, **kwargs):
        for event in real_watch(*args, **kwargs):
            if lagging.is_set():
                time.sleep(1.5)
            yield event

    monkeypatch.setattr(cluster, "watch", lagging_watch)
    refs = apply_all(cluster, deployment(namespace, "web", replicas=1))
    with health_hub.WatchHub(cluster) as hub:
        assert wait_healthy(cluster, refs, timeout=60, hub=hub)["healthy"]
        lagging.set()
        written = cluster.apply(deployment(namespace, "web", replicas=1, pod_labels=NEVER_READY), "health-test")
        result = wait_healthy(cluster, refs, timeout=5, hub=hub,
                              written=[dict(refs[0], resourceVersion=written["metadata"]["resourceVersion"])])
    assert not result["healthy"] and result["status"] == "Progressing", result["summary"]


def test_waits_across_namespaces_watch_each_namespace_when_cluster_wide_is_forbidden(cluster, namespace):
    # objects of one kind in several namespaces are watched cluster-wide, as the read phase lists
    # them; an identity with Roles in those namespaces only is refused that (403) and watches each
    other = namespace + "-b"
    cluster.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": other}})
    try:
        cluster.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "waiter", "namespace": namespace}}, "health-test")
        for where in (namespace, other):
            grant_reading(cluster, where, namespace, "waiter")
        refs = apply_all(cluster, *[config_map(where, "cm-%d" % n) for where in (namespace, other) for n in range(3)])
        tenant = cluster.as_identity("system:serviceaccount:%s:waiter" % namespace)
        with pytest.raises(ApiError):
            tenant.list(tenant.resource("v1", "ConfigMap"))
        result = wait_healthy(tenant, refs, timeout=30)
        assert result["healthy"], result["summary"]
        with health_hub.WatchHub(tenant) as hub:
            assert all(r["healthy"] for r in wait_in_threads([
                lambda where=where: wait_healthy(tenant, [r for r in refs if r["namespace"] == where], timeout=30,
                                                 hub=hub) for where in (namespace, other)]))
    finally:
        cluster.delete({"apiVersion": "v1", "kind": "Namespace", "name": other})


def grant_reading(cluster, where, sa_namespace, sa_name):
    rbac = "rbac.authorization.k8s.io/v1"
    cluster.apply({"apiVersion": rbac, "kind": "Role", "metadata": {"name": "read-cm", "namespace": where},
                   "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]},
                  "health-test")
    cluster.apply({"apiVersion": rbac, "kind": "RoleBinding", "metadata": {"name": "read-cm", "namespace": where},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-cm"},
                   "subjects": [{"kind": "ServiceAccount", "namespace": sa_namespace, "name": sa_name}]}, "health-test")


def test_waits_for_a_kind_not_served_yet_look_it_up_together(cluster, namespace):
    # every wait looked a missing kind up in discovery every 2 s on its own: a fleet waiting for
    # the custom resources of a CRD not yet established hammered the API server
    refs = [{"apiVersion": "health.gitops.test/v1", "kind": "Gizmo", "namespace": namespace, "name": "g%d" % n}
            for n in range(20)]
    before = cluster.requests_made
    with health_hub.WatchHub(cluster) as hub:
        results = wait_in_threads([lambda ref=ref: wait_healthy(cluster, [ref], timeout=5, hub=hub) for ref in refs])
    # each wait that timed out read its namespace's events once for its summary; the rest is discovery:
    # up to 5 requests a look-up, one look-up every 2 s for every wait together
    looking_up = cluster.requests_made - before - len(refs)
    for result in results:
        assert not result["healthy"] and result["status"] == "Missing", result
        assert result["resources"][0]["message"] == "the cluster does not serve health.gitops.test/v1 Gizmo yet"
    assert looking_up <= 15, "%d API requests to look one kind up for 5 s" % looking_up
