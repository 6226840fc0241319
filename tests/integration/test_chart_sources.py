"""Charts from a real OCI registry (distribution, TLS + htpasswd) and a real HTTP chart repository
(basic auth): render, push and reconcile on the local cluster, and the failures a user meets."""

import hashlib
import json
import os
import secrets
import subprocess

import pytest
import servers
import yaml
from test_push_reconcile import PUSH, RECONCILE, GitRepo, live, names, new_deployer

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import read_record
from ansible_collections.gitops.k8s.plugins.module_utils.render import render


def write_chart(folder, name, version, data, dependencies=None):
    """A small chart: one ConfigMap named after the release, with ``data``."""
    chart = os.path.join(folder, name)
    os.makedirs(os.path.join(chart, "templates"), exist_ok=True)
    meta = {"apiVersion": "v2", "name": name, "version": version, "type": "application"}
    if dependencies:
        meta["dependencies"] = dependencies
    with open(os.path.join(chart, "Chart.yaml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(meta, handle)
    with open(os.path.join(chart, "values.yaml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump({"greeting": "hello from %s %s" % (name, version)}, handle)
    with open(os.path.join(chart, "templates", "configmap.yaml"), "w", encoding="utf-8") as handle:
        handle.write("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-%s\n"
                     "data:\n  greeting: {{ .Values.greeting | quote }}\n  version: \"%s\"\n%s"
                     % (name, version, "".join("  %s: %s\n" % (k, json.dumps(str(v))) for k, v in data.items())))
    return chart


class Helm:
    """The tests' own helm (packaging and pushing), with a private home."""

    def __init__(self, tools, home):
        self.env = dict(os.environ, PATH=tools + os.pathsep + os.environ["PATH"], HELM_CONFIG_HOME=home + "/config",
                        HELM_CACHE_HOME=home + "/cache", HELM_DATA_HOME=home + "/data",
                        HELM_REGISTRY_CONFIG=home + "/registry.json")

    def __call__(self, *args, stdin=None):
        return subprocess.run(["helm", *args], env=self.env, input=stdin, check=True, capture_output=True, text=True).stdout

    def package(self, chart, dest):
        self("package", chart, "--destination", dest)
        meta = yaml.safe_load(open(os.path.join(chart, "Chart.yaml"), encoding="utf-8"))
        return os.path.join(dest, "%s-%s.tgz" % (meta["name"], meta["version"]))


@pytest.fixture(scope="module")
def charts(tmp_path_factory, tools):
    root = str(tmp_path_factory.mktemp("chart-servers"))
    tls = servers.certificates(root)
    helm = Helm(tools, os.path.join(root, "helm-home"))
    registry = servers.OciRegistry(os.path.join(root, "registry"), tls)
    helm("registry", "login", registry.host, "--username", registry.user, "--password-stdin", "--ca-file", tls["ca"],
         stdin=registry.password)
    digests = {}
    for version in ("1.2.0", "1.3.0", "2.0.0"):
        archive = helm.package(write_chart(os.path.join(root, "src", version), "greeter", version,
                                           {"colour": "blue"}), os.path.join(root, "pkg"))
        helm("push", archive, "oci://%s/charts" % registry.host, "--ca-file", tls["ca"])
        digests[version] = hashlib.sha256(open(archive, "rb").read()).hexdigest()
    # the HTTP chart repository: a library chart that other charts depend on
    repo_dir = os.path.join(root, "repo")
    os.makedirs(repo_dir)
    helm.package(write_chart(os.path.join(root, "src-shared"), "shared", "0.1.0", {"shared": "yes"}), repo_dir)
    helm.package(write_chart(os.path.join(root, "src-shared2"), "shared", "0.1.1", {"shared": "yes"}), repo_dir)
    password = "repo-" + secrets.token_hex(8)
    repo = servers.HttpServer(os.path.join(root, "repo-server"), "charts", static=repo_dir, user="reader",
                              password=password)
    helm("repo", "index", repo_dir, "--url", repo.url)
    yield {"tls": tls, "helm": helm, "registry": registry, "digests": digests, "root": root,
           "repo": repo, "repo_password": password}
    registry.stop()
    repo.stop()


def oci_spec(charts, **extra):
    registry = charts["registry"]
    return dict({"repo": "oci://%s/charts" % registry.host, "chart": "greeter", "version": "^1.2",
                 "username": registry.user, "password": registry.password, "ca_file": charts["tls"]["ca"]}, **extra)


@pytest.fixture
def bundles(workdir, monkeypatch, tools):
    """This test's own cache (charts and bundles) and the project's helm first on PATH."""
    monkeypatch.setenv("XDG_CACHE_HOME", os.path.join(workdir, "cache"))
    monkeypatch.setenv("PATH", tools + os.pathsep + os.environ["PATH"])
    return os.path.join(workdir, "cache", "gitops-k8s")


def test_oci_chart_at_a_semver_range_is_resolved_recorded_and_cached_by_digest(charts, bundles):
    result = render(helm=oci_spec(charts), namespace="demo")
    digest = charts["digests"]["1.3.0"]
    assert result["chart"] == {"chart": "greeter", "version": "1.3.0", "digest": digest,
                               "revision": "greeter@1.3.0+%s" % digest[:12]}
    assert result["revision"] == "greeter@1.3.0+%s" % digest[:12]
    assert [(o["kind"], o["name"], o["source"]) for o in result["objects"]] == [
        ("ConfigMap", "greeter-greeter", "greeter@1.3.0/templates/configmap.yaml")]
    assert os.path.isfile(os.path.join(bundles, "charts", digest, "greeter", "Chart.yaml"))
    again = render(helm=oci_spec(charts, version="2.x"), namespace="demo")
    assert again["chart"]["version"] == "2.0.0"
    unpacked = [d for d in os.listdir(os.path.join(bundles, "charts")) if not d.startswith(".")]  # (.last-eviction)
    assert sorted(unpacked) == sorted([digest, charts["digests"]["2.0.0"]])


def test_bad_registry_password_and_unreachable_registry_are_clear_errors(charts, bundles):
    wrong = "wrong-" + secrets.token_hex(8)
    with pytest.raises(GitOpsError) as err:
        render(helm=oci_spec(charts, password=wrong))
    message = str(err.value) + repr(err.value.details)
    assert "oci://%s/charts/greeter" % charts["registry"].host in message
    assert "401" in message or "unauthorized" in message.lower()
    assert wrong not in message
    closed = servers.free_port()
    with pytest.raises(GitOpsError) as err:
        render(helm=oci_spec(charts, repo="oci://127.0.0.1:%d/charts" % closed))
    assert "127.0.0.1:%d" % closed in str(err.value) and "connection refused" in str(err.value).lower()
    assert charts["registry"].password not in str(err.value) + repr(err.value.details)
    assert not os.path.isdir(os.path.join(bundles, "bundles")) or not [
        d for d in os.listdir(os.path.join(bundles, "bundles")) if not d.startswith(".")]


def test_chart_with_a_dependency_from_the_http_repository_with_basic_auth(charts, bundles, workdir):
    checkout = os.path.join(workdir, "checkout")
    write_chart(checkout, "frontend", "1.0.0", {"tier": "web"},
                dependencies=[{"name": "shared", "version": "0.1.x", "repository": charts["repo"].url}])
    credentials = {"url": charts["repo"].url, "username": "reader", "password": charts["repo_password"]}
    result = render(source=checkout, path="frontend", helm={"repositories": [credentials]}, namespace="demo")
    assert sorted(o["name"] for o in result["objects"]) == ["frontend-frontend", "frontend-shared"]
    shared = [o for o in result["objects"] if o["name"] == "frontend-shared"][0]
    assert shared["source"] == "frontend/charts/shared/templates/configmap.yaml"
    assert not os.path.exists(os.path.join(checkout, "frontend", "charts")), "the checkout was written to"
    assert any(r["authorized"] for r in charts["repo"].requests())

    with pytest.raises(GitOpsError) as err:
        render(source=checkout, path="frontend", helm={"repositories": [dict(credentials, password="nope-x1")]})
    assert charts["repo"].url in str(err.value) and "401" in str(err.value)
    assert "nope-x1" not in str(err.value) + repr(err.value.details)


def test_chart_from_the_http_repository_at_a_range(charts, bundles):
    result = render(helm={"repo": charts["repo"].url, "chart": "shared", "version": "~0.1.0", "username": "reader",
                          "password": charts["repo_password"]})
    assert result["chart"]["version"] == "0.1.1"


def test_oci_chart_app_pushed_then_reconciled_to_a_new_version_values_from_git(
        charts, ansible, kubeconfig, cluster, namespace, workdir):
    values = GitRepo(workdir)
    sha = values.commit({"values/greeter/production.yaml": "greeting: from git\n"}, "values")
    [app] = names(namespace, "greeter")
    apps = [{"name": app, "namespace": namespace, "repo": values.url, "path": "values/greeter",
             "helm": oci_spec(charts, version="~1.3.0"),
             "render": {"release_name": "web", "values_files": ["production.yaml"]}, "wait": {"timeout": 60}}]
    deploy = new_deployer(ansible, kubeconfig, workdir)
    pushed = deploy.run(PUSH, apps)
    assert pushed.rc == 0, pushed.out
    config = live(cluster, "ConfigMap", namespace, "web-greeter")["data"]
    assert config == {"greeting": "from git", "version": "1.3.0", "colour": "blue"}
    revision = "greeter@1.3.0+%s %s" % (charts["digests"]["1.3.0"][:12], sha)
    assert read_record(cluster, app)["revision"] == revision
    assert pushed.row(app)["revision"] == revision
    assert "synced at greeter@1.3.0+%s" % charts["digests"]["1.3.0"][:12] in pushed.out
    assert charts["registry"].password not in pushed.out + open(pushed.html_path, encoding="utf-8").read()

    quiet = deploy.run(RECONCILE, apps)
    assert quiet.rc == 0 and quiet.row(app)["outcome"] == "unchanged", quiet.out

    archive = charts["helm"].package(write_chart(os.path.join(charts["root"], "src", "1.3.7"), "greeter", "1.3.7",
                                                 {"colour": "green"}), os.path.join(workdir, "pkg"))
    charts["helm"]("push", archive, "oci://%s/charts" % charts["registry"].host, "--ca-file", charts["tls"]["ca"])
    picked = deploy.run(RECONCILE, apps)
    assert picked.rc == 0, picked.out
    assert live(cluster, "ConfigMap", namespace, "web-greeter")["data"]["colour"] == "green"
    assert read_record(cluster, app)["revision"].startswith("greeter@1.3.7+")


def test_bad_registry_password_and_unreachable_registry_fail_the_push_and_leave_the_cluster_untouched(
        charts, ansible, kubeconfig, cluster, namespace, workdir):
    locked, away = names(namespace, "locked", "away")
    wrong = "wrong-" + secrets.token_hex(8)
    closed = servers.free_port()
    apps = [{"name": locked, "namespace": namespace, "helm": oci_spec(charts, password=wrong)},
            {"name": away, "namespace": namespace, "helm": oci_spec(charts, repo="oci://127.0.0.1:%d/charts" % closed)}]
    failed = new_deployer(ansible, kubeconfig, workdir).run(PUSH, apps)
    assert failed.rc != 0
    assert "%s@localhost: " % locked in failed.out and "%s@localhost: " % away in failed.out
    assert failed.row(locked)["failed_step"] == "fetch" and failed.row(away)["failed_step"] == "fetch"
    assert failed.row(locked)["message"].startswith(
        "pulling the chart oci://%s/charts/greeter: login to %s failed" % (charts["registry"].host, charts["registry"].host))
    assert "401" in failed.row(locked)["message"]
    assert "127.0.0.1:%d" % closed in failed.row(away)["message"]
    assert "connection refused" in failed.row(away)["message"].lower()
    assert wrong not in failed.out and charts["registry"].password not in failed.out
    configmaps = cluster.request("GET", "/api/v1/namespaces/%s/configmaps" % namespace)["items"]
    assert {c["metadata"]["name"] for c in configmaps} <= {"kube-root-ca.crt"}
    assert read_record(cluster, locked) is None and read_record(cluster, away) is None
