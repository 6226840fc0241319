"""diff and apply against the real control plane: the whole life of an application.

The engine is called in-process (so requests can be counted with ``cluster.requests_made``); the
Ansible-facing behaviour (check mode, --diff, app_info) goes through real playbooks.
"""

import base64
import copy
import os
import threading
import time
import uuid

import pytest

from localcluster import wait_for
from ansible_collections.gitops.k8s.plugins.module_utils.sync.apply import Options, apply
from ansible_collections.gitops.k8s.plugins.module_utils.bundle import Bundle, write_bundle
from ansible_collections.gitops.k8s.plugins.module_utils.sync.compare import diff
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import INVENTORY_NAMESPACE, read_record
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.lease import Lease
from ansible_collections.gitops.k8s.plugins.module_utils.refs import ref_of

CRASH_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"


# -- helpers -----------------------------------------------------------------------------------

def make_bundle(workdir, objects, meta=None):
    """A bundle of ``objects``; ``meta`` maps an object name to {wave, hook, hook_delete_policy}."""
    meta = meta or {}
    entries = []
    for obj in objects:
        name = obj["metadata"].get("name") or obj["metadata"].get("generateName")
        extra = meta.get(name, {})
        entries.append(dict(ref_of(obj), wave=extra.get("wave", 0), hook=extra.get("hook"),
                            hook_delete_policy=extra.get("hook_delete_policy", []),
                            source="manifests/%s.yaml" % name))
    path = os.path.join(workdir, "bundle-%s" % uuid.uuid4().hex[:6])
    write_bundle(path, copy.deepcopy(objects), entries, revision="r-%s" % uuid.uuid4().hex[:6])
    return Bundle.load(path)


def app_name():
    return "t-%s" % uuid.uuid4().hex[:8]


def configmap(ns, name, **data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def deployment(ns, name, image="nginx:1.27", replicas=2, labels=None):
    pod_labels = dict({"app": name}, **(labels or {}))
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": pod_labels},
                              "spec": {"containers": [{"name": name, "image": image}]}}},
    }


def job(ns, name=None, generate_name=None, crash=False):
    meta = {"namespace": ns}
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = generate_name
    labels = {CRASH_LABEL: "true"} if crash else {}
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": labels}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "run", "image": "busybox"}]}}},
    }


def get(cluster, api, kind, ns, name):
    return cluster.get({"apiVersion": api, "kind": kind, "namespace": ns, "name": name})


class Changes:
    """Every change to one kind in a namespace from now on, in the server's order (one watch stream)."""

    def __init__(self, cluster, api_version, kind, namespace):
        resource = cluster.resource(api_version, kind)
        version = cluster.list(resource, namespace)[1]
        self.events = []
        threading.Thread(target=self._run, args=(cluster, resource, namespace, version), daemon=True).start()

    def _run(self, cluster, resource, namespace, version):
        for event in cluster.watch(resource, namespace, version, timeout_seconds=300):
            self.events.append(event)

    def seen(self):
        """(name, whether it was Available) of every change so far."""
        return [(e["object"]["metadata"]["name"], any(c["type"] == "Available" and c["status"] == "True"
                                                      for c in e["object"].get("status", {}).get("conditions", [])))
                for e in list(self.events) if e["type"] in ("ADDED", "MODIFIED")]


def names(refs):
    return sorted(r["name"] for r in refs)


def diff_of(cluster, bundle, app, **kw):
    """Run the diff engine; return (result, requests it made)."""
    before = cluster.requests_made
    result = diff(cluster, bundle, read_record(cluster, app), **kw)
    return result, cluster.requests_made - before


@pytest.fixture
def inventory_cleanup(cluster):
    apps = []
    yield apps
    for app in apps:
        for kind, api in (("ConfigMap", "v1"), ("Lease", "coordination.k8s.io/v1")):
            cluster.delete({"apiVersion": api, "kind": kind, "namespace": INVENTORY_NAMESPACE, "name": "gitops-app-" + app})


@pytest.fixture
def new_app(inventory_cleanup):
    def make():
        app = app_name()
        inventory_cleanup.append(app)
        return app
    return make


# -- the life of an app ------------------------------------------------------------------------

