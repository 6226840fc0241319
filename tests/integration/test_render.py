"""render with the real helm and kustomize binaries, real git checkouts, and through Ansible."""

import json
import os
import subprocess

import pytest
import yaml

from ansible_collections.gitops.k8s.plugins.module_utils.bundle import Bundle
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.render import render


def write_tree(root, files):
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)


@pytest.fixture
def on_path(tools, monkeypatch, workdir):
    """The project's helm and kubectl first on PATH; bundles in this test's cache."""
    monkeypatch.setenv("PATH", tools + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("XDG_CACHE_HOME", os.path.join(workdir, "cache"))
    return tools


CHART = {
    "chart/Chart.yaml": "apiVersion: v2\nname: guestbook\nversion: 0.1.0\n"
                        "dependencies:\n- name: redis\n  version: 0.2.0\n",
    "chart/values.yaml": "replicas: 1\nimage: nginx:1.27\nenv: dev\n",
    "chart/values-production.yaml": "replicas: 3\nenv: production\n",
    "chart/crds/widget.yaml": "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n"
                              "  name: widgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n"
                              "  names: {kind: Widget, plural: widgets}\n  versions: []\n",
    "chart/templates/deployment.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\n"
        "  labels: {env: {{ .Values.env }}}\nspec:\n  replicas: {{ .Values.replicas }}\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: web, image: {{ .Values.image | quote }}}]}\n"),
    "chart/templates/service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-web\n"
                                    "spec: {ports: [{port: 80}], selector: {app: web}}\n",
    "chart/templates/migrate.yaml": (
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}-migrate\n  annotations:\n"
        "    helm.sh/hook: pre-install,pre-upgrade\n    helm.sh/hook-weight: \"-1\"\n"
        "    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded\n"
        "spec: {template: {spec: {restartPolicy: Never, containers: [{name: m, image: busybox}]}}}\n"),
    "chart/templates/tests/test-connection.yaml": (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations: {helm.sh/hook: test}\n"
        "spec: {containers: [{name: t, image: busybox}]}\n"),
    # a vendored dependency: works without any network
    "chart/charts/redis/Chart.yaml": "apiVersion: v2\nname: redis\nversion: 0.2.0\n",
    "chart/charts/redis/templates/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: redis\n"
                                             "spec: {ports: [{port: 6379}]}\n",
}


def test_helm_chart_with_production_values(on_path, workdir):
    write_tree(workdir, CHART)
    result = render(workdir, "chart", release_name="guestbook", namespace="shop",
                    values_files=["values-production.yaml"], values={"image": "nginx:1.28"})
    assert result["renderer"]["type"] == "helm" and result["renderer"]["version"].startswith("helm v3")
    entries = {(e["kind"], e["name"]): e for e in result["objects"]}
    assert set(entries) == {("CustomResourceDefinition", "widgets.example.com"), ("Deployment", "guestbook-web"),
                            ("Service", "guestbook-web"), ("Service", "redis"), ("Job", "guestbook-migrate")}
    assert result["objects"][0]["kind"] == "CustomResourceDefinition" or result["objects"][0]["hook"]
    job = entries[("Job", "guestbook-migrate")]
    assert (job["hook"], job["wave"], job["hook_delete_policy"]) == (["PreSync"], -1, ["BeforeHookCreation", "HookSucceeded"])
    assert entries[("Deployment", "guestbook-web")]["source"] == "chart/templates/deployment.yaml"
    assert entries[("Service", "redis")]["source"] == "chart/charts/redis/templates/svc.yaml"
    assert [s["name"] for s in result["skipped"]] == ["guestbook-test"]
    bundle = Bundle.load(result["bundle"])
    deploy = next(o for o in bundle.objects if o["kind"] == "Deployment")
    assert deploy["spec"]["replicas"] == 3 and deploy["metadata"]["labels"]["env"] == "production"
    assert deploy["metadata"]["namespace"] == "shop"
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert "namespace" not in next(o for o in bundle.objects if o["kind"] == "CustomResourceDefinition")["metadata"]
    without_crds = render(workdir, "chart", include_crds=False)
    assert "CustomResourceDefinition" not in without_crds["kinds"]


