"""Projects: what an application may deploy, where and as whom (sync/policy.py, pure)."""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.sync.policy import (
    check_objects, evaluate, load_projects, normalize_url, parse_service_account)

TEAM_A = {
    "name": "team-a",
    "source_repos": ["https://git.example.com/team-a/*"],
    "destinations": ["team-a", "team-a-*"],
}


def projects(*specs):
    return load_projects(list(specs))


def app(**fields):
    base = {"name": "shop", "repo": "https://git.example.com/team-a/shop.git", "namespace": "team-a",
            "project": "team-a", "helm": None}
    base.update(fields)
    return base


def entry(kind, name, namespace="", api_version="v1", source="app/objects.yaml"):
    return {"apiVersion": api_version, "kind": kind, "namespace": namespace, "name": name, "source": source,
            "wave": 0, "hook": None}


def refusals(verdict):
    return [(r["rule"], r["message"]) for r in verdict.refusals]


def rules(verdict):
    return [r["rule"] for r in verdict.refusals]


# -- project definitions ---------------------------------------------------------------------

def test_a_full_project_loads_and_no_projects_is_an_empty_mapping():
    loaded = projects(dict(TEAM_A, description="Team A", cluster_resources=[{"group": "", "kind": "Namespace",
                                                                            "name": "team-a-*"}],
                           cluster_resources_deny=[{"group": "*", "kind": "ClusterRoleBinding"}],
                           namespace_resources=[{"group": "*", "kind": "*"}],
                           namespace_resources_deny=[{"group": "", "kind": "ResourceQuota"}],
                           service_accounts=[{"namespace": "team-a*", "service_account": "deployer"}]))
    assert list(loaded) == ["team-a"]
    assert loaded["team-a"].service_accounts[0][1] == (None, "deployer")
    assert load_projects(None) == {} and load_projects([]) == {}


@pytest.mark.parametrize("raw, words", [
    ({"team-a": {}}, ["gitops_projects must be a list"]),
    (["team-a"], ["gitops_projects[0] must be a mapping"]),
    ([{"source_repos": ["*"]}], ["gitops_projects[0]: name is required"]),
    ([{"name": "Team A"}], ["gitops_projects[0]: name is required", "'Team A'"]),
    ([TEAM_A, TEAM_A], ["project 'team-a' is defined twice"]),
    ([dict(TEAM_A, sourceRepos=["*"])], ["project 'team-a': unknown key sourceRepos", "source_repos"]),
    ([dict(TEAM_A, source_repos="https://git.example.com/*")], ["project 'team-a': source_repos must be a list"]),
    ([dict(TEAM_A, destinations=["team-a", ""])], ["project 'team-a': destinations must be a list of non-empty"]),
    ([dict(TEAM_A, destinations=["!*"])], ["project 'team-a': destinations: '!*' denies everything"]),
    ([dict(TEAM_A, source_repos=["!**"])], ["project 'team-a': source_repos: '!**' denies everything"]),
    ([dict(TEAM_A, cluster_resources={"group": "", "kind": "Namespace"})],
     ["project 'team-a': cluster_resources must be a list of {group, kind}"]),
    ([dict(TEAM_A, cluster_resources=[{"kind": "Namespace"}])],
     ["project 'team-a': cluster_resources[0] needs group", "'' is the core group"]),
    ([dict(TEAM_A, cluster_resources=[{"group": "", "kind": ""}])], ["cluster_resources[0] needs group"]),
    ([dict(TEAM_A, namespace_resources_deny=[{"group": "", "kind": "Secret", "name": "x"}])],
     ["project 'team-a': namespace_resources_deny[0] must be a mapping of group, kind,"]),
    ([dict(TEAM_A, cluster_resources=[{"group": "", "kind": "Namespace", "name": 3}])],
     ["cluster_resources[0]: name must be a string"]),
    ([dict(TEAM_A, service_accounts={"team-a": "team-a/deployer"})],
     ["project 'team-a': service_accounts must be a list"]),
    ([dict(TEAM_A, service_accounts=[{"namespace": "team-a"}])],
     ["project 'team-a': service_accounts[0] must be a mapping of namespace"]),
    ([dict(TEAM_A, service_accounts=[{"namespace": "team-a", "service_account": "team-a/Deployer"}])],
     ["project 'team-a': service_accounts[0]: service_account", "'Deployer' is not a ServiceAccount name"]),
    ([dict(TEAM_A, service_accounts=[{"namespace": "team-a", "service_account": "a/b/deployer"}])],
     ["service_accounts[0]: service_account must read \"<namespace>/<name>\"", "'a/b/deployer'"]),
    ([dict(TEAM_A, service_accounts=[{"namespace": "", "service_account": "deployer"}])],
     ["service_accounts[0]: namespace must be a glob"]),
])
def test_a_wrong_project_definition_is_an_error_naming_project_and_field(raw, words):
    with pytest.raises(GitOpsError) as caught:
        load_projects(raw)
    for word in words:
        assert word in str(caught.value)
    if str(caught.value).startswith("project 'team-a'"):
        assert caught.value.details["project"] == "team-a"