def test_few_objects_of_a_kind_are_read_by_name(cluster, namespace, workdir, new_app):
    # a namespace shared with many other objects of the kind: an app of a few reads them by name
    # (never all of them), an app of many lists the kind once (never a GET per object)
    for n in range(30):
        cluster.apply(configmap(namespace, "crowd-%02d" % n, n=str(n)), "test")
    few = make_bundle(os.path.join(workdir, "few"), [configmap(namespace, "a%d" % n, a="1") for n in range(2)])
    many = make_bundle(os.path.join(workdir, "many"), [configmap(namespace, "b%d" % n, b="1") for n in range(6)])
    apps = {"few": (new_app(), few), "many": (new_app(), many)}
    for app, bundle in apps.values():
        apply(cluster, bundle, app, Options(revision=bundle.revision))

    reads = {}
    for label, (app, bundle) in apps.items():
        record, sent, request = read_record(cluster, app), [], cluster.request
        cluster.request = lambda method, path, *a, **kw: sent.append((method, path)) or request(method, path, *a, **kw)
        try:
            result = diff(cluster, bundle, record)
        finally:
            del cluster.request
        assert not result["changed"] and result["fast_path"] == len(bundle.objects), result
        reads[label] = sorted(path.rsplit("/", 1)[-1] for method, path in sent if "/configmaps" in path)
    assert reads == {"few": ["a0", "a1"], "many": ["configmaps"]}, reads


def test_a_write_by_another_manager_between_our_read_and_the_dry_run_is_not_our_change(
        cluster, namespace, workdir, new_app):
    # a controller writes the object after we read it and before our dry-run (the deployment
    # controller's revision annotation, after a template change): the dry-run merges into the newer
    # object, so comparing it with our older read showed that controller's write as our change
    app = new_app()
    bundle = make_bundle(workdir, [configmap(namespace, "settings", color="blue")])
    apply(cluster, bundle, app, Options(revision=bundle.revision))
    path = "/api/v1/namespaces/%s/configmaps/settings" % namespace

    def annotate(value):
        cluster.request("PATCH", path, body={"metadata": {"annotations": {"example.com/seen": value}}},
                        content_type="application/merge-patch+json", query={"fieldManager": "other-controller"})

    def read_then_another_write(resource, ns, names):
        found = cluster.read(resource, ns, names)
        annotate(str(uuid.uuid4()))
        return found

    # without a record (a first diff, an adoption) a dry-run decides: nothing of ours to change
    seen = diff(cluster, bundle, None, live=read_then_another_write)
    assert not seen["changed"], seen["resources"]

    changed = make_bundle(os.path.join(workdir, "green"), [configmap(namespace, "settings", color="green")])
    seen = diff(cluster, changed, read_record(cluster, app), live=read_then_another_write)
    assert seen["changed"] and seen["summary"]["update"] == 1, seen["summary"]
    [resource] = seen["resources"]
    assert "example.com/seen" not in resource["diff"] and "+  color: green" in resource["diff"], resource["diff"]


