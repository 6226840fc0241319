"""Pure logic of the diff: normalisation, ignore rules, the fast-path decision, prune opt-outs."""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.sync.compare import (in_sync_with_record, managed_fingerprint, normalize,
                                                                              prune_disabled, unified)
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.sync.ignore import check_ignore_rules, parse_pointer


def deployment(replicas=3, **meta):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": dict({"name": "web", "namespace": "prod"}, **meta),
        "spec": {"replicas": replicas, "template": {"metadata": {"annotations": {"a/b": "1"}}}},
        "status": {"readyReplicas": 1},
    }


def test_server_owned_fields_are_dropped():
    live = deployment(resourceVersion="12", uid="u", generation=4, creationTimestamp="t", managedFields=[{}],
                      annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"})
    assert normalize(live) == normalize(deployment())
    assert "status" not in normalize(live) and "annotations" not in normalize(live)["metadata"]
    assert live["status"] == {"readyReplicas": 1}, "normalize must not modify its input"


def test_ignore_rules_apply_by_group_kind_name_and_namespace():
    rules = check_ignore_rules([{"group": "apps", "kind": "Deployment", "json_pointers": ["/spec/replicas"]}])
    assert normalize(deployment(1), rules) == normalize(deployment(5), rules)
    other_ns = [{"group": "apps", "kind": "Deployment", "namespace": "dev", "json_pointers": ["/spec/replicas"]}]
    assert normalize(deployment(1), other_ns) != normalize(deployment(5), other_ns)
    wrong_group = [{"group": "", "kind": "Deployment", "json_pointers": ["/spec/replicas"]}]
    assert normalize(deployment(1), wrong_group) != normalize(deployment(5), wrong_group)


def test_json_pointer_escapes_and_list_indexes():
    assert parse_pointer("/metadata/annotations/a~1b") == ["metadata", "annotations", "a/b"]
    assert parse_pointer("/x/m~0n") == ["x", "m~n"]
    rules = [{"kind": "Deployment", "group": "apps", "json_pointers": ["/spec/template/metadata/annotations/a~1b"]}]
    assert normalize(deployment(), rules)["spec"]["template"]["metadata"]["annotations"] == {}
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"image": "a"}, {"image": "b"}]}}
    out = normalize(obj, [{"kind": "Pod", "json_pointers": ["/spec/containers/0/image", "/spec/containers/9/image", "/nope/x"]}])
    assert out["spec"]["containers"] == [{}, {"image": "b"}]


def test_bad_rules_fail_before_any_request():
    with pytest.raises(GitOpsError, match="not a JSON pointer"):
        check_ignore_rules([{"kind": "Deployment", "json_pointers": ["spec/replicas"]}])
    with pytest.raises(GitOpsError, match="needs a kind"):
        check_ignore_rules([{"json_pointers": ["/spec"]}])


def managed(manager, fields, operation="Apply"):
    return {"manager": manager, "operation": operation, "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
            "fieldsV1": fields, "time": "2026-01-01T00:00:00Z"}


def test_fast_path_needs_same_digest_and_same_version_or_same_owned_fields():
    live = deployment(resourceVersion="10", managedFields=[
        managed("gitops.k8s", {"f:spec": {"f:replicas": {}}}),
        managed("kube-controller-manager", {"f:status": {}}, "Update"),
    ])
    fingerprint = managed_fingerprint(live, "gitops.k8s")
    record = {"digest": "d1", "resourceVersion": "10", "managed": fingerprint}
    assert in_sync_with_record(record, "d1", live, "gitops.k8s")
    assert not in_sync_with_record(record, "d2", live, "gitops.k8s"), "a new desired state always needs a dry-run"
    assert not in_sync_with_record(None, "d1", live, "gitops.k8s")

    # a controller wrote status: new resourceVersion, our field set unchanged -> still in sync
    live["metadata"]["resourceVersion"] = "11"
    live["metadata"]["managedFields"][1]["time"] = "2026-01-02T00:00:00Z"
    assert in_sync_with_record(record, "d1", live, "gitops.k8s")

    # someone else took spec.replicas from us: our field set changed -> dry-run needed
    live["metadata"]["managedFields"][0]["fieldsV1"] = {"f:spec": {}}
    assert not in_sync_with_record(record, "d1", live, "gitops.k8s")
    assert managed_fingerprint(live, "other") is None


def test_prune_can_be_disabled_by_our_annotation_or_argo_cds():
    assert prune_disabled({"metadata": {"annotations": {"gitops.k8s/prune": "disabled"}}})
    assert prune_disabled({"metadata": {"annotations": {"argocd.argoproj.io/sync-options": "ServerSideApply=true, Prune=false"}}})
    assert not prune_disabled({"metadata": {"annotations": {"argocd.argoproj.io/sync-options": "Prune=true"}}})
    assert not prune_disabled({"metadata": {}})


def test_unified_diff_names_the_object_and_shows_the_change():
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "prod", "name": "web"}
    text = unified(normalize(deployment(1)), normalize(deployment(2)), ref)
    assert "--- live: Deployment prod/web" in text and "+++ desired: Deployment prod/web" in text
    assert "-  replicas: 1" in text and "+  replicas: 2" in text
    assert unified(normalize(deployment()), normalize(deployment()), ref) == ""
