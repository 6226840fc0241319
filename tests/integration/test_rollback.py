"""Health in the in-cluster history, and rollback to the last *healthy* revision (real control plane).

health_wait writes its verdict into the history entry of the sync it waited for; the sync role
rolls back to the newest revision recorded healthy -- never to one that applied but did not
become healthy.
"""

import os
import secrets

import pytest
import servers
from test_chart_sources import Helm, write_chart
from test_push_reconcile import PUSH, GitRepo, app_files, live, names, new_deployer

from ansible_collections.gitops.k8s.plugins.module_utils.bundle import write_bundle
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import read_record

NEVER_READY = {"gitops.k8s.test/never-ready": "true"}


def web_bundle(path, namespace, greeting, labels=None, replicas=1, deadline=600):
    """``deadline``: progressDeadlineSeconds; short only for pods that never get ready (a healthy
    rollout on a loaded machine may take longer than a few seconds)."""
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace},
        "spec": {"replicas": replicas, "progressDeadlineSeconds": deadline, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": dict({"app": "web"}, **(labels or {}))},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                                       "env": [{"name": "GREETING", "value": greeting}]}]}}},
    }
    entry = {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": namespace, "name": "web", "wave": 0,
             "hook": None, "hook_delete_policy": [], "source": "web.yaml"}
    write_bundle(str(path), [deployment], [entry])
    return str(path)


def history(cluster, app):
    return read_record(cluster, app)["history"]


def test_health_wait_records_its_verdict_on_the_sync_it_waited_for(ansible, kubeconfig, cluster, namespace, workdir):
    [app] = names(namespace, "hw")
    good = web_bundle(workdir + "/a", namespace, "good")
    proc, applied = ansible.module("gitops.k8s.apply", {"bundle": good, "app": app, "revision": "rev-a",
                                                        "wait_waves": False})
    assert not applied.get("failed"), applied

    # A glance is no verdict: wait=false, check mode and record=false write nothing.
    for params, check in (({"wait": False}, False), ({}, True), ({"record": False}, False)):
        proc, result = ansible.module("gitops.k8s.health_wait", dict({"app": app, "timeout": 60}, **params), check=check)
        assert not result.get("failed") and result["recorded"] is None, (params, check, result)
    assert "health" not in history(cluster, app)[0]

    proc, result = ansible.module("gitops.k8s.health_wait", {"app": app, "timeout": 60})
    assert result["healthy"] and not result["changed"], result
    assert (result["recorded"]["revision"], result["recorded"]["health"]) == ("rev-a", "Healthy")
    [entry] = history(cluster, app)
    assert entry["health"] == "Healthy" and entry["health_time"] >= entry["time"]

    # B applies fine but its pods never get ready: the verdict is Degraded, and it is kept.
    stuck = web_bundle(workdir + "/b", namespace, "stuck", labels=NEVER_READY, deadline=3)
    proc, applied = ansible.module("gitops.k8s.apply", {"bundle": stuck, "app": app, "revision": "rev-b",
                                                        "wait_waves": False})
    assert not applied.get("failed"), applied
    proc, result = ansible.module("gitops.k8s.health_wait", {"app": app, "timeout": 60})
    assert result["failed"] and result["status"] == "Degraded", result
    assert result["recorded"]["revision"] == "rev-b"
    assert [(h["revision"], h.get("health")) for h in history(cluster, app)] == [("rev-b", "Degraded"),
                                                                                 ("rev-a", "Healthy")]

    # app_info says where a rollback goes, and why nowhere when nothing else was healthy.
    proc, info = ansible.module("gitops.k8s.app_info", {"app": app, "objects": False, "rollback_from": "rev-b"})
    assert info["rollback_target"]["revision"] == "rev-a", info
    assert info["record"]["history"][0]["health"] == "Degraded"
    proc, info = ansible.module("gitops.k8s.app_info", {"app": app, "objects": False, "rollback_from": "rev-a"})
    assert info["rollback_target"] is None
    assert info["rollback_message"] == "no revision of %s other than rev-a was recorded healthy in its history" % app


def test_rollback_goes_to_the_last_healthy_revision_not_the_last_applied(ansible, kubeconfig, cluster, namespace,
                                                                         workdir):
    repo = GitRepo(workdir)
    [app] = names(namespace, "web")
    deploy = new_deployer(ansible, kubeconfig, workdir)

    def apps(rollback):
        return [{"name": app, "repo": repo.url, "path": "web", "namespace": namespace, "rollback": rollback,
                 "wait": {"timeout": 90}}]

    healthy = repo.commit(app_files("web", greeting="good"), "A: healthy")  # no short deadline: see web_bundle
    first = deploy.run(PUSH, apps(rollback=True))
    assert first.rc == 0, first.out
    assert history(cluster, app)[0]["health"] == "Healthy"

    # B applies but never becomes healthy; pushed without rollback, so the cluster keeps running B.
    never_healthy = repo.commit(app_files("web", greeting="stuck", deadline=10, labels=NEVER_READY),
                                "B: pods that never get ready")
    second = deploy.run(PUSH, apps(rollback=False))
    assert second.rc != 0 and second.row(app)["failed_step"] == "health", second.out
    assert (history(cluster, app)[0]["revision"], history(cluster, app)[0]["result"],
            history(cluster, app)[0]["health"]) == (never_healthy, "Succeeded", "Degraded")

    # C fails too. B is the newest revision that *applied*; the rollback must go to A, the last healthy one.
    files = app_files("web", greeting="bad")
    files["web/deployment.yaml"][0]["spec"]["replicas"] = "many"  # the API server rejects it
    broken = repo.commit(files, "C: rejected by the API server")
    third = deploy.run(PUSH, apps(rollback=True))
    assert third.rc != 0, third.out
    row = third.row(app)
    assert (row["outcome"], row["failed_step"]) == ("rolled back", "apply"), row
    assert row["rollback"]["revision"] == healthy and row["rollback"]["ok"], row
    assert "rolled back to %s" % healthy[:7] in third.out
    assert live(cluster, "ConfigMap", namespace, "web-config")["data"]["greeting"] == "good"
    labels = live(cluster, "Deployment", namespace, "web")["spec"]["template"]["metadata"]["labels"]
    assert "gitops.k8s.test/never-ready" not in labels

    latest = history(cluster, app)[0]
    assert (latest["revision"], latest["rollback_of"], latest["health"]) == (healthy, broken, "Healthy")
    # the report's history shows every sync with its verdict
    # (C was rejected before anything was written: apply records no sync for it)
    assert [(h["revision"], h.get("health")) for h in row["history"]] == [
        (healthy, "Healthy"), (never_healthy, "Degraded"), (healthy, "Healthy")]
    page = open(third.html_path, encoding="utf-8").read()
    assert '<td class="health"><span class="badge DEGRADED">DEGRADED</span></td>' in page