def test_create_noop_change_drift_and_prune(cluster, namespace, workdir, new_app):
    app = new_app()
    objects = [configmap(namespace, "settings", color="blue"), configmap(namespace, "extra", a="1"),
               deployment(namespace, "web")]
    bundle = make_bundle(workdir, objects)

    first = apply(cluster, bundle, app, Options(revision=bundle.revision))
    assert first["changed"] and names(first["created"]) == ["extra", "settings", "web"]
    record = read_record(cluster, app)
    assert record["revision"] == bundle.revision and record["result"] == "Succeeded"
    assert record["digest"] == bundle.digest and len(record["history"]) == 1
    assert all(o["digest"] and o["resourceVersion"] for o in record["objects"])

    # no-op: the Namespace, then each object read once (GET: an app has few of each kind here);
    # no dry-run at all, though the deployment controller has rewritten the Deployment meanwhile
    wait_for("the deployment controller to roll web out", lambda: (
        get(cluster, "apps/v1", "Deployment", namespace, "web").get("status", {}).get("availableReplicas") == 2))
    result, requests = diff_of(cluster, bundle, app)
    assert not result["changed"] and result["summary"]["unchanged"] == 3
    assert result["fast_path"] == 3 and requests == 4, "a no-op diff must read each object once, got %d" % requests
    again = apply(cluster, bundle, app, Options(revision=bundle.revision))
    assert not again["changed"] and names(again["unchanged"]) == ["extra", "settings", "web"]
    # the Lease (get, update, release), the record, the Secret-digest key, the Namespace, the 3
    # objects (a few of a kind are read by name: see test_few_objects_of_a_kind_are_read_by_name);
    # no dry-run, no write (a Lease renewal or a retried read may add one)
    assert again["api_requests"] <= 11, again["api_requests"]

    # change one field
    objects[0]["data"]["color"] = "green"
    changed = make_bundle(workdir, objects)
    result, _requests = diff_of(cluster, changed, app)
    assert result["summary"] == {"create": 0, "update": 1, "unchanged": 2, "delete": 0}
    assert "-  color: blue" in result["resources"][0]["diff"] and "+  color: green" in result["resources"][0]["diff"]
    applied = apply(cluster, changed, app, Options(revision=changed.revision))
    assert names(applied["configured"]) == ["settings"]
    assert get(cluster, "v1", "ConfigMap", namespace, "settings")["data"]["color"] == "green"

    # drift by a second field manager: found by diff, undone by apply (force)
    drift = configmap(namespace, "settings", color="red")
    cluster.apply(drift, "kubectl-edit", force=True)
    result, _requests = diff_of(cluster, changed, app)
    assert result["changed"] and "-  color: red" in result["resources"][0]["diff"]
    healed = apply(cluster, changed, app, Options(revision=changed.revision))
    assert names(healed["configured"]) == ["settings"]
    assert get(cluster, "v1", "ConfigMap", namespace, "settings")["data"]["color"] == "green"

    # prune a removed object (and keep one whose prune is disabled)
    protected = configmap(namespace, "protected", keep="me")
    protected["metadata"]["annotations"] = {"argocd.argoproj.io/sync-options": "Prune=false"}
    with_protected = make_bundle(workdir, objects + [protected])
    apply(cluster, with_protected, app, Options())
    smaller = make_bundle(workdir, [objects[0], objects[2]])
    result, _requests = diff_of(cluster, smaller, app)
    assert [(r["name"], r["action"]) for r in result["resources"]] == [("extra", "delete")]
    assert names(result["kept"]) == ["protected"]
    no_prune = apply(cluster, smaller, app, Options())
    assert no_prune["pruned"] == [] and get(cluster, "v1", "ConfigMap", namespace, "extra") is not None
    pruned = apply(cluster, smaller, app, Options(prune=True))
    assert names(pruned["pruned"]) == ["extra"] and names(pruned["prune_skipped"]) == ["protected"]
    assert get(cluster, "v1", "ConfigMap", namespace, "extra") is None
    assert get(cluster, "v1", "ConfigMap", namespace, "protected") is not None
    assert "extra" not in names(read_record(cluster, app)["objects"])

    # an empty bundle with prune is refused, nothing deleted
    with pytest.raises(GitOpsError, match="refusing to prune every object of app") as err:
        apply(cluster, make_bundle(workdir, []), app, Options(prune=True))
    assert names(err.value.details["would_prune"]) == ["settings", "web"]
    assert get(cluster, "apps/v1", "Deployment", namespace, "web") is not None
    history = read_record(cluster, app)["history"]
    assert [h["result"] for h in history][:2] == ["Succeeded", "Succeeded"] and len(history) >= 6


def test_invalid_object_in_the_middle_changes_nothing(cluster, namespace, workdir, new_app):
    app = new_app()
    bad = deployment(namespace, "broken")
    bad["spec"]["replicas"] = "three"
    unknown = {"apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": "g", "namespace": namespace}}
    bundle = make_bundle(workdir, [configmap(namespace, "before"), bad, unknown, configmap(namespace, "after")])
    with pytest.raises(GitOpsError) as err:
        apply(cluster, bundle, app, Options())
    message = str(err.value)
    assert "rejected 2 object(s)" in message and "nothing was changed" in message
    assert "Deployment %s/broken (manifests/broken.yaml)" % namespace in message
    assert "Gizmo %s/g (manifests/g.yaml)" % namespace in message and "CRD" in message
    assert {r["name"] for r in err.value.details["rejected"]} == {"broken", "g"}
    assert get(cluster, "v1", "ConfigMap", namespace, "before") is None
    assert get(cluster, "v1", "ConfigMap", namespace, "after") is None
    assert read_record(cluster, app) is None


