"""Pure logic of field ownership: ignore rules (pointers, jq, managers), what apply sends, takeover
from client-side apply, sync options, immutable-field errors and how refusals are worded."""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import ApiError
from ansible_collections.gitops.k8s.plugins.module_utils.sync.compare import rejected_error
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.sync.ignore import (check_ignore_rules, delete_paths, field_paths,
                                                                             sendable, strip)
from ansible_collections.gitops.k8s.plugins.module_utils.sync.ownership import (immutable_fields, immutable_message,
                                                                                may_recreate, migration_patch, sync_options,
                                                                                takeover_managers)


def deployment(replicas=3, images=("nginx", "envoy"), managed=()):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod", "resourceVersion": "7", "managedFields": list(managed)},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [
            {"name": n, "image": i} for n, i in zip(("app", "proxy"), images)]}}},
    }


def entry(manager, fields, operation="Apply", subresource=None):
    out = {"manager": manager, "operation": operation, "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
           "fieldsV1": fields}
    if subresource:
        out["subresource"] = subresource
    return out


PROXY_IMAGE = {"f:spec": {"f:template": {"f:spec": {"f:containers": {
    'k:{"name":"proxy"}': {"f:image": {}}}}}}}


def test_field_sets_locate_keys_list_elements_and_whole_elements():
    doc = deployment()
    assert field_paths(PROXY_IMAGE, doc) == [("spec", "template", "spec", "containers", 1, "image")]
    whole = {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"proxy"}': {".": {}, "f:name": {}}}}}}}
    assert field_paths(whole, doc)[0] == ("spec", "template", "spec", "containers", 1)
    assert field_paths({"f:spec": {"f:paused": {}}}, doc) == [], "absent fields select nothing"


def test_deleting_paths_keeps_list_indexes_right():
    doc = {"a": [{"x": 1}, {"x": 2}, {"x": 3}], "b": 1}
    delete_paths(doc, [("a", 0), ("a", 2), ("a", 0, "x"), ("b",)])
    assert doc == {"a": [{"x": 2}]}


def test_jq_path_expressions_and_managers_are_stripped_from_both_sides():
    rules = check_ignore_rules([
        {"group": "apps", "kind": "Deployment",
         "jq_path_expressions": ['.spec.template.spec.containers[] | select(.name == "proxy") | .image']},
    ])
    assert strip(deployment(images=("nginx", "a")), rules) == strip(deployment(images=("nginx", "b")), rules)
    assert strip(deployment(images=("x", "a")), rules) != strip(deployment(images=("y", "a")), rules)
    missing = check_ignore_rules([{"group": "apps", "kind": "Deployment", "jq_path_expressions": [".spec.nope[].x"]}])
    assert strip(deployment(), missing) == deployment(), "an expression failing on an object selects nothing"
    absent = check_ignore_rules([{"group": "apps", "kind": "Deployment", "jq_path_expressions": [".spec.paused"]}])
    assert strip(deployment(), absent) == deployment(), "the path of a field the object lacks selects nothing"

    by_manager = check_ignore_rules([{"group": "apps", "kind": "Deployment", "managed_fields_managers": ["injector"]}])
    live = deployment(images=("nginx", "envoy:2"), managed=[entry("injector", PROXY_IMAGE, "Update")])
    assert strip(live, by_manager)["spec"]["template"]["spec"]["containers"][1] == {"name": "proxy"}


def test_bad_rules_fail_before_any_request():
    with pytest.raises(GitOpsError, match="is not a jq path expression"):
        check_ignore_rules([{"kind": "Deployment", "jq_path_expressions": [".spec | select("]}])
    with pytest.raises(GitOpsError, match="names no field"):
        check_ignore_rules([{"kind": "Deployment"}])