def test_service_account_texts():
    assert parse_service_account("team-a/deployer", "x") == ("team-a", "deployer")
    assert parse_service_account("deployer", "x", bare=True) == (None, "deployer")
    for wrong in ("deployer", "/deployer", "team-a/", 7, "Team-A/deployer"):
        with pytest.raises(GitOpsError, match="^app: service_account"):
            parse_service_account(wrong, "app: service_account")


# -- source repositories ---------------------------------------------------------------------

def test_a_repository_of_the_team_is_permitted_and_of_another_team_is_not():
    loaded = projects(TEAM_A)
    assert evaluate(app(), [], loaded).allowed
    verdict = evaluate(app(repo="https://git.example.com/team-b/shop.git"), [], loaded)
    assert refusals(verdict) == [("source_repos", "application 'shop': repository https://git.example.com/team-b/shop.git "
                                  "is not permitted by project 'team-a': it matches none of its source_repos "
                                  "(https://git.example.com/team-a/*)")]
    assert verdict.refusals[0]["file"] is None and verdict.refusals[0]["object"] is None


def test_star_stays_within_a_path_segment_and_double_star_crosses_them():
    loaded = projects(TEAM_A, dict(TEAM_A, name="deep", source_repos=["https://git.example.com/team-a/**"]))
    nested = "https://git.example.com/team-a/sub/shop"
    assert rules(evaluate(app(repo=nested), [], loaded)) == ["source_repos"]
    assert evaluate(app(repo=nested, project="deep"), [], loaded).allowed


def test_urls_compare_without_credentials_case_trailing_slash_or_dot_git_and_credentials_are_never_printed():
    loaded = projects(dict(TEAM_A, source_repos=["https://git.example.com/Team-A/shop.git/"]))
    assert evaluate(app(repo="https://bot:s3cr3t@GIT.example.com/team-a/shop/"), [], loaded).allowed
    verdict = evaluate(app(repo="https://bot:s3cr3t@git.example.com/team-b/shop"), [], loaded)
    assert rules(verdict) == ["source_repos"] and "s3cr3t" not in verdict.refusals[0]["message"]
    assert normalize_url(" https://u:p@Host/Repo.git/ ") == "https://host/repo"


def test_a_denying_pattern_wins_whatever_its_place_and_denials_alone_permit_nothing():
    for order in (["!https://git.example.com/team-a/secret", "https://git.example.com/team-a/*"],
                  ["https://git.example.com/team-a/*", "!https://git.example.com/team-a/secret"]):
        loaded = projects(dict(TEAM_A, source_repos=order))
        assert evaluate(app(), [], loaded).allowed
        verdict = evaluate(app(repo="https://git.example.com/team-a/secret.git"), [], loaded)
        assert refusals(verdict) == [("source_repos", "application 'shop': repository "
                                      "https://git.example.com/team-a/secret.git is not permitted by project 'team-a': "
                                      "it is denied by '!https://git.example.com/team-a/secret'")]
    only_denials = projects(dict(TEAM_A, source_repos=["!https://git.example.com/team-b/*"]))
    assert rules(evaluate(app(), [], only_denials)) == ["source_repos"]


def test_an_empty_source_repos_permits_no_repository():
    verdict = evaluate(app(), [], projects(dict(TEAM_A, source_repos=[])))
    assert refusals(verdict)[0][1].endswith("matches none of its source_repos (none)")


def test_a_chart_repository_is_a_source_too():
    loaded = projects(dict(TEAM_A, source_repos=["https://git.example.com/team-a/*", "oci://registry.example.com/team-a/*"]))
    chart = {"repo": "oci://registry.example.com/team-a/charts", "chart": "shop"}
    assert evaluate(app(helm=chart), [], loaded).allowed
    assert evaluate(app(repo=None, helm=chart), [], loaded).allowed
    other = {"repo": "oci://registry.example.com/team-b/charts", "chart": "shop"}
    verdict = evaluate(app(helm=other), [], loaded)
    assert rules(verdict) == ["source_repos"] and "oci://registry.example.com/team-b/charts" in verdict.refusals[0]["message"]