def test_immutable_field_change_is_a_clear_error(cluster, namespace, workdir, new_app):
    app = new_app()
    frozen = configmap(namespace, "frozen", v="1")
    frozen["immutable"] = True
    apply(cluster, make_bundle(workdir, [frozen]), app, Options())
    frozen["data"]["v"] = "2"
    with pytest.raises(GitOpsError, match=r"ConfigMap %s/frozen \(manifests/frozen.yaml\): .*immutable" % namespace):
        apply(cluster, make_bundle(workdir, [frozen, configmap(namespace, "other")]), app, Options())
    assert get(cluster, "v1", "ConfigMap", namespace, "frozen")["data"]["v"] == "1"
    assert get(cluster, "v1", "ConfigMap", namespace, "other") is None


def test_crd_and_its_custom_resources_in_one_bundle(cluster, namespace, workdir, new_app):
    app = new_app()
    group = "%s.gitops.test" % uuid.uuid4().hex[:8]
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.%s" % group},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "properties": {"spec": {"type": "object", "properties": {
                         "size": {"type": "integer"}}}}}}}]},
    }
    widget = {"apiVersion": "%s/v1" % group, "kind": "Widget", "metadata": {"name": "w1", "namespace": namespace},
              "spec": {"size": 3}}
    try:
        result = apply(cluster, make_bundle(workdir, [crd, widget]), app, Options())
        assert names(result["created"]) == ["w1", "widgets.%s" % group]
        assert result["unvalidated"] == [], "validated once its CRD is Established, before it is written"
        assert get(cluster, "%s/v1" % group, "Widget", namespace, "w1")["spec"]["size"] == 3
        again, requests = diff_of(cluster, make_bundle(workdir, [crd, widget]), app)
        assert not again["changed"]
    finally:
        cluster.delete({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                        "name": "widgets.%s" % group})


def test_waves_and_hooks_run_in_order_with_delete_policies(cluster, namespace, workdir, new_app):
    app = new_app()
    objects = [
        job(namespace, generate_name="migrate-"),
        deployment(namespace, "db", replicas=1),
        deployment(namespace, "web", replicas=2),
        job(namespace, name="smoke-test"),
    ]
    meta = {
        "migrate-": {"hook": ["PreSync"], "hook_delete_policy": ["HookSucceeded"]},
        "db": {"wave": 0}, "web": {"wave": 1},
        "smoke-test": {"hook": ["PostSync"], "hook_delete_policy": ["BeforeHookCreation"]},
    }
    bundle = make_bundle(workdir, objects, meta)
    deployments = Changes(cluster, "apps/v1", "Deployment", namespace)
    result = apply(cluster, bundle, app, Options(timeout=120))
    assert [(h["phase"], h["status"]) for h in result["hooks"]] == [("PreSync", "Healthy"), ("PostSync", "Healthy")]
    migrate, smoke = result["hooks"]
    assert migrate["name"].startswith("migrate-") and migrate["deleted"] and not smoke["deleted"]
    assert get(cluster, "batch/v1", "Job", namespace, migrate["name"]) is None, "HookSucceeded deletes it"
    smoke_job = get(cluster, "batch/v1", "Job", namespace, "smoke-test")
    db = get(cluster, "apps/v1", "Deployment", namespace, "db")
    web = get(cluster, "apps/v1", "Deployment", namespace, "web")
    available = {c["type"]: c for c in db["status"]["conditions"]}["Available"]
    assert available["status"] == "True"
    # wave 1 starts once wave 0 is healthy (in the order the server made the changes); PostSync once every wave is
    seen = wait_for("the watch to see web created", lambda: ("web", False) in deployments.seen() and deployments.seen())
    assert seen.index(("db", True)) < seen.index(("web", False)), seen
    assert smoke_job["metadata"]["creationTimestamp"] >= web["metadata"]["creationTimestamp"]
    assert "smoke-test" not in names(read_record(cluster, app)["objects"]), "hooks are not inventoried"

    # the next change re-runs the hooks; BeforeHookCreation replaces the fixed-name Job
    objects[2]["spec"]["replicas"] = 1
    second = apply(cluster, make_bundle(workdir, objects, meta), app, Options(timeout=120))
    assert [h["status"] for h in second["hooks"]] == ["Healthy", "Healthy"]
    new_smoke = get(cluster, "batch/v1", "Job", namespace, "smoke-test")
    assert new_smoke["metadata"]["uid"] != smoke_job["metadata"]["uid"]