def test_no_healthy_revision_in_the_history_means_no_rollback_and_says_so(ansible, kubeconfig, cluster, namespace,
                                                                          workdir):
    repo = GitRepo(workdir)
    [app] = names(namespace, "web")
    stuck = repo.commit(app_files("web", greeting="stuck", deadline=10, labels=NEVER_READY),
                        "First revision never gets ready")
    apps = [{"name": app, "repo": repo.url, "path": "web", "namespace": namespace, "rollback": True,
             "wait": {"timeout": 90}}]
    failed = new_deployer(ansible, kubeconfig, workdir).run(PUSH, apps)
    assert failed.rc != 0, failed.out
    row = failed.row(app)
    why = "no revision of %s other than %s was recorded healthy in its history" % (app, stuck[:7])
    assert (row["outcome"], row["failed_step"], row["health"]) == ("failed", "health", "DEGRADED"), row
    assert row["rollback"] == {"revision": "", "short_revision": "", "ok": False, "message": why}, row
    assert "not rolled back: " + why in failed.out
    assert "Not rolled back: " + why in open(failed.html_path, encoding="utf-8").read()
    assert [(h["revision"], h.get("health"), h["rollback"]) for h in history(cluster, app)] == [
        (stuck, "Degraded", False)]


@pytest.fixture(scope="module")
def chart_repository(tmp_path_factory, tools):
    """A chart repository with basic auth (tests/servers) serving the library chart ``shared``."""
    root = str(tmp_path_factory.mktemp("rollback-charts"))
    helm = Helm(tools, os.path.join(root, "helm-home"))
    served = os.path.join(root, "served")
    os.makedirs(served)
    helm.package(write_chart(os.path.join(root, "src"), "shared", "0.1.0", {"shared": "yes"}), served)
    password = "repo-" + secrets.token_hex(8)
    server = servers.HttpServer(os.path.join(root, "server"), "charts", static=served, user="reader", password=password)
    helm("repo", "index", served, "--url", server.url)
    yield {"url": server.url, "username": "reader", "password": password}
    server.stop()


def test_a_git_chart_with_a_dependency_from_a_private_repository_is_rolled_back_rendered_as_it_was_synced(
        chart_repository, ansible, kubeconfig, cluster, namespace, workdir):
    """The rollback renders the healthy revision as its sync did: with the app's helm.repositories
    credentials for the chart's dependency (without them, helm dependency build gets a 401)."""
    repo = GitRepo(workdir)
    [app] = names(namespace, "front")
    dependency = [{"name": "shared", "version": "0.1.x", "repository": chart_repository["url"]}]
    write_chart(repo.work, "frontend", "1.0.0", {"tier": "web"}, dependencies=dependency)
    healthy = repo.commit({"frontend/values.yaml": "greeting: good\n"}, "A: a chart with a private dependency")
    apps = [{"name": app, "repo": repo.url, "path": "frontend", "namespace": namespace, "rollback": True,
             "prune": True, "helm": {"repositories": [chart_repository]}, "render": {"release_name": "web"},
             "wait": {"timeout": 90}}]
    deploy = new_deployer(ansible, kubeconfig, workdir)
    first = deploy.run(PUSH, apps)
    assert first.rc == 0, first.out
    assert live(cluster, "ConfigMap", namespace, "web-shared")["data"]["shared"] == "yes"

    stuck = repo.commit({"frontend/values.yaml": "greeting: bad\n", "frontend/templates/stuck.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web-stuck}\nspec:\n  replicas: 1\n"
        "  progressDeadlineSeconds: 10\n  selector: {matchLabels: {app: stuck}}\n  template:\n"
        "    metadata: {labels: {app: stuck, gitops.k8s.test/never-ready: 'true'}}\n"
        "    spec: {containers: [{name: web, image: 'nginx:1.27'}]}\n")}, "B: pods that never get ready")
    failed = deploy.run(PUSH, apps)
    assert failed.rc != 0, failed.out
    row = failed.row(app)
    assert (row["outcome"], row["failed_step"]) == ("rolled back", "health"), row["rollback"]
    assert row["rollback"]["revision"] == healthy and row["rollback"]["ok"], row["rollback"]
    assert live(cluster, "ConfigMap", namespace, "web-frontend")["data"]["greeting"] == "good"
    assert live(cluster, "ConfigMap", namespace, "web-shared")["data"]["shared"] == "yes"
    assert live(cluster, "Deployment", namespace, "web-stuck") is None
    latest = history(cluster, app)[0]
    assert (latest["revision"], latest["rollback_of"], latest["health"]) == (healthy, stuck, "Healthy")
    assert chart_repository["password"] not in failed.out