# -- destinations ----------------------------------------------------------------------------

def test_an_object_in_another_teams_namespace_is_refused_naming_file_object_and_rule():
    bundle = [entry("ConfigMap", "settings", "team-a"), entry("ConfigMap", "settings", "team-b", source="app/b.yaml"),
              entry("Secret", "token", "team-a-cache")]
    verdict = evaluate(app(), bundle, projects(TEAM_A))
    assert refusals(verdict) == [("destinations", "app/b.yaml: ConfigMap team-b/settings: namespace team-b is not among "
                                  "project 'team-a''s destinations (team-a, team-a-*)")]
    assert verdict.refusals[0]["file"] == "app/b.yaml"
    assert verdict.refusals[0]["object"] == {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "team-b",
                                             "name": "settings"}
    assert "nothing of it is applied" in str(verdict.error()) and "app/b.yaml" in str(verdict.error())


def test_the_applications_own_namespace_must_be_a_destination():
    verdict = evaluate(app(namespace="team-b"), [], projects(TEAM_A))
    assert refusals(verdict) == [("destinations", "application 'shop': namespace team-b is not among project "
                                  "'team-a''s destinations (team-a, team-a-*)")]


def test_a_denied_destination_wins_over_a_glob_that_allows_it():
    loaded = projects(dict(TEAM_A, destinations=["team-a*", "!team-a-vault", "!kube-?ystem"]))
    bundle = [entry("ConfigMap", "c", "team-a-web"), entry("ConfigMap", "c", "team-a-vault")]
    assert refusals(evaluate(app(), bundle, loaded)) == [
        ("destinations", "app/objects.yaml: ConfigMap team-a-vault/c: namespace team-a-vault is denied by "
                         "'!team-a-vault' of project 'team-a''s destinations")]
    assert rules(evaluate(app(namespace="team-a-vault"), [], loaded)) == ["destinations"]


def test_a_namespaced_object_without_namespace_is_refused_when_no_destination_is_empty():
    verdict = evaluate(app(namespace=None), [entry("ConfigMap", "c", "")], projects(TEAM_A),
                       namespaced=lambda group, kind: True)
    assert refusals(verdict) == [("destinations", "app/objects.yaml: ConfigMap c: namespace (none) is not among "
                                  "project 'team-a''s destinations (team-a, team-a-*)")]


def test_an_empty_destinations_list_permits_no_namespace():
    verdict = evaluate(app(), [entry("ConfigMap", "c", "team-a")], projects(dict(TEAM_A, destinations=[])))
    assert rules(verdict) == ["destinations", "destinations"]


# -- resources -------------------------------------------------------------------------------

def test_cluster_scoped_objects_are_refused_unless_allowed():
    rbac = "rbac.authorization.k8s.io/v1"
    bundle = [entry("ClusterRoleBinding", "admin", api_version=rbac, source="app/rbac.yaml")]
    verdict = evaluate(app(), bundle, projects(TEAM_A))
    assert refusals(verdict) == [("cluster_resources", "app/rbac.yaml: ClusterRoleBinding admin: cluster-scoped "
                                  "ClusterRoleBinding.rbac.authorization.k8s.io is not in project 'team-a''s "
                                  "cluster_resources (none allowed)")]
    allowed = projects(dict(TEAM_A, cluster_resources=[{"group": "rbac.authorization.k8s.io", "kind": "ClusterRole*"}]))
    assert evaluate(app(), bundle, allowed).allowed


def test_a_cluster_resource_rule_may_name_the_objects_it_allows():
    loaded = projects(dict(TEAM_A, cluster_resources=[{"group": "", "kind": "Namespace", "name": "team-a-*"}]))
    assert evaluate(app(), [entry("Namespace", "team-a-web")], loaded).allowed
    verdict = evaluate(app(), [entry("Namespace", "kube-system")], loaded)
    assert refusals(verdict) == [("cluster_resources", "app/objects.yaml: Namespace kube-system: cluster-scoped Namespace "
                                  "is not in project 'team-a''s cluster_resources ({group: '', kind: 'Namespace', "
                                  "name: 'team-a-*'})")]