def test_apply_leaves_out_ignored_fields_it_does_not_own_and_keeps_the_value_of_those_it_does():
    rules = check_ignore_rules([{"group": "apps", "kind": "Deployment", "json_pointers": ["/spec/replicas"]}])
    desired = deployment(replicas=1)
    hpa_owns = deployment(replicas=4, managed=[entry("gitops.k8s", {"f:spec": {"f:template": {}}}),
                                               entry("kube-controller-manager", {"f:spec": {"f:replicas": {}}},
                                                     "Update", "scale")])
    assert "replicas" not in sendable(desired, rules, hpa_owns, "gitops.k8s")["spec"]
    we_own = deployment(replicas=4, managed=[entry("gitops.k8s", {"f:spec": {"f:replicas": {}}})])
    assert sendable(desired, rules, we_own, "gitops.k8s")["spec"]["replicas"] == 4
    assert sendable(desired, rules, None, "gitops.k8s") is desired, "a create sends everything"
    assert desired["spec"]["replicas"] == 1, "the desired object is not modified"


def test_takeover_moves_client_side_fields_to_our_manager_and_drops_last_applied():
    live = deployment(managed=[
        entry("kubectl-client-side-apply", {"f:metadata": {"f:annotations": {
            "f:kubectl.kubernetes.io/last-applied-configuration": {}}}, "f:spec": {"f:replicas": {}}}, "Update"),
        entry("kube-controller-manager", {"f:status": {}}, "Update", "status"),
    ])
    live["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    assert takeover_managers(live) == ["kubectl-client-side-apply"]
    patch = migration_patch(live, "gitops.k8s")
    assert patch[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
    managers = {e["manager"]: e for e in patch[1]["value"]}
    assert set(managers) == {"gitops.k8s", "kube-controller-manager"}
    assert managers["gitops.k8s"]["operation"] == "Apply"
    assert managers["gitops.k8s"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert patch[2] == {"op": "remove", "path": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration"}
    assert takeover_managers(deployment(managed=[entry("gitops.k8s", {})])) == []


def test_sync_options_come_from_the_first_annotation_present():
    def obj(**annotations):
        return {"metadata": {"annotations": annotations}}
    both = sync_options(obj(**{"gitops.k8s/sync-options": "Replace=true, Force=true"}))
    assert both == {"Replace": "true", "Force": "true"}
    assert sync_options(obj(**{"harnesscd.harnessproj.io/sync-options": "Force=true"})) == {"Force": "true"}
    assert sync_options(obj(**{"gitops.k8s/sync-options": "Prune=false",
                               "argocd.argoproj.io/sync-options": "Force=true"})) == {"Prune": "false"}
    assert sync_options({"metadata": {}}) == {}


def test_an_immutable_field_refusal_names_the_field_and_the_fix():
    err = ApiError(422, "Invalid", 'Job.batch "m" is invalid: spec.template: Invalid value: ...: field is immutable',
                   causes=[{"field": "spec.template", "message": "Invalid value: ...: field is immutable"}])
    assert immutable_fields(err) == ["spec.template"]
    text = immutable_message(["spec.template"])
    assert "spec.template" in text and "Force=true" in text and "replace_on_immutable" in text
    assert immutable_fields(ApiError(422, "Invalid", "spec.replicas: Invalid value: -1: must be >= 0",
                                     causes=[{"field": "spec.replicas", "message": "must be >= 0"}])) == []
    assert immutable_fields(ApiError(409, "Conflict", "field is immutable")) == []


def test_transport_errors_are_not_called_rejections():
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "a", "name": "c"}
    refused = dict(ref, source="c.yaml", message="bad")
    unreached = dict(ref, name="d", source="d.yaml", message="cannot reach the Kubernetes API: timed out",
                     unreachable=True)
    text = str(rejected_error([unreached], "/b"))
    assert "could not reach the API server to validate 1 object(s)" in text and "rejected" not in text
    text = str(rejected_error([refused, unreached], "/b"))
    assert "the server rejected 1 object(s) and could not reach" in text and "nothing was changed" in text


def test_replace_on_immutable_never_recreates_what_holds_data_unless_the_object_says_force():
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}}
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"}}
    assert may_recreate(job, True) and not may_recreate(job, False)
    assert not may_recreate(claim, True)
    claim["metadata"]["annotations"] = {"gitops.k8s/sync-options": "Force=true"}
    assert may_recreate(claim, False)
