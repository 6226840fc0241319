"""Mapping Argo CD, Harness and Flux definitions to gitops_apps (pure: files in a temporary folder)."""

import os

import yaml

from ansible_collections.gitops.k8s.plugins.module_utils.apps.definitions import read_folder


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
        syncPolicy={"automated": {"prune": True, "selfHeal": False},
                    "syncOptions": ["CreateNamespace=true", "RespectIgnoreDifferences=true"],
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
                   "render": {"values_files": ["shop/prod.yaml"], "values": {"image": {"tag": "7"}},
                              "release_name": "shop"},
                   "create_namespace": False}


def test_unknown_fields_are_reported_and_unmappable_definitions_name_the_file(tmp_path):
    found = read_folder(folder_with(tmp_path, {"x.yaml": [application(
        "a", source={"repoURL": "https://g/r.git", "path": ".", "kustomize": {"namePrefix": "p-"}},
        syncPolicy={"syncOptions": ["ServerSideApply=true", "Replace=true"], "retry": {"limit": 2}})]}))
    messages = sorted(n["message"] for n in found.notes)
    assert messages[:2] == ["spec.source.kustomize is not supported; ignored",
                            "spec.syncPolicy.retry is not supported; ignored"]
    assert messages[2].startswith("syncOptions Replace=true applies to no whole application here")
    assert {n["file"] for n in found.notes} == {"x.yaml"}

    two = application("b", sources=[{"repoURL": "https://g/r.git", "path": "one"},
                                    {"repoURL": "https://g/r.git", "path": "two"}])
    [error] = read_folder(folder_with(tmp_path / "two", {"clusters/b.yaml": [two]})).errors
    assert error["file"] == "clusters/b.yaml" and "clusters/b.yaml: Application b has 2 sources" in error["message"]

    matrix = {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "metadata": {"name": "m"},
              "spec": {"generators": [{"matrix": {}}], "template": {"metadata": {}, "spec": {}}}}
    [error] = read_folder(folder_with(tmp_path / "m", {"m.yaml": [matrix]})).errors
    assert error["message"].startswith("m.yaml: ApplicationSet m: the matrix generator cannot be mapped")

    orphan = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "k"},
              "spec": {"path": "./x", "prune": True, "sourceRef": {"kind": "GitRepository", "name": "missing"}}}
    [error] = read_folder(folder_with(tmp_path / "k", {"k.yaml": [orphan]})).errors
    assert error["definition"] == "Kustomization k"
    assert error["message"].startswith("k.yaml: Kustomization k: its sourceRef GitRepository/missing")


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
    [error] = read_folder(folder_with(tmp_path / "l", {"list.yaml": [listed]}), fetch_repo).errors
    assert error["message"].startswith("list.yaml: ApplicationSet list: the template uses {{missing}}")


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
                         "render": {"release_name": "guestbook"}, "namespace": "gb", "create_namespace": False},
         "gb/harness-gitops/application.yml"),
        (None, {"name": "infra", "repo": "ssh://git@g/fleet.git", "path": "infra", "version": "v2.0.0", "prune": True,
                "self_heal": True, "create_namespace": False, "depends_on": ["crds"]}, "flux.yaml"),
        (None, {"name": "redis", "helm": {"repo": "oci://registry.example.com/charts", "chart": "redis",
                                          "version": ">=18 <19"},
                "render": {"release_name": "redis", "values": {"replicas": 1}}, "self_heal": True, "prune": True,
                "create_namespace": True, "namespace": "cache"}, "flux.yaml")]
    assert sorted(n["message"] for n in found.notes) == ["spec.healthChecks is not supported; ignored",
                                                         "spec.valuesFrom is not supported; ignored"]
    assert os.path.basename(found.apps[0][2]) == "application.yml"


