"""An application's chart (the ``helm`` key): validation, and credentials kept out of what is shown."""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.apps.gitops_apps import order_apps
from ansible_collections.gitops.k8s.plugins.module_utils.sources.charts import check_spec
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError

CHART = {"repo": "oci://registry.example.com/charts", "chart": "shop", "version": "^2.1", "username": "robot",
         "password": "s3cr3t-registry", "repositories": [{"url": "https://charts.example.com", "password": "dep-pw"}]}


def test_a_chart_app_needs_no_repo_and_its_passwords_never_leave_plan():
    result = order_apps([{"name": "shop", "helm": CHART, "namespace": "shop"}])
    [shown] = result["apps"]
    assert shown["repo"] is None and shown["helm"]["chart"] == "shop" and shown["helm"]["version"] == "^2.1"
    assert "s3cr3t-registry" not in repr(result) and "dep-pw" not in repr(result)


def test_an_app_without_repo_or_chart_is_refused():
    with pytest.raises(GitOpsError, match="application 'shop': repo is required .or helm.repo"):
        order_apps([{"name": "shop", "helm": {"chart": "shop"}}])


@pytest.mark.parametrize("spec, message", [
    (dict(CHART, charts="x"), "unknown key charts"),
    ({"repo": "oci://r/charts"}, "chart is required with repo oci://r/charts"),
    ({"repo": "git@github.com:x/y.git", "chart": "c"}, "must be an oci://, https:// or http:// URL"),
    ({"repo": "oci://r/charts", "chart": "sub/c"}, "must be a name; put its path in repo"),
    ({"repositories": [{"username": "u"}]}, r"repositories\[0\] must be a mapping with a url"),
    ({"repositories": [{"url": "https://c", "token": "t"}]}, r"repositories\[0\]: unknown key token"),
])
def test_bad_chart_specs_say_what_is_wrong(spec, message):
    with pytest.raises(GitOpsError, match=message):
        check_spec(spec)