def test_failed_presync_hook_stops_the_sync_and_runs_syncfail(cluster, namespace, workdir, new_app):
    app = new_app()
    objects = [job(namespace, generate_name="migrate-", crash=True), configmap(namespace, "app-config"),
               configmap(namespace, "on-failure", notify="yes")]
    meta = {"migrate-": {"hook": ["PreSync"], "hook_delete_policy": ["HookSucceeded"]},
            "on-failure": {"hook": ["SyncFail"]}}
    with pytest.raises(GitOpsError, match="PreSync hook\\(s\\) failed: Job %s/migrate-" % namespace) as err:
        apply(cluster, make_bundle(workdir, objects, meta), app, Options(timeout=120))
    assert [(h["phase"], h["status"]) for h in err.value.details["hooks"]] == [("PreSync", "Degraded"), ("SyncFail", "Healthy")]
    assert get(cluster, "v1", "ConfigMap", namespace, "app-config") is None
    assert get(cluster, "v1", "ConfigMap", namespace, "on-failure") is not None
    record = read_record(cluster, app)
    assert record["result"] == "Failed" and record["history"][0]["result"] == "Failed"
    assert "app-config" in names(record["objects"]), "the union was recorded before the first write"


def test_concurrent_applies_of_one_app_never_interleave(cluster, namespace, workdir, new_app):
    app = new_app()
    bundles = [make_bundle(workdir, [deployment(namespace, "web", image="nginx:%d" % n, replicas=1)]) for n in (1, 2)]
    errors = []

    def run(bundle):
        try:
            apply(cluster, bundle, app, Options(revision=bundle.revision, wait_waves=True, lock_timeout=120))
        except GitOpsError as err:  # collected: an exception in a thread would be lost
            errors.append(err)

    threads = [threading.Thread(target=run, args=(b,)) for b in bundles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    history = read_record(cluster, app)["history"]
    assert len(history) == 2
    spans = sorted((h["time"] - h["duration"], h["time"]) for h in history)
    assert spans[0][1] <= spans[1][0] + 0.01, "the two applies overlapped: %s" % spans


def test_lock_held_by_another_run_and_expiry_of_a_crashed_holder(cluster, namespace, workdir, new_app):
    app = new_app()
    bundle = make_bundle(workdir, [configmap(namespace, "c")])
    holder = Lease(cluster, app, INVENTORY_NAMESPACE, identity="deploy-bot@ci-runner-7")
    holder.acquire(5)
    try:
        started = time.monotonic()
        with pytest.raises(GitOpsError, match="app %s is locked by deploy-bot@ci-runner-7" % app):
            apply(cluster, bundle, app, Options(lock_timeout=2))
        assert time.monotonic() - started >= 2
        assert get(cluster, "v1", "ConfigMap", namespace, "c") is None
    finally:
        holder.release()

    # a holder that crashed: it stopped renewing, so the lease expires one duration after this run
    # first sees it (judged by this run's clock, never the holder's)
    path = "/apis/coordination.k8s.io/v1/namespaces/%s/leases/gitops-app-%s" % (INVENTORY_NAMESPACE, app)
    lease = cluster.request("GET", path)
    lease["spec"].update(holderIdentity="crashed-run", leaseDurationSeconds=2,
                         renewTime="2020-01-01T00:00:00.000000Z", acquireTime="2020-01-01T00:00:00.000000Z")
    cluster.request("PUT", path, body=lease)
    result = apply(cluster, bundle, app, Options(lock_timeout=10))
    assert names(result["created"]) == ["c"]


def test_secret_change_is_diffed_without_revealing_values(cluster, namespace, workdir, new_app):
    app = new_app()

    def secret(password):
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": namespace},
                "type": "Opaque", "stringData": {"user": "admin", "password": password}}

    apply(cluster, make_bundle(workdir, [secret("hunter2-old")]), app, Options())
    changed = make_bundle(workdir, [secret("s3cr3t-new")])
    result = diff(cluster, changed, read_record(cluster, app))
    text = repr(result["ansible_diff"]) + repr(result)
    for value in ("hunter2-old", "s3cr3t-new"):
        assert value not in text and base64.b64encode(value.encode()).decode() not in text
    assert "-  password: '*** (old value)'" in result["resources"][0]["diff"]
    assert "+  password: '*** (new value)'" in result["resources"][0]["diff"]
    assert "user: '*** (unchanged)'" in result["resources"][0]["diff"]
    shown = diff(cluster, changed, read_record(cluster, app), show_secrets=True)
    assert base64.b64encode(b"s3cr3t-new").decode() in shown["resources"][0]["diff"]