def test_helm_values_file_and_chart_outside_checkout_are_refused(on_path, workdir):
    checkout = os.path.join(workdir, "checkout")
    write_tree(workdir, {"elsewhere/" + k: v for k, v in CHART.items()})
    write_tree(checkout, {"README.md": "hi\n"})
    os.symlink(os.path.join(workdir, "elsewhere", "chart"), os.path.join(checkout, "chart"))
    with pytest.raises(GitOpsError, match="'chart' resolves outside the checkout"):
        render(checkout, "chart")
    write_tree(checkout, {"own/" + k: v for k, v in CHART.items()})
    with pytest.raises(GitOpsError, match="values file '../../../elsewhere/chart/values.yaml' resolves outside"):
        render(checkout, "own/chart", values_files=["../../../elsewhere/chart/values.yaml"])
    with pytest.raises(GitOpsError, match="values file '/etc/hostname' is absolute; it must be relative to own/chart"):
        render(checkout, "own/chart", values_files=["/etc/hostname"])
    # a values file inside the checkout that is a symlink to one outside it
    os.symlink(os.path.join(workdir, "elsewhere", "chart", "values.yaml"), os.path.join(checkout, "own", "linked.yaml"))
    with pytest.raises(GitOpsError, match="values file '../linked.yaml' resolves outside the checkout"):
        render(checkout, "own/chart", values_files=["../linked.yaml"])
    os.symlink("/etc/passwd", os.path.join(checkout, "own", "chart", "templates", "passwd.yaml"))
    with pytest.raises(GitOpsError, match="passwd.yaml is a symlink to /etc/passwd, outside the checkout"):
        render(checkout, "own/chart")


def test_helm_values_files_are_relative_to_the_chart_like_argo_cd(on_path, workdir):
    """A repo written for Argo CD: values beside Chart.yaml, shared values in a sibling folder, applied in order."""
    write_tree(workdir, {"charts/" + k: v for k, v in CHART.items()})
    write_tree(workdir, {"charts/shared/values.yaml": "env: shared\nimage: nginx:1.29\n"})
    result = render(workdir, "charts/chart", release_name="guestbook",
                    values_files=["../shared/values.yaml", "values-production.yaml"])
    deploy = next(o for o in Bundle.load(result["bundle"]).objects if o["kind"] == "Deployment")
    assert deploy["metadata"]["labels"]["env"] == "production" and deploy["spec"]["replicas"] == 3
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.29"
    # a path from the repository root (the old reading) names the file and where it was looked for
    with pytest.raises(GitOpsError, match="values file 'charts/chart/values-production.yaml' does not exist "
                                          "\\(relative to charts/chart in the checkout"):
        render(workdir, "charts/chart", values_files=["charts/chart/values-production.yaml"])


KUSTOMIZE = {
    "base/kustomization.yaml": "resources: [deployment.yaml, service.yaml]\n",
    "base/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 1\n"
                            "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
                            "    spec: {containers: [{name: web, image: nginx}]}\n",
    "base/service.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n",
    "overlays/prod/kustomization.yaml": "namespace: prod\nnamePrefix: prod-\nresources: [../../base, namespace.yaml]\n"
                                        "patches:\n- path: replicas.yaml\n",
    "overlays/prod/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n",
    "overlays/prod/replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 5}\n",
}


def test_kustomize_overlay_over_a_base(on_path, workdir):
    write_tree(workdir, KUSTOMIZE)
    result = render(workdir, "overlays/prod")
    assert result["renderer"]["type"] == "kustomize" and result["renderer"]["version"].startswith("kustomize v5")
    assert [(e["kind"], e["namespace"], e["name"]) for e in result["objects"]] == [
        ("Namespace", "", "prod"), ("Service", "prod", "prod-web"), ("Deployment", "prod", "prod-web")]
    deploy = Bundle.load(result["bundle"]).objects[-1]
    assert deploy["spec"]["replicas"] == 5
    assert result["objects"][0]["source"] == "overlays/prod/kustomization.yaml"


@pytest.mark.parametrize("kustomization, message", [
    ("resources: [https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.0.0]\n",
     "remote resource 'https://github.com/.*' refused: render has no network"),
    ("resources: ['github.com/org/repo/base?ref=main']\n", "remote resource .* refused"),
    ("resources: [../../../outside]\n", "outside the checkout"),
    ("helmCharts:\n- name: redis\n  repo: https://charts.example.com\n  version: 1.0.0\n",
     "inflates Helm charts; set kustomize_enable_helm"),
])
def test_kustomize_refuses_network_and_escapes(on_path, workdir, kustomization, message):
    checkout = os.path.join(workdir, "checkout")
    write_tree(workdir, {"outside/kustomization.yaml": "resources: []\n"})
    write_tree(checkout, {"overlays/x/kustomization.yaml": kustomization})
    with pytest.raises(GitOpsError, match="overlays/x/kustomization.yaml: .*" + message if "inflates" not in message
                       else message):
        render(checkout, "overlays/x")


def test_kustomize_load_restrictions_stay_on(on_path, workdir):
    checkout = os.path.join(workdir, "checkout")
    write_tree(checkout, {"shared/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\n",
                          "app/kustomization.yaml": "resources: [../shared/cm.yaml]\n"})
    with pytest.raises(GitOpsError, match="security; file .*shared/cm.yaml.* is not in or below"):
        render(checkout, "app")


