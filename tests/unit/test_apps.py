"""Applications as data: validation errors a user can act on, and dependency ordering."""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.apps.gitops_apps import dependency_levels, normalize_app, order_apps
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError


def app(name, **extra):
    return dict({"name": name, "repo": "https://git.example.com/deploy.git"}, **extra)


def test_defaults_are_filled_in():
    result = normalize_app(app("web"), 0)
    assert result["path"] == "."
    assert result["prune"] is False and result["self_heal"] is False and result["suspend"] is False
    assert result["wait"] == {"timeout": 300, "enabled": True, "fail_fast": True}
    assert result["depends_on"] == [] and result["render"] == {}


def test_wait_timeout_is_kept_and_other_wait_defaults_added():
    assert normalize_app(app("web", wait={"timeout": 30}), 0)["wait"]["timeout"] == 30


def test_unknown_key_is_named_with_the_app():
    with pytest.raises(GitOpsError) as err:
        order_apps([app("web", self_heeal=True)])
    assert "application 'web'" in str(err.value)
    assert "self_heeal" in str(err.value)
    assert err.value.details["unknown_keys"] == ["self_heeal"]


def test_unknown_wait_key_is_refused():
    with pytest.raises(GitOpsError, match="unknown key in wait: timout"):
        order_apps([app("web", wait={"timout": 5})])


def test_missing_repo_is_refused():
    with pytest.raises(GitOpsError, match="application 'web': repo is required"):
        order_apps([{"name": "web"}])


def test_wrong_type_is_refused():
    with pytest.raises(GitOpsError, match="prune must be a boolean"):
        order_apps([app("web", prune="yes")])
    with pytest.raises(GitOpsError, match=r"wait.timeout must be a number, not True"):
        order_apps([app("web", wait={"timeout": True})])


def test_name_must_be_a_kubernetes_style_name():
    with pytest.raises(GitOpsError, match="lowercase"):
        order_apps([app("Web_App")])


def test_duplicate_names_are_refused():
    with pytest.raises(GitOpsError, match="'web' is defined more than once"):
        order_apps([app("web"), app("db"), app("web")])


def test_missing_dependency_is_named():
    with pytest.raises(GitOpsError, match="'web' depends on 'db', which is not defined"):
        order_apps([app("web", depends_on=["db"])])


def test_dependency_cycle_is_shown_as_a_path():
    with pytest.raises(GitOpsError) as err:
        order_apps([app("a", depends_on=["b"]), app("b", depends_on=["c"]), app("c", depends_on=["a"]), app("d")])
    assert "a -> b -> c -> a" in str(err.value)
    assert err.value.details["cycle"] == ["a", "b", "c", "a"]


def test_self_dependency_is_a_cycle():
    with pytest.raises(GitOpsError, match="web -> web"):
        order_apps([app("web", depends_on=["web"])])


def test_levels_follow_dependencies_and_keep_input_order():
    apps = [normalize_app(a, i) for i, a in enumerate([
        app("frontend", depends_on=["api"]),
        app("api", depends_on=["db", "cache"]),
        app("db"),
        app("cache"),
        app("docs"),
    ])]
    assert dependency_levels(apps) == [["db", "cache", "docs"], ["api"], ["frontend"]]


def test_selection_keeps_dependency_order_and_drops_others():
    result = order_apps([app("web", depends_on=["db"]), app("db"), app("docs")], select="web,db")
    assert result["levels"] == [["db"], ["web"]]
    assert result["selected"] == ["web", "db"]


def test_selection_of_an_unknown_app_is_refused():
    with pytest.raises(GitOpsError, match="no application named 'wbe'"):
        order_apps([app("web")], select=["wbe"])


def test_suspended_apps_are_reported_not_run():
    result = order_apps([app("web", suspend=True), app("db")])
    assert result["suspended"] == ["web"]
    assert result["levels"] == [["db"]]


def test_credential_values_never_leave_the_plan():
    result = order_apps([app("web", credentials={"username": "deploy", "password": "s3cr3t-token"})])
    assert "s3cr3t-token" not in repr(result)
    assert result["apps"][0]["credentials"] == ["password", "username"]


def test_unknown_credential_key_is_refused():
    with pytest.raises(GitOpsError, match="unknown key in credentials: token"):
        order_apps([app("web", credentials={"token": "x"})])


def test_empty_list_is_a_valid_plan():
    assert order_apps([]) == {"apps": [], "levels": [], "selected": [], "suspended": [], "absent": []}


def test_absent_apps_are_not_synced_and_a_bad_state_is_refused():
    result = order_apps([{"name": "web", "repo": "r"}, {"name": "old", "repo": "r", "state": "absent"}])
    assert result["absent"] == ["old"] and result["levels"] == [["web"]]
    with pytest.raises(GitOpsError, match="application 'old': state must be present or absent, not 'gone'"):
        order_apps([{"name": "old", "repo": "r", "state": "gone"}])


def test_namespace_and_immutable_field_options_of_an_app():
    result = normalize_app(app("web"), 0)
    assert result["create_namespace"] is True and result["replace_on_immutable"] is False
    assert result["managed_namespace_metadata"] == {}
    meta = {"labels": {"team": "a"}, "annotations": {"x/y": "z"}}
    assert normalize_app(app("web", managed_namespace_metadata=meta), 0)["managed_namespace_metadata"] == meta
    with pytest.raises(GitOpsError, match="unknown key in managed_namespace_metadata: label"):
        order_apps([app("web", managed_namespace_metadata={"label": {}})])
    with pytest.raises(GitOpsError, match="replace_on_immutable must be a boolean"):
        order_apps([app("web", replace_on_immutable="yes")])


def test_an_ignore_differences_rule_that_names_no_field_is_refused_before_anything_runs():
    with pytest.raises(GitOpsError, match=r"application 'web': ignore_differences\[1\] \(ConfigMap\) names no field"):
        order_apps([app("web", ignore_differences=[{"kind": "Service", "jq_path_expressions": [".spec.clusterIP"]},
                                                   {"kind": "ConfigMap"}])])
    with pytest.raises(GitOpsError, match=r"application 'web': ignore_differences\[0\] must be a mapping with a kind"):
        order_apps([app("web", ignore_differences=[{"json_pointers": ["/x"]}])])
    rule = {"kind": "Deployment", "group": "apps", "managed_fields_managers": ["hpa"]}
    assert normalize_app(app("web", ignore_differences=[rule]), 0)["ignore_differences"] == [rule]
