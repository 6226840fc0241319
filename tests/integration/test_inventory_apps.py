"""The gitops.k8s.apps inventory plugin on a folder holding one definition of each kind (Argo CD
Application single and multi-source, ApplicationSet list / git-directory / git-file, Harness
application.yml, Flux Kustomization and HelmRelease), pushed and reconciled on the local cluster
with charts from the real OCI registry and HTTP chart repository (tests/servers)."""

import json
import os
import subprocess

import test_chart_sources
import yaml
from test_push_reconcile import PUSH, RECONCILE, GitRepo, Run, live

from ansible_collections.gitops.k8s.plugins.module_utils.inventory import read_record


# the chart servers (OCI registry, HTTP chart repository) of test_chart_sources, for this module too
charts = test_chart_sources.charts


def configmap(name, **data):
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}]


def argo_app(name, source, namespace, sources=None, **spec):
    body = {"destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "project": "default", **spec}
    if sources:
        body["sources"] = sources
    else:
        body["source"] = source
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"}, "spec": body}


def plain(value):
    """ansible-inventory --list output without its marks of untrusted (never templated) strings."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def write(folder, files):
    for rel, docs in files.items():
        path = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump_all(docs, handle)


def definitions(tag, ns, deploy_url, chart_servers):
    registry = chart_servers["registry"]
    appset = {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet"}
    source = {"repoURL": deploy_url, "targetRevision": "main", "path": "{{path}}"}
    template = {"spec": {"project": "default", "source": source, "destination": {"name": "in-cluster", "namespace": ns}}}
    return {
        "argo/guestbook.yaml": [argo_app(
            "guestbook-" + tag, {"repoURL": deploy_url, "targetRevision": "main", "path": "guestbook"}, ns,
            syncPolicy={"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["RespectIgnoreDifferences=true"]},
            ignoreDifferences=[{"kind": "ConfigMap", "jsonPointers": ["/data/ignored"]}])],
        "argo/greeter.yaml": [argo_app("greeter-" + tag, None, ns, sources=[
            {"repoURL": "%s/charts" % registry.host, "chart": "greeter", "targetRevision": "^1.2",
             "helm": {"releaseName": "greeter-" + tag, "valueFiles": ["$values/values/greeter.yaml"]}},
            {"repoURL": deploy_url, "targetRevision": "main", "ref": "values"}])],
        "argo/lists.yaml": [dict(appset, metadata={"name": "lists"}, spec={
            "generators": [{"list": {"elements": [{"shard": "blue"}]}}],
            "template": {"metadata": {"name": "list-{{shard}}-" + tag},
                         "spec": {"project": "default", "source": {"repoURL": deploy_url, "path": "lists/{{shard}}"},
                                  "destination": {"name": "in-cluster", "namespace": ns}}}})],
        "argo/teams.yaml": [dict(appset, metadata={"name": "teams"}, spec={
            "generators": [{"git": {"repoURL": deploy_url, "revision": "main",
                                    "directories": [{"path": "teams/*"}]}}],
            "template": dict(template, metadata={"name": "team-{{path.basename}}-" + tag})})],
        "argo/configs.yaml": [dict(appset, metadata={"name": "configs"}, spec={
            "goTemplate": True,
            "generators": [{"git": {"repoURL": deploy_url, "revision": "main", "files": [{"path": "config/*.json"}]}}],
            "template": {"metadata": {"name": "cfg-{{.app.name}}-" + tag},
                         "spec": {"project": "default", "source": {"repoURL": deploy_url, "path": "{{.app.path}}"},
                                  "destination": {"name": "in-cluster", "namespace": ns}}}})],
        "harness/application.yml": [{"gitops": {
            "name": "harnessed-" + tag, "type": "application", "projectIdentifier": "p", "orgIdentifier": "o",
            "agentIdentifier": "agent", "clusterIdentifier": "localcluster", "repoIdentifier": "deploy",
            "application": {"metadata": {"namespace": "default", "clusterName": "local"},
                            "spec": {"source": {"repoURL": deploy_url, "path": "harnessed", "targetRevision": "main"},
                                     "destination": {"server": "https://kubernetes.default.svc", "namespace": ns}}}}}],
        "flux/kustomization.yaml": [
            {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
             "metadata": {"name": "deploy", "namespace": "flux-system"},
             "spec": {"interval": "1m", "url": deploy_url, "ref": {"branch": "main"}}},
            {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
             "metadata": {"name": "fluxed-" + tag, "namespace": "flux-system"},
             "spec": {"interval": "5m", "path": "./fluxed", "prune": True, "targetNamespace": ns,
                      "sourceRef": {"kind": "GitRepository", "name": "deploy"},
                      "postBuild": {"substitute": {"colour": "teal"}}}}],
        "flux/helmrelease.yaml": [
            {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
             "metadata": {"name": "shared-charts", "namespace": "flux-system"},
             "spec": {"interval": "10m", "url": chart_servers["repo"].url}},
            {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
             "metadata": {"name": "released-" + tag, "namespace": "flux-system"},
             "spec": {"interval": "5m", "targetNamespace": ns,
                      "chart": {"spec": {"chart": "shared", "version": "0.1.x",
                                         "sourceRef": {"kind": "HelmRepository", "name": "shared-charts"}}},
                      "values": {"greeting": "from flux"}}}],
        "README.yaml": [{"not": "a definition"}],
    }


def test_inventory_plugin_pushes_and_reconciles_every_definition_kind_and_picks_up_new_folders(
        charts, ansible, kubeconfig, cluster, namespace, workdir):  # pylint: disable=redefined-outer-name
    tag = namespace[-5:]
    os.makedirs(os.path.join(workdir, "git"))
    deploy = GitRepo(os.path.join(workdir, "git"))
    deploy.commit({
        "guestbook/cm.yaml": configmap("guestbook", ignored="from git"),
        "values/greeter.yaml": "greeting: values from git\n",
        "lists/blue/cm.yaml": configmap("list-blue"),
        "teams/alpha/cm.yaml": configmap("team-alpha"),
        "harnessed/cm.yaml": configmap("harnessed"),
        "fluxed/cm.yaml": configmap("fluxed", colour="${colour}"),
    }, "deploy")
    # the git-file generator's parameters: {"app": {"name": ..., "path": ...}} gives {{.app.name}}, {{.app.path}}
    deploy.commit({"config/billing.json": json.dumps({"app": {"name": "billing", "path": "services/billing"}}),
                   "services/billing/cm.yaml": configmap("billing")}, "config")
    defs = os.path.join(workdir, "defs")
    write(defs, definitions(tag, namespace, deploy.url, charts))
    registry = charts["registry"]
    config = os.path.join(workdir, "fleet.gitops.yml")
    with open(config, "w", encoding="utf-8") as handle:
        yaml.safe_dump({
            "plugin": "gitops.k8s.apps", "source": "defs", "default_cluster": "local",
            "clusters": {"local": {"destinations": ["in-cluster", "https://kubernetes.default.svc", "localcluster"],
                                   "vars": {"gitops_cluster": {"kubeconfig": kubeconfig}}}},
            "credentials": [
                {"url": "oci://" + registry.host, "username": registry.user, "password": registry.password,
                 "ca_file": charts["tls"]["ca"]},
                {"url": charts["repo"].url, "username": "reader", "password": charts["repo_password"]}],
        }, handle)

    graph = subprocess.run(["ansible-inventory", "-i", config, "--graph"], env=ansible.env, capture_output=True,
                           text=True, cwd=workdir, check=False)
    assert graph.returncode == 0, graph.stderr
    apps = ["guestbook", "greeter", "list-blue", "team-alpha", "cfg-billing", "harnessed", "fluxed", "released"]
    for app in apps:
        assert "@gitops_app_%s_%s:" % (app.replace("-", "_"), tag) in graph.stdout, graph.stdout
    assert "|--local" in graph.stdout and "@gitops_clusters:" in graph.stdout
    assert "syncOptions RespectIgnoreDifferences=true is not supported" in " ".join(graph.stderr.split())

    def run(playbook, number):
        report = os.path.join(workdir, "report-%d" % number)
        # host names other tests use too: their apps are not this run's departed ones
        return Run(ansible.playbook(playbook, inventory=config, extra_vars={
            "gitops_report_dir": report, "gitops_remove_departed": False}), report)

    pushed = run(PUSH, 1)
    assert pushed.rc == 0, pushed.out
    names = {app: "%s-%s" % (app, tag) for app in apps}
    assert live(cluster, "ConfigMap", namespace, "guestbook")["data"] == {"ignored": "from git"}
    assert live(cluster, "ConfigMap", namespace, "greeter-%s-greeter" % tag)["data"]["greeting"] == "values from git"
    assert live(cluster, "ConfigMap", namespace, "fluxed")["data"] == {"colour": "teal"}
    assert live(cluster, "ConfigMap", namespace, "released-%s-shared" % tag)["data"]["greeting"] == "from flux"
    for name in ("list-blue", "team-alpha", "billing", "harnessed"):
        assert live(cluster, "ConfigMap", namespace, name) is not None, name
    assert read_record(cluster, names["greeter"])["revision"].startswith("greeter@1.3.0+")
    assert registry.password not in pushed.out and charts["repo_password"] not in pushed.out

    deploy.commit({"teams/beta/cm.yaml": configmap("team-beta")}, "a new team")
    reconciled = run(RECONCILE, 2)
    assert reconciled.rc == 0, reconciled.out
    assert live(cluster, "ConfigMap", namespace, "team-beta") is not None
    assert reconciled.row("team-beta-" + tag)["outcome"] == "synced"
    assert reconciled.row(names["greeter"])["outcome"] in ("synced", "unchanged")


def test_definitions_from_a_git_repository_and_an_unmappable_one_names_its_file(ansible, workdir):
    os.makedirs(os.path.join(workdir, "git"))
    fleet = GitRepo(os.path.join(workdir, "git"))
    app = argo_app("shop", {"repoURL": "https://git.example.com/shop.git", "path": "deploy"}, "shop",
                   syncPolicy={"retry": {"limit": 3}, "syncOptions": ["CreateNamespace=true"]})
    fleet.commit({"clusters/prod/shop.yaml": [app]}, "shop")
    config = os.path.join(workdir, "fleet.gitops.yml")
    with open(config, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"plugin": "gitops.k8s.apps", "repo": fleet.url, "version": "main", "path": "clusters/prod",
                        "default_cluster": "prod"}, handle)
    env = dict(ansible.env, ANSIBLE_INVENTORY_UNPARSED_FAILED="true")
    listed = subprocess.run(["ansible-inventory", "-i", config, "--list"], env=env, capture_output=True, text=True,
                            cwd=workdir, check=False)
    assert listed.returncode == 0, listed.stderr
    prod = plain(json.loads(listed.stdout)["_meta"]["hostvars"]["prod"])
    assert prod["gitops_apps"] == [{"name": "shop", "repo": "https://git.example.com/shop.git", "path": "deploy",
                                    "namespace": "shop", "create_namespace": True}]
    assert prod["gitops_apps_notes"] == [{"file": "shop.yaml", "definition": "Application shop",
                                          "message": "spec.syncPolicy.retry is not supported; ignored"}]

    app["spec"]["sources"] = [app["spec"].pop("source"), {"repoURL": "https://git.example.com/other.git", "path": "x"}]
    fleet.commit({"clusters/prod/shop.yaml": [app]}, "two sources")
    failed = subprocess.run(["ansible-inventory", "-i", config, "--list"], env=env, capture_output=True, text=True,
                            cwd=workdir, check=False)
    assert failed.returncode != 0
    assert "shop.yaml: Application shop has 2 sources of manifests" in " ".join(failed.stderr.split())

    doc = subprocess.run(["ansible-doc", "-t", "inventory", "gitops.k8s.apps"], env=ansible.env, capture_output=True,
                         text=True, check=False)
    assert doc.returncode == 0 and "ApplicationSet" in doc.stdout and "default_cluster" in doc.stdout, doc.stderr
