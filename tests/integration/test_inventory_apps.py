"""The gitops.k8s.apps inventory plugin on a folder holding one definition of each kind (Argo CD
Application single and multi-source, ApplicationSet list / git-directory / git-file, Harness
application.yml, Flux Kustomization and HelmRelease), pushed and reconciled on the local cluster
with charts from the real OCI registry and HTTP chart repository (tests/servers)."""

import json
import os
import secrets
import subprocess

import pytest
import servers
import test_chart_sources
import yaml
from test_git_remote import bare_repo
from test_push_reconcile import PUSH, RECONCILE, GitRepo, Run, live

from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import read_record


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
            ignoreDifferences=[{"kind": "ConfigMap", "jsonPointers": ["/data/ignored"]},
                               {"kind": "ConfigMap", "name": "guestbook", "jqPathExpressions": [".data.tuned"]},
                               {"kind": "ConfigMap", "name": "guestbook", "managedFieldsManagers": ["tuner"]}])],
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
        # a chart in a Git folder, as Harness's helm-guestbook example: its objects are named after the release
        "harnessed/Chart.yaml": "apiVersion: v2\nname: harnessed\nversion: 0.1.0\n",
        "harnessed/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\n"
                                       "metadata: {name: '{{ .Release.Name }}-{{ .Chart.Name }}'}\n",
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
    # every ignoreDifferences rule is mapped, and RespectIgnoreDifferences=true is what gitops.k8s always does
    assert "ignoreDifferences" not in graph.stderr and "RespectIgnoreDifferences" not in graph.stderr, graph.stderr

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
    for name in ("list-blue", "team-alpha", "billing"):
        assert live(cluster, "ConfigMap", namespace, name) is not None, name
    # Harness (Argo CD) names the release after the application, not after the chart's folder
    assert live(cluster, "ConfigMap", namespace, "harnessed-%s-harnessed" % tag) is not None
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
                                    "render": {"release_name": "shop"}, "namespace": "shop", "create_namespace": True}]
    assert prod["gitops_apps_notes"] == [{"file": "shop.yaml", "definition": "Application shop",
                                          "message": "spec.syncPolicy.retry is not supported; ignored"}]

    app["spec"]["sources"] = [app["spec"].pop("source"), {"repoURL": "https://git.example.com/other.git", "path": "x"}]
    fleet.commit({"clusters/prod/shop.yaml": [app]}, "two sources")
    # the host is still there, carrying the error the playbooks fail on
    listed, hostvars = inventory_list(ansible, config, workdir, env=env)
    assert hostvars["prod"]["gitops_apps"] == [] and hostvars["prod"]["gitops_definitions"]["repo"] == fleet.url
    [error] = hostvars["prod"]["gitops_apps_errors"]
    assert error["file"] == "shop.yaml" and error["definition"] == "Application shop"
    assert "shop.yaml: Application shop has 2 sources of manifests" in " ".join(listed.stderr.split())

    doc = subprocess.run(["ansible-doc", "-t", "inventory", "gitops.k8s.apps"], env=ansible.env, capture_output=True,
                         text=True, check=False)
    assert doc.returncode == 0 and "ApplicationSet" in doc.stdout and "default_cluster" in doc.stdout, doc.stderr


@pytest.fixture(scope="module")
def git_server(tmp_path_factory):
    """git http-backend over TLS behind basic auth (user ci, a token), serving the folder ``repos``."""
    root = str(tmp_path_factory.mktemp("git-server"))
    tls = servers.certificates(root)
    repos = os.path.join(root, "repos")
    os.makedirs(repos)
    token = "tok-" + secrets.token_hex(12)
    server = servers.HttpServer(os.path.join(root, "server"), "git", git=repos, tls=tls, user="ci", password=token)
    yield {"server": server, "url": server.url, "token": token, "ca": tls["ca"], "repos": repos}
    server.stop()