def test_objects_of_another_app_are_not_adopted(cluster, namespace, workdir, new_app):
    owner, intruder = new_app(), new_app()
    apply(cluster, make_bundle(workdir, [configmap(namespace, "shared", by="owner")]), owner, Options())
    takeover = make_bundle(workdir, [configmap(namespace, "shared", by="intruder"), configmap(namespace, "mine")])
    with pytest.raises(GitOpsError, match="ConfigMap %s/shared is recorded in the inventory of app %s" % (namespace, owner)):
        apply(cluster, takeover, intruder, Options())
    assert get(cluster, "v1", "ConfigMap", namespace, "shared")["data"]["by"] == "owner"
    assert get(cluster, "v1", "ConfigMap", namespace, "mine") is None
    apply(cluster, takeover, intruder, Options(adopt=True))
    assert get(cluster, "v1", "ConfigMap", namespace, "shared")["data"]["by"] == "intruder"
    assert "shared" not in names(read_record(cluster, owner)["objects"]), "adopted objects leave the old inventory"


# -- through Ansible ---------------------------------------------------------------------------

def test_check_mode_writes_nothing_and_diff_mode_shows_before_after(cluster, kubeconfig, namespace, workdir, ansible,
                                                                    new_app):
    app = new_app()
    objects = [configmap(namespace, "settings", color="blue")]
    apply(cluster, make_bundle(workdir, objects), app, Options())
    record = read_record(cluster, app)
    objects[0]["data"]["color"] = "green"
    objects.append(configmap(namespace, "added", x="1"))
    bundle = make_bundle(workdir, objects)

    proc, result = ansible.module("gitops.k8s.apply", {"bundle": bundle.path, "app": app, "prune": True},
                                  check=True, diff=True)
    assert proc.returncode == 0 and not result.get("failed"), proc.stdout
    assert result["changed"] and names(result["created"]) == ["added"] and names(result["configured"]) == ["settings"]
    assert get(cluster, "v1", "ConfigMap", namespace, "settings")["data"]["color"] == "blue"
    assert get(cluster, "v1", "ConfigMap", namespace, "added") is None
    assert read_record(cluster, app) == record, "check mode must not write the inventory"
    assert "-  color: blue" in proc.stdout and "+  color: green" in proc.stdout, proc.stdout
    assert [r["action"] for r in result["resources"]] == ["update", "create"]

    proc, result = ansible.module("gitops.k8s.diff", {"bundle": bundle.path, "app": app}, diff=True)
    assert result["changed"] and result["summary"]["update"] == 1 and result["summary"]["create"] == 1
    assert "+  color: green" in proc.stdout

    proc, result = ansible.module("gitops.k8s.apply", {"bundle": bundle.path, "app": app, "revision": bundle.revision,
                                                       "trigger": "pull"})
    assert result["changed"] and result["inventory"]["name"] == "gitops-app-" + app, proc.stdout
    proc, result = ansible.module("gitops.k8s.apply", {"bundle": bundle.path, "app": app, "revision": bundle.revision})
    assert not result["changed"] and result["fast_path"] == 2

    proc, info = ansible.module("gitops.k8s.app_info", {"app": app})
    assert info["record"]["revision"] == bundle.revision and info["record"]["history"][0]["trigger"] == "pull"
    assert info["record"]["object_count"] == 2
    proc, every = ansible.module("gitops.k8s.app_info", {"objects": False})
    assert app in [r["app"] for r in every["apps"]] and all("objects" not in r for r in every["apps"])


def test_apply_refuses_to_record_one_revision_for_a_bundle_of_another(ansible, cluster, namespace, workdir):
    bundle = make_bundle(workdir, [configmap(namespace, "settings", color="blue")])
    proc, result = ansible.module("gitops.k8s.apply", {"bundle": bundle.path, "app": app_name(), "revision": "abc123"})
    assert result.get("failed"), proc.stdout
    assert "was rendered from revision %s, not abc123" % bundle.revision in result["msg"], result["msg"]
    assert get(cluster, "v1", "ConfigMap", namespace, "settings") is None
