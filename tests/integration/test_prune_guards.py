"""Prune guards of CustomResourceDefinitions on the real control plane.

Deleting a CRD deletes every custom resource of its kind, whoever made it. prune.py promises (and
docs/diff_and_apply.md says): a CRD that left an app's bundle is deleted only when it opts in with
``gitops.k8s/prune: allow`` and no other app's record holds objects of its kind; a refusal is
returned in ``prune_refused`` with the reason, the CRD stays, and stays recorded.
"""

import uuid

import pytest
from localcluster import wait_for

from ansible_collections.gitops.k8s.plugins.module_utils.sync.apply import Options, apply
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import INVENTORY_NAMESPACE, read_record

from test_diff_apply import app_name, configmap, get, make_bundle, names

CRD_API = "apiextensions.k8s.io/v1"
ALLOW = {"gitops.k8s/prune": "allow"}


def crd(group, kind, **annotations):
    plural = kind.lower() + "s"
    meta = {"name": "%s.%s" % (plural, group)}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": CRD_API, "kind": "CustomResourceDefinition", "metadata": meta,
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                         "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}


def custom(group, kind, namespace, name):
    return {"apiVersion": "%s/v1" % group, "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "spec": {"size": 1}}


def established(cluster, name):
    live = get(cluster, CRD_API, "CustomResourceDefinition", None, name) or {}
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (live.get("status") or {}).get("conditions") or ())


@pytest.fixture
def scratch(cluster):
    """Apps (their records and leases) and CRDs (with their custom resources) removed after the test."""
    made = {"apps": [], "crds": []}
    yield made
    for app in made["apps"]:
        for kind, api in (("ConfigMap", "v1"), ("Lease", "coordination.k8s.io/v1")):
            cluster.delete({"apiVersion": api, "kind": kind, "namespace": INVENTORY_NAMESPACE, "name": "gitops-app-" + app})
    for name in made["crds"]:
        cluster.delete({"apiVersion": CRD_API, "kind": "CustomResourceDefinition", "name": name})


def test_a_crd_whose_custom_resources_another_app_records_or_that_did_not_opt_in_is_never_pruned(
        cluster, namespace, workdir, scratch):
    owner, other = app_name(), app_name()
    scratch["apps"].extend([owner, other])
    group = "%s.prune.gitops.test" % uuid.uuid4().hex[:8]
    shared, unannotated, free = crd(group, "Widget", **ALLOW), crd(group, "Gadget"), crd(group, "Gizmo", **ALLOW)
    crd_names = [c["metadata"]["name"] for c in (shared, unannotated, free)]
    scratch["crds"].extend(crd_names)

    first = make_bundle(workdir, [shared, unannotated, free, configmap(namespace, "settings")])
    apply(cluster, first, owner, Options(revision=first.revision))
    for name in crd_names:
        wait_for("CRD %s to be Established" % name, lambda name=name: established(cluster, name), 60)
    # another app records a Widget; someone creates a Gadget by hand (recorded by no app)
    theirs = make_bundle(workdir, [custom(group, "Widget", namespace, "theirs")])
    apply(cluster, theirs, other, Options(revision=theirs.revision))
    cluster.request("POST", "/apis/%s/v1/namespaces/%s/gadgets" % (group, namespace),
                    body=custom(group, "Gadget", namespace, "by-hand"))

    # every CRD leaves the owner's bundle
    rest = make_bundle(workdir, [configmap(namespace, "settings")])
    result = apply(cluster, rest, owner, Options(revision=rest.revision, prune=True))

    refused = {r["name"]: r["message"] for r in result["prune_refused"]}
    assert set(refused) == {"widgets.%s" % group, "gadgets.%s" % group}, result["prune_refused"]
    assert refused["widgets.%s" % group] == "it holds Widget %s/theirs of app %s" % (namespace, other)
    assert "opts in with the annotation gitops.k8s/prune: allow" in refused["gadgets.%s" % group]
    assert names(result["pruned"]) == ["gizmos.%s" % group], "the guard lets an opted-in CRD nobody else uses go"
    for name in ("widgets.%s" % group, "gadgets.%s" % group):
        live = get(cluster, CRD_API, "CustomResourceDefinition", None, name)
        assert live is not None and not live["metadata"].get("deletionTimestamp"), name
    assert get(cluster, "%s/v1" % group, "Widget", namespace, "theirs") is not None, "the other app's object lives"
    assert get(cluster, "%s/v1" % group, "Gadget", namespace, "by-hand") is not None
    wait_for("the pruned CRD to be gone",
             lambda: get(cluster, CRD_API, "CustomResourceDefinition", None, "gizmos.%s" % group) is None, 60)
    recorded = names(read_record(cluster, owner)["objects"])
    assert recorded == sorted(["settings", "widgets.%s" % group, "gadgets.%s" % group]), "refused prunes stay recorded"
    assert read_record(cluster, owner)["result"] == "Succeeded", "a refusal does not fail the sync"