def test_ignore_differences_by_jq_path_or_field_manager_and_the_sync_options_the_engine_has(tmp_path):
    found = read_folder(folder_with(tmp_path, {"web.yaml": [application(
        "web", source={"repoURL": "https://g/r.git", "path": "web"},
        syncPolicy={"syncOptions": ["RespectIgnoreDifferences=true", "Replace=true"]},
        ignoreDifferences=[
            {"group": "apps", "kind": "Deployment", "jqPathExpressions": [".spec.template.spec.initContainers[]"]},
            {"kind": "ConfigMap", "name": "tuned", "managedFieldsManagers": ["kube-controller-manager"]}])]}))
    [(_cluster, app, _rel)] = found.apps
    assert app["ignore_differences"] == [
        {"group": "apps", "kind": "Deployment", "jq_path_expressions": [".spec.template.spec.initContainers[]"]},
        {"kind": "ConfigMap", "name": "tuned", "managed_fields_managers": ["kube-controller-manager"]}]
    # RespectIgnoreDifferences=true is what gitops.k8s always does; Replace=true says what happens instead
    [note] = found.notes
    assert "not supported" not in note["message"]
    assert note["message"].startswith("syncOptions Replace=true applies to no whole application here")
    assert "gitops.k8s/sync-options: Replace=true" in note["message"] and "replace_on_immutable" in note["message"]


def test_without_respect_ignore_differences_the_note_says_ignored_fields_are_not_written(tmp_path):
    found = read_folder(folder_with(tmp_path, {"web.yaml": [application(
        "web", source={"repoURL": "https://g/r.git", "path": "web"},
        ignoreDifferences=[{"kind": "ConfigMap", "jsonPointers": ["/data/x"]}])]}))
    assert [n["message"] for n in found.notes] == [
        "ignoreDifferences: the ignored fields are never written by apply (Argo CD's RespectIgnoreDifferences=true); "
        "without that option Argo CD writes Git's value of them on every sync"]


def test_helm_release_is_named_after_the_application_as_argo_cd_and_harness_do(tmp_path):
    # the shape of helm-guestbook/harness-gitops/application.yml: a chart in a Git folder, no helm section
    harness = {"gitops": {"name": "gitops-helm-application", "type": "application", "clusterIdentifier": "prod",
                          "application": {"spec": {
                              "source": {"repoURL": "https://g/examples.git", "path": "helm-guestbook",
                                         "targetRevision": "master"},
                              "destination": {"namespace": "default"}}}}}
    found = read_folder(folder_with(tmp_path, {
        "helm-guestbook/harness-gitops/application.yml": [harness],
        "argo.yaml": [
            application("from-repo", source={"repoURL": "https://charts.example.com", "chart": "redis",
                                             "targetRevision": "18.0.0"}),
            application("named", source={"repoURL": "https://g/r.git", "path": "chart",
                                         "helm": {"releaseName": "legacy"}}),
            application("plain", source={"repoURL": "https://g/r.git", "path": "manifests",
                                         "directory": {"recurse": True}})]}))
    names = {app["name"]: app.get("render", {}).get("release_name") for _c, app, _r in found.apps}
    assert names == {"gitops-helm-application": "gitops-helm-application", "from-repo": "from-repo",
                     "named": "legacy", "plain": None}


def test_a_definition_that_cannot_be_mapped_is_an_error_naming_it_and_the_others_are_still_read(tmp_path):
    two = application("two", sources=[{"repoURL": "https://g/r.git", "path": "one"},
                                      {"repoURL": "https://g/r.git", "path": "two"}])
    folder = folder_with(tmp_path, {"apps/good.yaml": [application("good", source={"repoURL": "https://g/r.git"})],
                                    "apps/two.yaml": [two]})
    (tmp_path / "broken.yaml").write_text("a: [unclosed\n")
    found = read_folder(folder)
    assert [app["name"] for _c, app, _r in found.apps] == ["good"]
    assert [(e["file"], e["definition"]) for e in found.errors] == [("apps/two.yaml", "Application two"),
                                                                    ("broken.yaml", None)]
    assert "apps/two.yaml: Application two has 2 sources of manifests" in found.errors[0]["message"]


# -- teams: AppProject, spec.project, Flux serviceAccountName ---------------------------------

def app_project(name, **spec):
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": name, "namespace": "argocd"},
            "spec": spec}