def test_a_cluster_resource_denial_wins_over_the_allow_list():
    loaded = projects(dict(TEAM_A, cluster_resources=[{"group": "*", "kind": "*"}],
                           cluster_resources_deny=[{"group": "", "kind": "Namespace", "name": "kube-*"}]))
    assert evaluate(app(), [entry("Namespace", "team-a-web")], loaded).allowed
    assert refusals(evaluate(app(), [entry("Namespace", "kube-public")], loaded)) == [
        ("cluster_resources_deny", "app/objects.yaml: Namespace kube-public: Namespace is denied by project 'team-a''s "
                                   "cluster_resources_deny {group: '', kind: 'Namespace', name: 'kube-*'}")]


def test_discovery_decides_the_scope_of_a_kind_render_did_not_know():
    # render gave the app's namespace to a ClusterIssuer (its CRD is on the cluster, not in the bundle)
    issuer = entry("ClusterIssuer", "letsencrypt", "team-a", api_version="cert-manager.io/v1")
    scope = {("cert-manager.io", "ClusterIssuer"): False}
    verdict = evaluate(app(), [issuer], projects(TEAM_A), namespaced=lambda group, kind: scope.get((group, kind)))
    assert refusals(verdict) == [("cluster_resources", "app/objects.yaml: ClusterIssuer letsencrypt: cluster-scoped "
                                  "ClusterIssuer.cert-manager.io is not in project 'team-a''s cluster_resources "
                                  "(none allowed)")]
    assert verdict.refusals[0]["object"]["namespace"] == ""
    # a kind discovery does not know keeps the scope its entry shows
    assert evaluate(app(), [issuer], projects(TEAM_A), namespaced=lambda group, kind: None).allowed


def test_namespace_resource_denials_and_allow_list():
    loaded = projects(dict(TEAM_A, namespace_resources_deny=[{"group": "", "kind": "ResourceQuota"},
                                                             {"group": "*", "kind": "NetworkPolicy"}]))
    bundle = [entry("ResourceQuota", "q", "team-a"), entry("ConfigMap", "c", "team-a"),
              entry("NetworkPolicy", "np", "team-a", api_version="networking.k8s.io/v1")]
    assert refusals(evaluate(app(), bundle, loaded)) == [
        ("namespace_resources_deny", "app/objects.yaml: ResourceQuota team-a/q: ResourceQuota is denied by project "
                                     "'team-a''s namespace_resources_deny {group: '', kind: 'ResourceQuota'}"),
        ("namespace_resources_deny", "app/objects.yaml: NetworkPolicy team-a/np: NetworkPolicy.networking.k8s.io is "
                                     "denied by project 'team-a''s namespace_resources_deny {group: '*', "
                                     "kind: 'NetworkPolicy'}")]
    only_apps = projects(dict(TEAM_A, namespace_resources=[{"group": "apps", "kind": "*"}]))
    assert rules(evaluate(app(), [entry("Deployment", "web", "team-a", api_version="apps/v1"),
                                  entry("ConfigMap", "c", "team-a")], only_apps)) == ["namespace_resources"]


def test_the_core_group_is_not_any_group():
    loaded = projects(dict(TEAM_A, namespace_resources_deny=[{"group": "", "kind": "Secret"}]))
    assert evaluate(app(), [entry("Secret", "s", "team-a", api_version="example.com/v1")], loaded).allowed
    assert rules(evaluate(app(), [entry("Secret", "s", "team-a")], loaded)) == ["namespace_resources_deny"]


def test_one_object_can_break_several_rules_and_each_is_named():
    loaded = projects(dict(TEAM_A, namespace_resources_deny=[{"group": "", "kind": "ResourceQuota"}]))
    assert rules(evaluate(app(), [entry("ResourceQuota", "q", "team-b")], loaded)) == [
        "destinations", "namespace_resources_deny"]


def test_objects_a_prune_would_delete_are_checked_without_a_file():
    loaded = projects(TEAM_A)
    found = check_objects(loaded["team-a"], [{"apiVersion": "v1", "kind": "ConfigMap", "namespace": "team-b",
                                              "name": "theirs"}])
    assert [(r["rule"], r["file"], r["message"]) for r in found] == [
        ("destinations", None, "ConfigMap team-b/theirs: namespace team-b is not among project 'team-a''s destinations "
                               "(team-a, team-a-*)")]


# -- projects and identity -------------------------------------------------------------------

def test_an_undefined_project_is_refused_naming_the_defined_ones():
    verdict = evaluate(app(project="team-z"), [entry("ConfigMap", "c", "anywhere")], projects(TEAM_A))
    assert refusals(verdict) == [("project", "application 'shop' names project 'team-z', which gitops_projects does "
                                  "not define (defined: team-a)")]
    assert verdict.project is None


