"""apply with two clients: every request about the app's objects through the app's client (here
one acting as a ServiceAccount, ``Cluster.as_identity``), records and Leases through the run's own
(``records_client``).

The tenant may write ConfigMaps in its namespace and read that namespace, nothing else: not the
inventory (the run's business), not another namespace (the app's limit).
"""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import read_record
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.sync.apply import Options, apply
from test_diff_apply import app_name, configmap, make_bundle
from test_impersonation import MANAGER, RBAC, grant, service_account


@pytest.fixture
def tenant(cluster, namespace):
    """The client of ServiceAccount ``deployer``: ConfigMaps of ``namespace``, and GET of it."""
    user = service_account(cluster, namespace, "deployer")
    grant(cluster, namespace, namespace + "/deployer",
          [{"apiGroups": [""], "resources": ["configmaps"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}], "deployer")
    role = {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": namespace + "-ns"},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [namespace],
                       "verbs": ["get"]}]}
    binding = {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": namespace + "-ns"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": namespace + "-ns"},
               "subjects": [{"kind": "ServiceAccount", "namespace": namespace, "name": "deployer"}]}
    for obj in (role, binding):
        cluster.apply(obj, MANAGER)
    try:
        yield cluster.as_identity(user), user
    finally:
        for obj in (binding, role):
            cluster.delete({"apiVersion": RBAC, "kind": obj["kind"], "namespace": "", "name": obj["metadata"]["name"]})


def cm_ref(namespace, name):
    return {"apiVersion": "v1", "kind": "ConfigMap", "namespace": namespace, "name": name}


def test_records_and_leases_through_the_run_s_client_objects_through_the_app_s(cluster, namespace, workdir, tenant):
    client, user = tenant
    app = app_name()
    bundle = make_bundle(workdir, [configmap(namespace, "settings", greeting="hello")])

    # the tenant's client alone may not keep the app's record: refused before any write
    with pytest.raises(GitOpsError) as alone:
        apply(client, bundle, app, Options(revision=bundle.revision))
    assert user in str(alone.value) and "secrets" in str(alone.value), str(alone.value)
    assert cluster.get(cm_ref(namespace, "settings")) is None

    applied = apply(client, bundle, app, Options(revision=bundle.revision), records_client=cluster)
    assert applied["created"] == [cm_ref(namespace, "settings")]
    record = read_record(cluster, app)
    assert (record["result"], [o["name"] for o in record["objects"]]) == ("Succeeded", ["settings"])

    # the app's objects go as the tenant: a namespace it may not write is refused, nothing written
    outside = make_bundle(workdir, [configmap(namespace, "settings", greeting="hello"),
                                    configmap("default", "t-" + app, greeting="not yours")])
    with pytest.raises(GitOpsError) as refused:
        apply(client, outside, app, Options(revision=outside.revision), records_client=cluster)
    assert user in str(refused.value) and "default" in str(refused.value), str(refused.value)
    assert cluster.get(cm_ref("default", "t-" + app)) is None
    assert read_record(cluster, app)["revision"] == bundle.revision

    # and so does prune, within what the tenant may do
    smaller = make_bundle(workdir, [configmap(namespace, "other", greeting="hi")])
    pruned = apply(client, smaller, app, Options(revision=smaller.revision, prune=True), records_client=cluster)
    assert pruned["pruned"] == [cm_ref(namespace, "settings")] and not pruned["prune_failed"], pruned
    assert cluster.get(cm_ref(namespace, "settings")) is None
    assert [o["name"] for o in read_record(cluster, app)["objects"]] == ["other"]
