"""Mapping Argo CD, Harness and Flux definitions to gitops_apps (pure: files in a temporary folder)."""

import os

import pytest
import yaml

from ansible_collections.gitops.k8s.plugins.module_utils.app_definitions import read_folder
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError


def folder_with(tmp_path, files):
    for rel, docs in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(docs))
    return str(tmp_path)


def application(name, **spec):
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": name}, "spec": spec}


def test_single_source_application_maps_sync_policy_namespace_and_ignore_differences(tmp_path):
    found = read_folder(folder_with(tmp_path, {"apps/web.yaml": [application(
        "Web_App", source={"repoURL": "https://git.example.com/deploy.git", "targetRevision": "v1.*", "path": "web",
                           "directory": {"recurse": True, "include": "{*.yaml,*.yml}"}},
        destination={"name": "prod", "namespace": "web"},
        syncPolicy={"automated": {"prune": True, "selfHeal": False}, "syncOptions": ["CreateNamespace=true"],
                    "managedNamespaceMetadata": {"labels": {"team": "web"}}},
        ignoreDifferences=[{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}])]}))
    assert found.apps == [("prod", {
        "name": "web-app", "repo": "https://git.example.com/deploy.git", "version": "v1.*", "path": "web",
        "render": {"recurse": True, "include": ["*.yaml", "*.yml"]}, "namespace": "web", "prune": True,
        "self_heal": False, "create_namespace": True, "managed_namespace_metadata": {"labels": {"team": "web"}},
        "ignore_differences": [{"group": "apps", "kind": "Deployment", "json_pointers": ["/spec/replicas"]}]},
        "apps/web.yaml")]
    assert found.notes == []


def test_multi_source_chart_with_values_from_git(tmp_path):
    found = read_folder(folder_with(tmp_path, {"a.yaml": [application(
        "shop", destination={"server": "https://kubernetes.default.svc"}, sources=[
            {"repoURL": "registry.example.com/charts", "chart": "shop", "targetRevision": "2.x",
             "helm": {"valueFiles": ["$vals/shop/prod.yaml"], "parameters": [{"name": "image.tag", "value": "7"}]}},
            {"repoURL": "https://git.example.com/values.git", "targetRevision": "main", "ref": "vals"}])]}))
    [(cluster, app, _rel)] = found.apps
    assert cluster == "https://kubernetes.default.svc"
    assert app == {"name": "shop", "helm": {"repo": "oci://registry.example.com/charts", "chart": "shop",
                                            "version": "2.x"},
                   "repo": "https://git.example.com/values.git", "path": ".", "version": "main",
                   "render": {"values_files": ["shop/prod.yaml"], "values": {"image": {"tag": "7"}}},
                   "create_namespace": False}


def test_unknown_fields_are_reported_and_unmappable_definitions_name_the_file(tmp_path):
    found = read_folder(folder_with(tmp_path, {"x.yaml": [application(
        "a", source={"repoURL": "https://g/r.git", "path": ".", "kustomize": {"namePrefix": "p-"}},
        syncPolicy={"syncOptions": ["ServerSideApply=true", "Replace=true"], "retry": {"limit": 2}})]}))
    messages = sorted(n["message"] for n in found.notes)
    assert messages == ["spec.source.kustomize is not supported; ignored", "spec.syncPolicy.retry is not supported; ignored",
                        "syncOptions Replace=true is not supported; ignored"]
    assert {n["file"] for n in found.notes} == {"x.yaml"}

    two = application("b", sources=[{"repoURL": "https://g/r.git", "path": "one"},
                                    {"repoURL": "https://g/r.git", "path": "two"}])
    with pytest.raises(GitOpsError) as err:
        read_folder(folder_with(tmp_path / "two", {"clusters/b.yaml": [two]}))
    assert "clusters/b.yaml" in str(err.value) and "2 sources" in str(err.value)

    matrix = {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "metadata": {"name": "m"},
              "spec": {"generators": [{"matrix": {}}], "template": {"metadata": {}, "spec": {}}}}
    with pytest.raises(GitOpsError, match="m.yaml: ApplicationSet m: the matrix generator cannot be mapped"):
        read_folder(folder_with(tmp_path / "m", {"m.yaml": [matrix]}))

    orphan = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "k"},
              "spec": {"path": "./x", "prune": True, "sourceRef": {"kind": "GitRepository", "name": "missing"}}}
    with pytest.raises(GitOpsError, match="k.yaml: Kustomization k: its sourceRef GitRepository/missing"):
        read_folder(folder_with(tmp_path / "k", {"k.yaml": [orphan]}))