def test_an_app_without_project_is_in_the_default_project_when_there_is_one():
    lax = evaluate(app(project=None), [entry("ConfigMap", "c", "anywhere")], projects(TEAM_A))
    assert lax.allowed and lax.project is None
    strict = evaluate(app(project=None), [entry("ConfigMap", "c", "anywhere")],
                      projects(TEAM_A, dict(TEAM_A, name="default", source_repos=["**"])))
    assert strict.project == "default" and rules(strict) == ["destinations"]


def test_the_apps_own_service_account_is_its_identity():
    verdict = evaluate(app(service_account="team-a/deployer"), [], projects(TEAM_A))
    assert verdict.identity == "system:serviceaccount:team-a:deployer"
    assert verdict.service_account == "team-a/deployer"
    assert verdict.as_dict() == {"project": "team-a", "identity": "system:serviceaccount:team-a:deployer",
                                 "service_account": "team-a/deployer", "refusals": []}
    assert evaluate(app(project=None, service_account="any/one"), [], {}).identity == "system:serviceaccount:any:one"


def test_an_app_cannot_borrow_a_service_account_outside_its_projects_destinations():
    verdict = evaluate(app(service_account="team-b/deployer"), [], projects(TEAM_A), require_identity=True)
    assert refusals(verdict) == [("service_account", "application 'shop': service_account team-b/deployer is refused: "
                                  "namespace team-b is not among project 'team-a''s destinations (team-a, team-a-*) "
                                  "(an application may act only as a ServiceAccount of its project's namespaces)")]
    assert verdict.identity is None


def test_a_malformed_service_account_is_refused_once_even_in_strict_mode():
    verdict = evaluate(app(service_account="deployer"), [], projects(TEAM_A), require_identity=True)
    assert refusals(verdict) == [("service_account", "application 'shop': service_account must read "
                                  "\"<namespace>/<name>\" (a ServiceAccount), not 'deployer'")]


def test_the_project_names_the_identity_per_destination_namespace_first_match_wins():
    loaded = projects(dict(TEAM_A, service_accounts=[
        {"namespace": "team-a-prod", "service_account": "team-a/prod-deployer"},
        {"namespace": "team-a*", "service_account": "deployer"},
        {"namespace": "*", "service_account": "team-a/never"}]))
    assert evaluate(app(namespace="team-a-prod"), [], loaded).identity == "system:serviceaccount:team-a:prod-deployer"
    assert evaluate(app(namespace="team-a-web"), [], loaded).service_account == "team-a-web/deployer"
    own = evaluate(app(namespace="team-a-web", service_account="team-a/mine"), [], loaded)
    assert own.service_account == "team-a/mine"


def test_a_bare_service_account_name_needs_the_app_to_have_a_namespace():
    loaded = projects(dict(TEAM_A, service_accounts=[{"namespace": "*", "service_account": "deployer"}]))
    verdict = evaluate(app(namespace=None), [], loaded, require_identity=True)
    assert refusals(verdict) == [("service_accounts", "application 'shop' has no namespace, so project 'team-a''s "
                                  "service_accounts rule '*' -> 'deployer' names no ServiceAccount")]


def test_without_identity_an_app_uses_the_runs_own_unless_identity_is_required():
    loaded = projects(TEAM_A)
    assert evaluate(app(), [], loaded).identity is None and evaluate(app(), [], loaded).allowed
    verdict = evaluate(app(), [], loaded, require_identity=True)
    assert refusals(verdict) == [("require_identity", "application 'shop' has no identity, and gitops_require_identity "
                                  "is set: give it a service_account, or project 'team-a' a service_accounts rule "
                                  "for namespace 'team-a'")]
    bare = evaluate(app(project=None), [], {}, require_identity=True)
    assert refusals(bare)[0][1].endswith("give it a service_account")


def test_the_error_lists_every_refusal_and_carries_them_as_data():
    bundle = [entry("ConfigMap", "c", "team-b"),
              entry("ClusterRole", "r", api_version="rbac.authorization.k8s.io/v1", source="app/rbac.yaml")]
    verdict = evaluate(app(repo="https://git.example.com/team-b/x"), bundle, projects(TEAM_A), require_identity=True)
    assert rules(verdict) == ["source_repos", "destinations", "cluster_resources", "require_identity"]
    err = verdict.error()
    assert str(err).splitlines()[0] == "application 'shop' is refused by project 'team-a'; nothing of it is applied:"
    assert len(str(err).splitlines()) == 5
    assert err.details["refusals"] == verdict.refusals and err.details["app"] == "shop"
    assert evaluate(app(), [], projects(TEAM_A)).error() is None