def teams_set(repo_url, namespace, tag=""):
    """An ApplicationSet with a git-directory generator: one app per folder teams/* of repo_url."""
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "metadata": {"name": "teams"}, "spec": {
        "generators": [{"git": {"repoURL": repo_url, "revision": "main", "directories": [{"path": "teams/*"}]}}],
        "template": {"metadata": {"name": "team-{{path.basename}}" + tag},
                     "spec": {"project": "default", "source": {"repoURL": repo_url, "path": "{{path}}"},
                              "destination": {"name": "in-cluster", "namespace": namespace}}}}}


def inventory_list(ansible, config, workdir, *args, env=None):
    proc = subprocess.run(["ansible-inventory", "-i", config, "--list", *args], env=env or ansible.env,
                          capture_output=True, text=True, cwd=workdir, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc, plain(json.loads(proc.stdout)["_meta"]["hostvars"])


def test_templated_credentials_fetch_the_definitions_and_generator_repositories_and_stay_templates(
        git_server, ansible, workdir):  # pylint: disable=redefined-outer-name
    url, token = git_server["url"], git_server["token"]
    bare_repo(git_server["repos"], "deploy-1.git", {"teams/alpha/cm.yaml": yaml.safe_dump(configmap("alpha")[0])})
    bare_repo(git_server["repos"], "fleet-1.git",
              {"clusters/prod/teams.yaml": yaml.safe_dump(teams_set(url + "/deploy-1.git", "teams"))})
    template = "{{ lookup('env', 'GIT_TOKEN') }}"
    config = os.path.join(workdir, "fleet.gitops.yml")
    with open(config, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"plugin": "gitops.k8s.apps", "repo": url + "/fleet-1.git", "path": "clusters/prod",
                        "default_cluster": "prod", "credentials": [
                            {"url": url + "/", "username": "ci", "password": template, "ca_file": git_server["ca"]}]},
                       handle)
    listed, hostvars = inventory_list(ansible, config, workdir, env=dict(ansible.env, GIT_TOKEN=token))
    assert [app["name"] for app in hostvars.get("prod", {}).get("gitops_apps", [])] == ["team-alpha"], listed.stderr
    # the tasks get the template, resolved when they use it; the inventory never holds the token
    assert hostvars["prod"]["gitops_credentials"][0]["password"] == template
    assert token not in listed.stdout + listed.stderr

    # a vaulted password works the same way
    vault_password = os.path.join(workdir, "vault-password")
    with open(vault_password, "w", encoding="utf-8") as handle:
        handle.write("vault-" + secrets.token_hex(8))
    vaulted = subprocess.run(["ansible-vault", "encrypt_string", "--vault-password-file", vault_password, token,
                              "--name", "password"], env=ansible.env, capture_output=True, text=True, check=True).stdout
    with open(config, "w", encoding="utf-8") as handle:
        handle.write("plugin: gitops.k8s.apps\nrepo: %s/fleet-1.git\npath: clusters/prod\ndefault_cluster: prod\n"
                     "credentials:\n  - url: %s/\n    username: ci\n    ca_file: %s\n%s"
                     % (url, url, git_server["ca"], "".join("    " + line for line in vaulted.splitlines(True))))
    listed, hostvars = inventory_list(ansible, config, workdir, "--vault-password-file", vault_password)
    assert [app["name"] for app in hostvars.get("prod", {}).get("gitops_apps", [])] == ["team-alpha"], listed.stderr
    assert token not in listed.stdout + listed.stderr