def test_an_app_project_becomes_a_project_per_cluster_and_an_application_names_it(tmp_path):
    prod, stage = "https://prod.example.com", "https://stage.example.com"
    project = app_project(
        "team-a", description="Team A", sourceRepos=["*", "!https://git.example.com/secret/*"],
        destinations=[{"server": prod, "namespace": "team-a"}, {"server": stage, "namespace": "team-a-*"},
                      {"name": "in-cluster", "namespace": "!kube-system"}, {"server": "*", "namespace": ""}],
        clusterResourceWhitelist=[{"group": "", "kind": "Namespace"}],
        clusterResourceBlacklist=[{"group": "rbac.authorization.k8s.io", "kind": "*"}],
        namespaceResourceBlacklist=[{"group": "", "kind": "ResourceQuota"}],
        destinationServiceAccounts=[{"server": prod, "namespace": "team-a", "defaultServiceAccount": "deployer"},
                                    {"server": "*", "namespace": "*", "defaultServiceAccount": "team-a:fallback"}],
        roles=[{"name": "ci"}])
    found = read_folder(folder_with(tmp_path, {"projects/a.yaml": [project], "apps/web.yaml": [
        application("web", project="team-a", source={"repoURL": "https://g/r.git", "path": "web"},
                    destination={"server": prod, "namespace": "team-a"}),
        application("legacy", project="default", source={"repoURL": "https://g/r.git", "path": "legacy"},
                    destination={"server": prod, "namespace": "team-a"})]}))
    assert [app.get("project") for _cluster, app, _rel in found.apps] == ["team-a", None]
    [read] = found.projects
    on_prod = read.for_cluster(lambda server, name: server in (prod, "*"))
    assert on_prod == {
        "name": "team-a", "description": "Team A",
        "source_repos": ["**", "!https://git.example.com/secret/*"],  # Argo CD's '*' alone is any repository
        "destinations": ["team-a"], "cluster_resources": [{"group": "", "kind": "Namespace"}],
        "cluster_resources_deny": [{"group": "rbac.authorization.k8s.io", "kind": "*"}],
        "namespace_resources_deny": [{"group": "", "kind": "ResourceQuota"}],
        "service_accounts": [{"namespace": "team-a", "service_account": "deployer"},
                             {"namespace": "*", "service_account": "team-a/fallback"}]}
    on_stage = read.for_cluster(lambda server, name: server in (stage, "*") or name == "in-cluster")
    assert on_stage["destinations"] == ["team-a-*", "!kube-system"]
    assert on_stage["service_accounts"] == [{"namespace": "*", "service_account": "team-a/fallback"}]
    assert [n["message"] for n in found.notes] == ["spec.roles is not supported; ignored"]
    # what the policy makes of it (sync/policy.py)
    from ansible_collections.gitops.k8s.plugins.module_utils.sync.policy import load_projects
    assert load_projects([on_prod])["team-a"].service_accounts[0][1] == (None, "deployer")


def test_flux_service_account_name_is_the_apps_identity_in_its_namespace(tmp_path):
    source = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "metadata": {"name": "fleet"},
              "spec": {"url": "https://g/fleet.git"}}

    def kustomization(name, **meta):
        return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": dict({"name": name}, **meta),
                "spec": {"path": "./" + name, "serviceAccountName": "reconciler", "targetNamespace": "apps-" + name,
                         "sourceRef": {"kind": "GitRepository", "name": "fleet"}}}

    found = read_folder(folder_with(tmp_path, {"flux.yaml": [
        source, kustomization("web", namespace="team-a"), kustomization("api"),
        dict(kustomization("lost"), spec=dict(kustomization("lost")["spec"], targetNamespace=None))]}))
    accounts = {app["name"]: app.get("service_account") for _cluster, app, _rel in found.apps}
    assert accounts == {"web": "team-a/reconciler", "api": "apps-api/reconciler"}
    assert [e["message"] for e in found.errors] == [
        "flux.yaml: Kustomization lost: spec.serviceAccountName reconciler names a ServiceAccount of the "
        "Kustomization's namespace, and it has neither metadata.namespace nor spec.targetNamespace"]


def test_an_app_project_defined_twice_is_an_error_naming_both_files(tmp_path):
    found = read_folder(folder_with(tmp_path, {"a.yaml": [app_project("p", sourceRepos=["*"])],
                                               "b.yaml": [app_project("p", sourceRepos=["*"])]}))
    assert [p.rel for p in found.projects] == ["a.yaml"]
    assert [e["message"] for e in found.errors] == ["AppProject 'p' is defined twice: in a.yaml and in b.yaml"]