def test_application_set_generators_fill_the_template(tmp_path):
    repo = tmp_path / "checkout"
    for folder in ("teams/a", "teams/b", "teams/.hidden", "other/c"):
        (repo / folder).mkdir(parents=True)
    (repo / "envs").mkdir()
    (repo / "envs" / "qa.yaml").write_text("env: qa\ncluster: {name: qa-cluster}\n")
    fetched = []

    def fetch_repo(url, revision):
        fetched.append((url, revision))
        return str(repo)

    template = {"metadata": {"name": "{{path.basename}}"},
                "spec": {"source": {"repoURL": "https://g/r.git", "path": "{{path}}"},
                         "destination": {"name": "in-cluster", "namespace": "{{path.basename}}"}}}
    dirs = {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "metadata": {"name": "dirs"},
            "spec": {"generators": [{"git": {"repoURL": "https://g/r.git", "revision": "main",
                                             "directories": [{"path": "teams/*"}, {"path": "teams/b", "exclude": True}]}}],
                     "template": template}}
    files = {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "metadata": {"name": "files"},
             "spec": {"goTemplate": True,
                      "generators": [{"git": {"repoURL": "https://g/r.git", "files": [{"path": "envs/*.yaml"}]}}],
                      "template": {"metadata": {"name": "env-{{.env}}"},
                                   "spec": {"source": {"repoURL": "https://g/r.git", "path": "apps"},
                                            "destination": {"name": "{{.cluster.name}}"}}}}}
    listed = {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "metadata": {"name": "list"},
              "spec": {"generators": [{"list": {"elements": [{"n": "x"}]}}],
                       "template": {"metadata": {"name": "l-{{n}}-{{missing}}"},
                                    "spec": {"source": {"repoURL": "https://g/r.git"}}}}}
    found = read_folder(folder_with(tmp_path / "defs", {"dirs.yaml": [dirs], "files.yaml": [files]}), fetch_repo)
    assert [(c, a["name"], a.get("path"), a.get("namespace")) for c, a, _r in found.apps] == [
        ("in-cluster", "a", "teams/a", "a"), ("qa-cluster", "env-qa", "apps", None)]
    assert fetched == [("https://g/r.git", "main"), ("https://g/r.git", None)]
    with pytest.raises(GitOpsError, match=r"list.yaml: ApplicationSet list: the template uses \{\{missing\}\}"):
        read_folder(folder_with(tmp_path / "l", {"list.yaml": [listed]}), fetch_repo)


def test_harness_and_flux_definitions(tmp_path):
    harness = {"gitops": {"name": "guestbook", "type": "application", "clusterIdentifier": "prodcluster",
                          "agentIdentifier": "a", "repoIdentifier": "r", "projectIdentifier": "p", "orgIdentifier": "o",
                          "application": {"metadata": {"namespace": "default", "clusterName": "x"},
                                          "spec": {"source": {"repoURL": "https://g/h.git", "path": "guestbook",
                                                              "targetRevision": "master"},
                                                   "destination": {"server": "https://kubernetes.default.svc",
                                                                   "namespace": "gb"}}}}}
    flux = [
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "metadata": {"name": "fleet"},
         "spec": {"url": "ssh://git@g/fleet.git", "ref": {"tag": "v2.0.0"}, "secretRef": {"name": "s"}}},
        {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "infra"},
         "spec": {"path": "./infra", "prune": True, "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                  "dependsOn": [{"name": "crds"}], "healthChecks": []}},
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository", "metadata": {"name": "bitnami"},
         "spec": {"type": "oci", "url": "registry.example.com/charts"}},
        {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "redis"},
         "spec": {"targetNamespace": "cache",
                  "chart": {"spec": {"chart": "redis", "version": ">=18 <19",
                                     "sourceRef": {"kind": "HelmRepository", "name": "bitnami"}}},
                  "values": {"replicas": 1}, "valuesFrom": [{"kind": "Secret", "name": "x"}],
                  "install": {"createNamespace": True}}},
    ]
    found = read_folder(folder_with(tmp_path, {"gb/harness-gitops/application.yml": [harness], "flux.yaml": flux}))
    assert found.apps == [
        ("prodcluster", {"name": "guestbook", "repo": "https://g/h.git", "version": "master", "path": "guestbook",
                         "namespace": "gb", "create_namespace": False}, "gb/harness-gitops/application.yml"),
        (None, {"name": "infra", "repo": "ssh://git@g/fleet.git", "path": "infra", "version": "v2.0.0", "prune": True,
                "self_heal": True, "create_namespace": False, "depends_on": ["crds"]}, "flux.yaml"),
        (None, {"name": "redis", "helm": {"repo": "oci://registry.example.com/charts", "chart": "redis",
                                          "version": ">=18 <19"},
                "render": {"release_name": "redis", "values": {"replicas": 1}}, "self_heal": True, "prune": True,
                "create_namespace": True, "namespace": "cache"}, "flux.yaml")]
    assert sorted(n["message"] for n in found.notes) == ["spec.healthChecks is not supported; ignored",
                                                         "spec.valuesFrom is not supported; ignored"]
    assert os.path.basename(found.apps[0][2]) == "application.yml"