def test_reconcile_fails_when_a_definition_cannot_be_mapped_and_names_it(ansible, workdir):
    source = {"repoURL": "https://git.example.com/shop.git", "path": "shop"}
    write(os.path.join(workdir, "defs"), {
        "apps/good.yaml": [argo_app("good", source, "good")],
        "apps/two.yaml": [argo_app("two", None, "two", sources=[source, dict(source, path="other")])]})
    config = os.path.join(workdir, "fleet.gitops.yml")
    with open(config, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"plugin": "gitops.k8s.apps", "source": "defs", "clusters": {"prod": {
            "destinations": ["https://kubernetes.default.svc"],
            "vars": {"gitops_cluster": {"kubeconfig": os.path.join(workdir, "no-such-kubeconfig")}}}}}, handle)
    reconciled = ansible.playbook(RECONCILE, inventory=config, extra_vars={"gitops_report_dir": workdir + "/report"})
    out = " ".join((reconciled.stdout + reconciled.stderr).split())
    assert reconciled.returncode != 0, out
    assert "apps/two.yaml: Application two has 2 sources of manifests" in out
    assert "no-such-kubeconfig" not in out, "nothing ran against the cluster"

    listed, hostvars = inventory_list(ansible, config, workdir)
    assert [app["name"] for app in hostvars["prod"]["gitops_apps"]] == ["good"]
    assert [(e["file"], e["definition"]) for e in hostvars["prod"]["gitops_apps_errors"]] == [
        ("apps/two.yaml", "Application two")]
    assert "apps/two.yaml: Application two has 2 sources" in " ".join(listed.stderr.split())


def test_mirrors_serve_the_definitions_and_every_application_with_the_mirror_s_credentials(
        git_server, ansible, kubeconfig, cluster, namespace, workdir):  # pylint: disable=redefined-outer-name
    tag = namespace[-5:]
    url, token = git_server["url"], git_server["token"]
    upstream = "https://git.upstream.invalid/"  # never resolved: everything comes from the mirror
    bare_repo(git_server["repos"], "deploy-%s.git" % tag,
              {"teams/mirrored/cm.yaml": yaml.safe_dump(configmap("mirrored")[0])})
    bare_repo(git_server["repos"], "fleet-%s.git" % tag, {"clusters/prod/teams.yaml": yaml.safe_dump(
        teams_set(upstream + "platform/deploy-%s.git" % tag, namespace, "-" + tag))})
    config = os.path.join(workdir, "fleet.gitops.yml")
    with open(config, "w", encoding="utf-8") as handle:
        yaml.safe_dump({
            "plugin": "gitops.k8s.apps", "repo": upstream + "platform/fleet-%s.git" % tag, "path": "clusters/prod",
            "mirrors": [{"prefix": upstream + "platform/", "replace": url + "/"}],
            "default_cluster": "local",
            "clusters": {"local": {"destinations": ["in-cluster"], "vars": {
                "gitops_cluster": {"kubeconfig": kubeconfig},
                # the longest prefix wins: the shorter one leads nowhere
                "gitops_mirrors": [{"prefix": upstream, "replace": "https://127.0.0.1:9/nowhere/"},
                                   {"prefix": upstream + "platform/", "replace": url + "/"}]}}},
            # credentials match the URL used: the upstream's would be refused by the mirror
            "credentials": [{"url": upstream, "username": "ci", "password": "upstream-token"},
                            {"url": url + "/", "username": "ci", "password": token, "ca_file": git_server["ca"]}],
        }, handle)
    listed, hostvars = inventory_list(ansible, config, workdir)
    assert [app["name"] for app in hostvars["local"]["gitops_apps"]] == ["team-mirrored-" + tag], listed.stderr
    assert hostvars["local"]["gitops_apps"][0]["repo"] == upstream + "platform/deploy-%s.git" % tag
    assert hostvars["local"]["gitops_definitions"]["repo"] == "%s/fleet-%s.git" % (url, tag)

    report = os.path.join(workdir, "report")
    pushed = Run(ansible.playbook(PUSH, inventory=config, args=("-v",), extra_vars={
        "gitops_report_dir": report, "gitops_remove_departed": False}), report)
    assert pushed.rc == 0, pushed.out
    assert live(cluster, "ConfigMap", namespace, "mirrored") is not None
    assert pushed.row("team-mirrored-" + tag)["outcome"] == "synced"
    # the result says which server was used
    assert '"to": "%s/deploy-%s.git"' % (url, tag) in pushed.out
    assert token not in pushed.out
