"""Waves and hooks as Argo CD annotates them, pushed from Git through the push playbook.

The app of sync_waves/manifests.yaml has the shape of Argo CD's own sync-waves example: waves
that hold a ReplicaSet and a Service, waves that hold only a Sync hook, a PreSync hook named by
generateName. Its sync once waited the whole wave timeout for each hook-only wave and then went on
as if healthy; the duration bound here catches any such stall.
"""

import os

from test_push_reconcile import PUSH, GitRepo, names, new_deployer
from ansible_collections.gitops.k8s.plugins.module_utils.sync.hooks import HOOK_LABEL
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import read_record

MANIFESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sync_waves", "manifests.yaml")
# Each wave may wait this long; the sync below takes a few seconds (kwok runs the pods and Jobs).
WAVE_TIMEOUT = 60
# Generous for a loaded 2-core machine, and far below one wave timeout: a wave that waits out its
# timeout shows.
SYNC_BOUND = 25


def manifests(**replace):
    with open(MANIFESTS, encoding="utf-8") as handle:
        text = handle.read()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def jobs(cluster, namespace):
    return {job["metadata"]["name"]: job for job in cluster.list(cluster.resource("batch/v1", "Job"), namespace)[0]}


def get(cluster, api_version, kind, namespace, name):
    return cluster.get({"apiVersion": api_version, "kind": kind, "namespace": namespace, "name": name})


def ready_since(cluster, namespace, role):
    """When the pod of the ReplicaSet of ``role`` became Ready (the server's time, to the second)."""
    pods = cluster.list(cluster.resource("v1", "Pod"), namespace, label_selector="role=%s" % role)[0]
    assert len(pods) == 1, pods
    return next(c["lastTransitionTime"] for c in pods[0]["status"]["conditions"] if c["type"] == "Ready")


def test_argo_cd_sync_waves_shape_syncs_in_order_in_seconds_and_replaces_its_hooks(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    repo.commit({"waves/manifests.yaml": manifests()}, "Sync waves")
    [app] = names(namespace, "waves")
    apps = [{"name": app, "repo": repo.url, "path": "waves", "namespace": namespace,
             "wait": {"timeout": WAVE_TIMEOUT}}]
    deploy = new_deployer(ansible, kubeconfig, workdir)

    pushed = deploy.run(PUSH, apps)
    assert pushed.rc == 0, pushed.out
    row = pushed.row(app)
    assert (row["sync"], row["health"], row["outcome"]) == ("SYNCED", "HEALTHY", "synced"), row
    synced = read_record(cluster, app)["history"][0]
    assert synced["duration"] < SYNC_BOUND, "the sync took %.1fs (wave timeout %ss)" % (synced["duration"],
                                                                                        WAVE_TIMEOUT)

    # the annotations became hooks and waves: each step starts once the one before is done
    first = jobs(cluster, namespace)
    [migrate] = [name for name in first if name.startswith("migrate-schema-")]
    assert set(first) == {migrate, "maintenance-on", "maintenance-off"}, sorted(first)
    assert all(job["metadata"]["labels"].get(HOOK_LABEL) for job in first.values())
    api = get(cluster, "apps/v1", "ReplicaSet", namespace, "api")
    web = get(cluster, "apps/v1", "ReplicaSet", namespace, "web")
    assert first[migrate]["status"]["completionTime"] <= api["metadata"]["creationTimestamp"]
    assert ready_since(cluster, namespace, "api") <= first["maintenance-on"]["metadata"]["creationTimestamp"]
    assert first["maintenance-on"]["status"]["completionTime"] <= web["metadata"]["creationTimestamp"]
    assert ready_since(cluster, namespace, "web") <= first["maintenance-off"]["metadata"]["creationTimestamp"]
    recorded = {o["name"] for o in read_record(cluster, app)["objects"]}
    assert recorded == {"api", "web"}, "hooks are not inventoried: %s" % sorted(recorded)

    # a new commit runs the hooks again: BeforeHookCreation deletes the previous ones first, the
    # generateName one found by its label (its name is new each time)
    repo.commit({"waves/manifests.yaml": manifests(**{"name: web\n  annotations": "name: web\n  labels:\n"
                                                      "    release: two\n  annotations"})}, "Label web")
    again = deploy.run(PUSH, apps)
    assert again.rc == 0, again.out
    assert (again.row(app)["sync"], again.row(app)["health"]) == ("SYNCED", "HEALTHY"), again.row(app)
    assert read_record(cluster, app)["history"][0]["duration"] < SYNC_BOUND
    second = jobs(cluster, namespace)
    [migrate_again] = [name for name in second if name.startswith("migrate-schema-")]
    assert migrate_again != migrate and set(second) == {migrate_again, "maintenance-on", "maintenance-off"}
    for name in ("maintenance-on", "maintenance-off"):
        assert second[name]["metadata"]["uid"] != first[name]["metadata"]["uid"], name
    assert get(cluster, "apps/v1", "ReplicaSet", namespace, "web")["metadata"]["labels"]["release"] == "two"


def test_a_wave_that_times_out_fails_the_push_and_the_next_waves_never_start(
        ansible, kubeconfig, cluster, namespace, workdir):
    # pods that never get ready (the local cluster's never-ready label) and no progress deadline:
    # wave 0 is still Progressing when its timeout ends, which is a failure, never health
    stuck = manifests(**{"        role: api\n    spec:": "        role: api\n        gitops.k8s.test/never-ready: "
                         "\"true\"\n    spec:"})
    repo = GitRepo(workdir)
    repo.commit({"waves/manifests.yaml": stuck}, "Pods that never get ready")
    [app] = names(namespace, "stuck")
    timeout = 8
    apps = [{"name": app, "repo": repo.url, "path": "waves", "namespace": namespace, "wait": {"timeout": timeout}}]

    failed = new_deployer(ansible, kubeconfig, workdir).run(PUSH, apps)
    assert failed.rc != 0, failed.out
    row = failed.row(app)
    assert (row["outcome"], row["failed_step"]) == ("failed", "apply"), row
    assert row["health"] != "HEALTHY", row
    assert "wave 0 did not become healthy" in row["message"] and "timed out after" in row["message"], row
    assert "ReplicaSet %s/api" % namespace in row["message"], row
    assert get(cluster, "apps/v1", "ReplicaSet", namespace, "web") is None, "wave 2 must not start"
    assert set(name for name in jobs(cluster, namespace) if not name.startswith("migrate-schema-")) == set()
    record = read_record(cluster, app)
    assert record["result"] == "Failed" and record["history"][0]["duration"] < timeout + SYNC_BOUND