def test_directory_with_a_subfolder_of_non_kubernetes_yaml_through_ansible(ansible, on_path, workdir):
    repo = os.path.join(workdir, "repo")
    write_tree(repo, {
        "app/web.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {cluster: '${CLUSTER}'}\n",
        "app/ci/pipeline.yaml": "stages: [build, test]\n",
    })
    subprocess.run(["git", "init", "-q", repo], check=True)
    subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@b", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "x"], cwd=repo, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()
    ansible.env["XDG_CACHE_HOME"] = os.environ["XDG_CACHE_HOME"]

    _proc, ok = ansible.module("gitops.k8s.render", {"source": repo, "path": "app", "namespace": "shop",
                                                     "substitute": {"CLUSTER": "prod-eu"}})
    assert not ok.get("failed"), ok
    assert ok["count"] == 1 and ok["revision"] == sha and ok["kinds"] == {"ConfigMap": 1}
    assert ok["objects"][0] == {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "web",
                                "wave": 0, "hook": None, "hook_delete_policy": [], "source": "app/web.yaml",
                                "digest": ok["objects"][0]["digest"]}
    # values handed to render (vault secrets, often) do not show in -vvv output
    verbose = ansible.playbook([{"hosts": "localhost", "gather_facts": False, "tasks": [{"gitops.k8s.render": {
        "source": repo, "path": "app", "substitute": {"CLUSTER": "s3cr3t-cluster"}}}]}], args=["-vvv"])
    assert verbose.returncode == 0 and '"CLUSTER": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"' in verbose.stdout
    assert "s3cr3t-cluster" not in verbose.stdout + verbose.stderr
    with open(os.path.join(ok["bundle"], "manifest.yaml")) as handle:
        assert yaml.safe_load(handle)["data"] == {"cluster": "prod-eu"}

    _proc, again = ansible.module("gitops.k8s.render", {"source": repo, "path": "app", "namespace": "shop",
                                                        "substitute": {"CLUSTER": "prod-eu"}})
    assert not again["changed"] and again["digest"] == ok["digest"]

    _proc, failed = ansible.module("gitops.k8s.render", {"source": repo, "path": "app", "recurse": True})
    assert failed["failed"] and failed["file"] == "app/ci/pipeline.yaml"
    assert "app/ci/pipeline.yaml: an object has no apiVersion, kind, metadata" in failed["msg"]

    _proc, excluded = ansible.module("gitops.k8s.render", {"source": repo, "path": "app", "recurse": True,
                                                           "exclude": ["ci"], "substitute": {"CLUSTER": "x"}})
    assert excluded["count"] == 1


def test_check_mode_leaves_an_explicit_dest_alone(ansible, on_path, workdir):
    write_tree(workdir, {"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"})
    ansible.env["XDG_CACHE_HOME"] = os.environ["XDG_CACHE_HOME"]
    dest = os.path.join(workdir, "bundle")
    proc, checked = ansible.module("gitops.k8s.render", {"source": workdir, "path": "app", "dest": dest},
                                   check=True, diff=True)
    assert checked["changed"] and not os.path.exists(dest) and os.path.isfile(os.path.join(checked["bundle"], "index.json"))
    assert "+digest: %s" % checked["digest"] in proc.stdout
    _proc, real = ansible.module("gitops.k8s.render", {"source": workdir, "path": "app", "dest": dest})
    assert real["changed"] and real["bundle"] == dest and Bundle.load(dest).digest == checked["digest"]


def test_jinja_lookup_pipe_is_refused_through_ansible(ansible, on_path, workdir):
    marker = os.path.join(workdir, "pwned")
    write_tree(workdir, {"t/cm.yaml.j2": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ name }}'}\n"
                                         "data: {who: \"{{ lookup('pipe', 'id; touch %s') }}\"}\n" % marker})
    ansible.env["XDG_CACHE_HOME"] = os.environ["XDG_CACHE_HOME"]
    _proc, result = ansible.module("gitops.k8s.render", {"source": workdir, "path": "t", "type": "jinja", "vars": {"name": "x"}})
    assert result["failed"] and "t/cm.yaml.j2:4: template error: UndefinedError: 'lookup' is undefined" in result["msg"]
    assert not os.path.exists(marker)
    assert "uid=" not in json.dumps(result)


def test_fetch_then_render_records_the_revision(on_path, workdir):
    from ansible_collections.gitops.k8s.plugins.module_utils.sources.git import fetch
    repo = os.path.join(workdir, "src")
    write_tree(repo, KUSTOMIZE)
    env = dict(os.environ, GIT_AUTHOR_NAME="a", GIT_AUTHOR_EMAIL="a@b", GIT_COMMITTER_NAME="a", GIT_COMMITTER_EMAIL="a@b")
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "k"]):
        subprocess.run(argv, cwd=repo, env=env, check=True)
    fetched = fetch(repo, dest=os.path.join(workdir, "checkout"))
    result = render(fetched["path"], "overlays/prod")
    assert result["revision"] == fetched["revision"] == Bundle.load(result["bundle"]).revision
