"""Kubernetes semantics a platform team meets in week one, on the real control plane.

Takeover from ``kubectl apply``, immutable fields, fields other controllers own, cluster-scoped
custom resources, namespaces the app creates, CRDs and their resources in one bundle, Sync hooks
inside their wave, apps that do not prune, kinds the cluster stops serving, and what a failed
run says.
"""

import json
import os
import subprocess
import time
import uuid

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.sync.apply import Options, apply
from ansible_collections.gitops.k8s.plugins.module_utils.sync.compare import diff
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import read_record
from ansible_collections.gitops.k8s.plugins.module_utils.report.run_report import app_row
# inventory_cleanup and new_app are fixtures, used by name
from test_diff_apply import (  # noqa: F401 pylint: disable=unused-import
    configmap, deployment, get, inventory_cleanup, job, make_bundle, names, new_app)

SYNC_OPTIONS = "gitops.k8s/sync-options"


def kubectl(tools, kubeconfig, *args, stdin=None):
    proc = subprocess.run([os.path.join(tools, "kubectl"), "--kubeconfig", kubeconfig, *args], input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, "kubectl %s failed: %s" % (" ".join(args), proc.stderr)
    return proc.stdout


def wait_for(what, condition, timeout=60):
    """Poll ``condition()`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out after %ss waiting for %s" % (timeout, what)
        time.sleep(0.3)


def env_of(dep):
    return {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0].get("env") or ()}


def crd(group, kind, plural, scope="Namespaced", versions=("v1",), size_type="integer"):
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "%s.%s" % (plural, group)},
        "spec": {"group": group, "scope": scope,
                 "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
                 "versions": [{"name": v, "served": True, "storage": n == 0, "schema": {"openAPIV3Schema": {
                     "type": "object", "properties": {"spec": {"type": "object", "properties": {
                         "size": {"type": size_type}}}}}}} for n, v in enumerate(versions)]},
    }


@pytest.fixture
def crds(cluster):
    """CRDs a test creates (by name), deleted afterwards."""
    made = []
    yield made
    for name in made:
        cluster.delete({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "name": name})


def install_crd(cluster, crds, body):
    crds.append(body["metadata"]["name"])
    cluster.apply(body, "test-setup")
    ref = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "name": body["metadata"]["name"]}
    wait_for("CRD %s Established" % ref["name"], lambda: any(
        c["type"] == "Established" and c["status"] == "True"
        for c in (cluster.get(ref).get("status") or {}).get("conditions") or ()))


# -- 1. takeover from client-side apply -------------------------------------------------------

def test_takeover_from_kubectl_apply_removes_a_field_deleted_from_git(cluster, kubeconfig, tools, namespace, workdir,
                                                                      new_app):
    app = new_app()
    web = deployment(namespace, "web", replicas=1)
    web["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "FOO", "value": "1"}, {"name": "BAR", "value": "2"}]
    kubectl(tools, kubeconfig, "apply", "-f", "-", stdin=json.dumps(web))
    live = get(cluster, "apps/v1", "Deployment", namespace, "web")
    assert "kubectl-client-side-apply" in [m["manager"] for m in live["metadata"]["managedFields"]]

    web["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "BAR", "value": "2"}]
    bundle = make_bundle(workdir, [web])
    seen = diff(cluster, bundle, None)
    assert seen["changed"] and seen["resources"][0]["action"] == "update", seen
    assert "kubectl-client-side-apply" in seen["resources"][0]["diff"]

    apply(cluster, bundle, app, Options())
    live = get(cluster, "apps/v1", "Deployment", namespace, "web")
    assert env_of(live) == {"BAR": "2"}, "FOO was removed from Git and must be removed from the cluster"
    managers = [m["manager"] for m in live["metadata"]["managedFields"]]
    assert "kubectl-client-side-apply" not in managers and "before-first-apply" not in managers, managers
    assert "kubectl.kubernetes.io/last-applied-configuration" not in (live["metadata"].get("annotations") or {})
    again = diff(cluster, bundle, read_record(cluster, app))
    assert not again["changed"], again


# -- 2. immutable fields ----------------------------------------------------------------------

def test_job_image_change_is_refused_naming_the_field_and_recreated_with_force(cluster, namespace, workdir,
                                                                               new_app):
    app = new_app()
    migrate = job(namespace, name="migrate")
    apply(cluster, make_bundle(workdir, [migrate]), app, Options())
    first_uid = get(cluster, "batch/v1", "Job", namespace, "migrate")["metadata"]["uid"]

    migrate["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:1.37"
    with pytest.raises(GitOpsError) as err:
        apply(cluster, make_bundle(workdir, [migrate, configmap(namespace, "other")]), app, Options())
    message = str(err.value)
    assert "Job %s/migrate" % namespace in message and "spec.template" in message, message
    assert "Force=true" in message and "replace_on_immutable" in message, message
    assert get(cluster, "v1", "ConfigMap", namespace, "other") is None, "nothing is written after a rejection"

    # Replace=true alone replaces (PUT), which the server refuses for an immutable field just the same
    migrate["metadata"]["annotations"] = {SYNC_OPTIONS: "Replace=true"}
    with pytest.raises(GitOpsError, match="spec.template"):
        apply(cluster, make_bundle(workdir, [migrate]), app, Options())

    # Force=true: delete and recreate
    migrate["metadata"]["annotations"] = {"argocd.argoproj.io/sync-options": "Replace=true,Force=true"}
    forced = apply(cluster, make_bundle(workdir, [migrate]), app, Options())
    assert names(forced["recreated"]) == ["migrate"], forced
    live = get(cluster, "batch/v1", "Job", namespace, "migrate")
    assert live["metadata"]["uid"] != first_uid
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.37"

    # the app-level option does the same for every object
    del migrate["metadata"]["annotations"]
    migrate["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:1.36"
    recreated = apply(cluster, make_bundle(workdir, [migrate]), app, Options(replace_on_immutable=True))
    assert names(recreated["recreated"]) == ["migrate"]
    assert get(cluster, "batch/v1", "Job", namespace, "migrate")["spec"]["template"]["spec"]["containers"][0][
        "image"] == "busybox:1.36"


def test_replace_sync_option_drops_fields_other_managers_added(cluster, namespace, workdir, new_app):
    app = new_app()
    settings = configmap(namespace, "settings", color="blue")
    apply(cluster, make_bundle(workdir, [settings]), app, Options())
    cluster.apply(configmap(namespace, "settings", extra="added by hand"), "kubectl-edit")

    apply(cluster, make_bundle(workdir, [configmap(namespace, "settings", color="green")]), app, Options())
    assert get(cluster, "v1", "ConfigMap", namespace, "settings")["data"] == {"color": "green", "extra": "added by hand"}

    settings = configmap(namespace, "settings", color="red")
    settings["metadata"]["annotations"] = {SYNC_OPTIONS: "Replace=true"}
    replaced = apply(cluster, make_bundle(workdir, [settings]), app, Options())
    assert names(replaced["configured"]) == ["settings"]
    assert get(cluster, "v1", "ConfigMap", namespace, "settings")["data"] == {"color": "red"}


# -- 3. fields other controllers own ----------------------------------------------------------

def test_hpa_owned_replicas_are_left_to_the_hpa(cluster, namespace, workdir, new_app):
    app = new_app()
    web = deployment(namespace, "web", replicas=1)
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "web", "namespace": namespace},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 3, "maxReplicas": 5,
                    "metrics": [{"type": "Resource", "resource": {
                        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}}
    ignore = [{"group": "apps", "kind": "Deployment", "json_pointers": ["/spec/replicas"]}]
    apply(cluster, make_bundle(workdir, [web, hpa]), app, Options(ignore=ignore))
    wait_for("the HPA to scale web to 3", lambda: get(cluster, "apps/v1", "Deployment", namespace, "web")["spec"][
        "replicas"] == 3, timeout=90)

    web["spec"]["template"]["metadata"]["labels"]["tier"] = "front"  # an unrelated change
    changed = make_bundle(workdir, [web, hpa])
    seen = diff(cluster, changed, read_record(cluster, app), ignore=ignore)
    assert "replicas:" not in seen["resources"][0]["diff"], seen["resources"][0]["diff"]
    result = apply(cluster, changed, app, Options(ignore=ignore))
    assert names(result["configured"]) == ["web"]
    live = get(cluster, "apps/v1", "Deployment", namespace, "web")
    assert live["spec"]["replicas"] == 3, "apply reset the replicas the HPA owns"
    assert live["spec"]["template"]["metadata"]["labels"]["tier"] == "front"


def test_jq_path_expression_and_managed_fields_managers_ignores(cluster, namespace, workdir, new_app):
    app = new_app()
    web = deployment(namespace, "web", replicas=1, image="nginx:1.27")
    web["spec"]["template"]["spec"]["containers"].append({"name": "proxy", "image": "envoy:1.30"})
    settings = configmap(namespace, "settings", color="blue", size="s")
    ignore = [
        {"group": "apps", "kind": "Deployment",
         "jq_path_expressions": ['.spec.template.spec.containers[] | select(.name == "proxy") | .image']},
        {"kind": "ConfigMap", "name": "settings", "managed_fields_managers": ["rollout-operator"]},
    ]
    apply(cluster, make_bundle(workdir, [web, settings]), app, Options(ignore=ignore))

    # another tool moves the proxy image; an operator owns the ConfigMap's size
    cluster.request("PATCH", "/apis/apps/v1/namespaces/%s/deployments/web" % namespace,
                    body={"spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoy:1.31"}]}}}},
                    content_type="application/strategic-merge-patch+json", query={"fieldManager": "mesh-injector"})
    cluster.apply(configmap(namespace, "settings", size="xl"), "rollout-operator", force=True)

    bundle = make_bundle(workdir, [web, settings])
    seen = diff(cluster, bundle, read_record(cluster, app), ignore=ignore)
    assert not seen["changed"], seen["resources"]

    web["spec"]["template"]["metadata"]["labels"]["tier"] = "front"
    settings["data"]["color"] = "green"
    result = apply(cluster, make_bundle(workdir, [web, settings]), app, Options(ignore=ignore))
    assert names(result["configured"]) == ["settings", "web"]
    live = get(cluster, "apps/v1", "Deployment", namespace, "web")
    assert [c["image"] for c in live["spec"]["template"]["spec"]["containers"]] == ["nginx:1.27", "envoy:1.31"]
    assert get(cluster, "v1", "ConfigMap", namespace, "settings")["data"] == {"color": "green", "size": "xl"}


# -- 4. scope from discovery ------------------------------------------------------------------

def test_cluster_scoped_custom_resource_in_a_namespaced_app(cluster, namespace, workdir, new_app, crds):
    app = new_app()
    group = "%s.gitops.test" % uuid.uuid4().hex[:8]
    install_crd(cluster, crds, crd(group, "ClusterIssuer", "clusterissuers", scope="Cluster"))
    issuer_name = "issuer-%s" % uuid.uuid4().hex[:6]
    # the namespace render gives every object of an app with ``namespace:`` set
    issuer = {"apiVersion": "%s/v1" % group, "kind": "ClusterIssuer",
              "metadata": {"name": issuer_name, "namespace": namespace}, "spec": {"size": 1}}
    objects = [issuer, configmap(namespace, "settings")]

    first = apply(cluster, make_bundle(workdir, objects), app, Options())
    assert names(first["created"]) == sorted([issuer_name, "settings"])
    recorded = [o for o in read_record(cluster, app)["objects"] if o["kind"] == "ClusterIssuer"]
    assert recorded and recorded[0]["namespace"] == "", recorded
    second = apply(cluster, make_bundle(workdir, objects), app, Options())
    assert not second["changed"] and names(second["unchanged"]) == sorted([issuer_name, "settings"]), second
    seen = diff(cluster, make_bundle(workdir, objects), read_record(cluster, app))
    assert not seen["changed"], seen

    pruned = apply(cluster, make_bundle(workdir, objects[1:]), app, Options(prune=True))
    assert names(pruned["pruned"]) == [issuer_name], pruned
    assert get(cluster, "%s/v1" % group, "ClusterIssuer", "", issuer_name) is None


# -- 5. namespaces the app creates ------------------------------------------------------------

def test_create_namespace_with_metadata_validates_in_the_real_namespace(cluster, workdir, new_app):
    """The namespace (with its managed labels) exists before validation, so its admission applies.

    Pod Security admission reads the namespace's labels: validated in a stand-in namespace the
    Pod would pass and then fail half-way through the apply.
    """
    app = new_app()
    target = "t-create-ns-%s" % uuid.uuid4().hex[:6]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "runner", "namespace": target},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    metadata = {"labels": {"team": "payments", "pod-security.kubernetes.io/enforce": "restricted"},
                "annotations": {"example.com/owner": "payments"}}
    options = dict(create_namespaces=True, managed_namespace_metadata=metadata)
    try:
        with pytest.raises(GitOpsError) as err:
            apply(cluster, make_bundle(workdir, [configmap(target, "settings"), pod]), app, Options(**options))
        message = str(err.value)
        assert "rejected" in message and "Pod %s/runner" % target in message and "PodSecurity" in message, message
        assert get(cluster, "v1", "Pod", target, "runner") is None
        assert get(cluster, "v1", "ConfigMap", target, "settings") is None
        ns = get(cluster, "v1", "Namespace", "", target)
        assert ns["metadata"]["labels"]["team"] == "payments"
        assert ns["metadata"]["annotations"]["example.com/owner"] == "payments"

        pod["spec"]["securityContext"] = {"runAsNonRoot": True, "runAsUser": 1000,
                                          "seccompProfile": {"type": "RuntimeDefault"}}
        pod["spec"]["containers"][0]["securityContext"] = {"allowPrivilegeEscalation": False,
                                                           "capabilities": {"drop": ["ALL"]}}
        result = apply(cluster, make_bundle(workdir, [configmap(target, "settings"), pod]), app, Options(**options))
        assert names(result["created"]) == ["runner", "settings"]
    finally:
        cluster.delete({"apiVersion": "v1", "kind": "Namespace", "name": target})


# -- 6. a CRD and its resources in one bundle; Sync hooks in their wave -----------------------

def test_invalid_custom_resource_is_rejected_before_its_wave_writes(cluster, namespace, workdir, new_app, crds):
    app = new_app()
    group = "%s.gitops.test" % uuid.uuid4().hex[:8]
    definition = crd(group, "Widget", "widgets")
    crds.append(definition["metadata"]["name"])
    widget = {"apiVersion": "%s/v1" % group, "kind": "Widget", "metadata": {"name": "w1", "namespace": namespace},
              "spec": {"size": "three"}}
    with pytest.raises(GitOpsError) as err:
        apply(cluster, make_bundle(workdir, [definition, widget, configmap(namespace, "settings")]), app, Options())
    message = str(err.value)
    assert "rejected" in message and "Widget %s/w1" % namespace in message and "size" in message, message
    assert get(cluster, "v1", "ConfigMap", namespace, "settings") is None, "the CR's wave wrote before validating it"
    assert get(cluster, "%s/v1" % group, "Widget", namespace, "w1") is None


def test_sync_hook_runs_inside_its_wave(cluster, namespace, workdir, new_app):
    app = new_app()
    objects = [configmap(namespace, "first"), configmap(namespace, "sync-hook"), configmap(namespace, "second")]
    meta = {"first": {"wave": 0}, "sync-hook": {"hook": ["Sync"], "wave": 0}, "second": {"wave": 1}}
    result = apply(cluster, make_bundle(workdir, objects, meta), app, Options(timeout=60))
    assert [(h["phase"], h["name"]) for h in result["hooks"]] == [("Sync", "sync-hook")]

    def created_at(name):  # ConfigMaps are never rewritten by a controller: this is their creation
        return int(get(cluster, "v1", "ConfigMap", namespace, name)["metadata"]["resourceVersion"])
    assert created_at("first") < created_at("sync-hook") < created_at("second")


# -- 7. prune: false ---------------------------------------------------------------------------

def test_prune_false_app_is_synced_with_orphans_listed(cluster, namespace, workdir, new_app):
    app = new_app()
    objects = [configmap(namespace, "settings"), configmap(namespace, "leftover")]
    apply(cluster, make_bundle(workdir, objects), app, Options())
    smaller = make_bundle(workdir, objects[:1])

    seen = diff(cluster, smaller, read_record(cluster, app), prune=False)
    assert not seen["changed"] and seen["resources"] == [], seen
    assert names(seen["orphaned"]) == ["leftover"] and seen["summary"]["delete"] == 0
    applied = apply(cluster, smaller, app, Options(prune=False))
    assert not applied["changed"] and names(applied["orphaned"]) == ["leftover"], applied
    record = read_record(cluster, app)
    assert [o.get("orphaned") for o in record["objects"] if o["name"] == "leftover"] == [True]
    row = app_row({"app": app, "diff": seen, "apply": applied})
    assert row["sync"] == "SYNCED" and [o["name"] for o in row["orphaned"]] == ["leftover"], row


# -- issue 10: kinds the cluster stops serving; what a failed run says ------------------------

def test_objects_of_a_kind_no_longer_served_stay_recorded(cluster, namespace, workdir, new_app, crds):
    app = new_app()
    group = "%s.gitops.test" % uuid.uuid4().hex[:8]
    definition = crd(group, "Widget", "widgets")
    install_crd(cluster, crds, definition)
    widget = {"apiVersion": "%s/v1" % group, "kind": "Widget", "metadata": {"name": "w1", "namespace": namespace},
              "spec": {"size": 1}}
    apply(cluster, make_bundle(workdir, [widget, configmap(namespace, "settings")]), app, Options())

    definition["spec"]["versions"][0]["served"] = False  # e.g. an aggregated API down, a version removed
    cluster.apply(definition, "test-setup")
    wait_for("discovery to stop serving %s/v1" % group, lambda: not _served(cluster, group))
    smaller = make_bundle(workdir, [configmap(namespace, "settings")])
    result = apply(cluster, smaller, app, Options(prune=True))
    assert names(result["unserved"]) == ["w1"] and result["pruned"] == [], result
    assert "w1" in names(read_record(cluster, app)["objects"]), "a recorded object must never be forgotten"

    definition["spec"]["versions"][0]["served"] = True
    cluster.apply(definition, "test-setup")
    wait_for("discovery to serve %s/v1 again" % group, lambda: _served(cluster, group))
    result = apply(cluster, smaller, app, Options(prune=True))
    assert names(result["pruned"]) == ["w1"]
    assert get(cluster, "%s/v1" % group, "Widget", namespace, "w1") is None


def _served(cluster, group):
    cluster.forget_discovery()
    try:
        cluster.resource("%s/v1" % group, "Widget")
    except GitOpsError:
        return False
    return True


def test_a_failed_run_that_wrote_reports_changed(cluster, kubeconfig, namespace, workdir, ansible, new_app):
    app = new_app()
    stuck = deployment(namespace, "stuck", replicas=1, labels={"gitops.k8s.test/never-ready": "true"})
    stuck["spec"]["progressDeadlineSeconds"] = 5
    bundle = make_bundle(workdir, [configmap(namespace, "settings"), stuck, configmap(namespace, "later")],
                         meta={"later": {"wave": 1}})
    proc, result = ansible.module("gitops.k8s.apply", {"bundle": bundle.path, "app": app, "timeout": 60})
    assert result.get("failed"), proc.stdout
    assert result["changed"] is True, "objects were created before the failure: %s" % proc.stdout
    assert get(cluster, "v1", "ConfigMap", namespace, "settings") is not None
