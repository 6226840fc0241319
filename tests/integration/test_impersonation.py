"""An application's identity: a client derived with ``Cluster.as_identity`` acts as a ServiceAccount.

The local control plane authorizes with RBAC (tests/cluster/localcluster.py: --authorization-mode=RBAC).
Tenant A is a ServiceAccount with a Role on its own namespace only; B is another team's namespace.
"""

import json
import os
import sys
import time

import pytest

from localcluster import wait_for
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import ApiError, Cluster

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import audit  # noqa: E402

MANAGER = "gitops-test"
RBAC = "rbac.authorization.k8s.io/v1"


def config_map(namespace, name="settings", greeting="hello"):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"greeting": greeting}}


def grant(cluster, namespace, subject, rules, name):
    """A Role of ``rules`` in ``namespace`` bound to the ServiceAccount ``subject`` ("ns/name")."""
    sa_ns, sa_name = subject.split("/")
    cluster.apply({"apiVersion": RBAC, "kind": "Role", "metadata": {"name": name, "namespace": namespace},
                   "rules": rules}, MANAGER)
    cluster.apply({"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": name, "namespace": namespace},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                   "subjects": [{"kind": "ServiceAccount", "namespace": sa_ns, "name": sa_name}]}, MANAGER)


def service_account(cluster, namespace, name):
    cluster.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}},
                  MANAGER)
    return "system:serviceaccount:%s:%s" % (namespace, name)


@pytest.fixture
def tenants(cluster, namespace):
    """(A, B, A's identity): A's ServiceAccount ``deployer`` may do anything to ConfigMaps in A only."""
    other = namespace + "-b"
    cluster.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": other}})
    user = service_account(cluster, namespace, "deployer")
    grant(cluster, namespace, namespace + "/deployer",
          [{"apiGroups": [""], "resources": ["configmaps"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}], "deployer")
    try:
        yield namespace, other, user
    finally:
        cluster.delete({"apiVersion": "v1", "kind": "Namespace", "name": other})


def refused(call):
    with pytest.raises(ApiError) as caught:
        call()
    assert caught.value.status == 403
    return caught.value


def test_a_tenant_applies_in_its_namespace_and_is_refused_in_another_with_verb_resource_namespace_and_identity(
        cluster, tenants):
    mine, theirs, user = tenants
    tenant = cluster.as_identity(user)
    applied = tenant.apply(config_map(mine), MANAGER)
    assert applied["metadata"]["namespace"] == mine
    assert cluster.get({"apiVersion": "v1", "kind": "ConfigMap", "namespace": mine, "name": "settings"})

    for dry_run in (True, False):  # the validation dry-run is refused as the write is
        err = refused(lambda: tenant.apply(config_map(theirs), MANAGER, dry_run=dry_run))
        assert str(err) == ('ConfigMap %s/settings: %s may not patch configmaps "settings" in namespace %s '
                            '(403 Forbidden)' % (theirs, user, theirs))
        assert err.denied == {"user": user, "identity": user, "verb": "patch", "group": "", "resource": "configmaps",
                              "namespace": theirs, "name": "settings", "why": None}
        assert err.details["denied"] == err.denied and "is forbidden" in err.details["server_message"]
    assert cluster.get({"apiVersion": "v1", "kind": "ConfigMap", "namespace": theirs, "name": "settings"}) is None
    # the run's own identity may, which is what the tenant's client is not
    cluster.apply(config_map(theirs, greeting="theirs"), MANAGER)


def test_every_verb_a_tenant_lacks_is_named(cluster, tenants):
    mine, theirs, user = tenants
    tenant = cluster.as_identity(user)
    cluster.apply(config_map(theirs, greeting="theirs"), MANAGER)
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "namespace": theirs, "name": "settings"}
    configmaps = cluster.resource("v1", "ConfigMap")

    assert str(refused(lambda: tenant.get(ref))).startswith(
        'ConfigMap %s/settings: %s may not get configmaps "settings" in namespace %s' % (theirs, user, theirs))
    assert str(refused(lambda: tenant.delete(ref))).startswith(
        'ConfigMap %s/settings: %s may not delete configmaps "settings" in namespace %s' % (theirs, user, theirs))
    assert cluster.get(ref)["data"] == {"greeting": "theirs"}  # a prune as A cannot remove B's object
    assert str(refused(lambda: tenant.list(configmaps, theirs))).startswith(
        "list configmaps: %s may not list configmaps in namespace %s" % (user, theirs))
    assert str(refused(lambda: next(tenant.watch(configmaps, theirs, timeout_seconds=2)))).startswith(
        "watch configmaps: %s may not watch configmaps in namespace %s" % (user, theirs))
    binding = {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": mine + "-admin"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"kind": "ServiceAccount", "namespace": mine, "name": "deployer"}]}
    assert str(refused(lambda: tenant.apply(binding, MANAGER))) == (
        'ClusterRoleBinding %s-admin: %s may not patch clusterrolebindings.rbac.authorization.k8s.io "%s-admin" at '
        'cluster scope (403 Forbidden)' % (mine, user, mine))

    # what A's Role gives, A's client does: list and watch in its own namespace
    tenant.apply(config_map(mine), MANAGER)
    assert "settings" in [cm["metadata"]["name"] for cm in tenant.list(configmaps, mine)[0]]
    seen = [event["object"]["metadata"]["name"] for event in tenant.watch(configmaps, mine, timeout_seconds=1)
            if event["type"] == "ADDED"]
    assert "settings" in seen


def test_the_server_sees_the_service_account_with_its_groups(cluster, tenants):
    mine, _theirs, user = tenants
    review = cluster.as_identity(user).request(
        "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    info = review["status"]["userInfo"]
    assert info["username"] == user
    assert sorted(info["groups"]) == sorted(["system:serviceaccounts", "system:serviceaccounts:" + mine,
                                             "system:authenticated"])
    own = cluster.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                          body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert own["status"]["userInfo"]["username"] != user  # the run's client is left as it was


def test_an_identitys_requests_count_in_the_runs_totals_and_discovery_stays_with_the_run(cluster, tenants):
    mine, _theirs, user = tenants
    tenant = cluster.as_identity(user)
    cluster.apply(config_map(mine), MANAGER)
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "namespace": mine, "name": "settings"}
    tenant.forget_discovery()
    started = time.time()
    before = cluster.requests_made
    tenant.get(ref)  # discovery (of the run), then the read (of the tenant)
    discovery = cluster.requests_made - before - 1
    assert discovery >= 2 and tenant.requests_made == cluster.requests_made
    before = cluster.requests_made
    tenant.get(ref)
    cluster.get(ref)
    assert cluster.requests_made - before == 2  # the discovery the tenant made is the run's cache

    audit.flush()
    ours = [e for e in audit.requests(since=started, user_agent="gitops.k8s")
            if (e.get("impersonatedUser") or {}).get("username") == user]
    assert [(e["verb"], e["objectRef"]["namespace"], e["objectRef"]["name"]) for e in ours] == [
        ("get", mine, "settings"), ("get", mine, "settings")]
    assert not [e for e in ours if e["requestURI"] in ("/api", "/apis")]


def test_a_403_that_is_not_authorization_keeps_the_servers_words(cluster, tenants):
    mine, _theirs, user = tenants
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "namespace": mine, "name": "none"}
    cluster.apply({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "none", "namespace": mine},
                   "spec": {"hard": {"count/configmaps": "0"}}}, MANAGER)
    # admission enforces a quota once the controller has counted its use
    wait_for("the quota's use counted",
             lambda: "count/configmaps" in (cluster.get(quota).get("status") or {}).get("used", {}))
    err = refused(lambda: cluster.as_identity(user).apply(config_map(mine, name="over"), MANAGER))
    assert err.denied is None and "exceeded quota" in str(err) and "may not" not in str(err)
    assert str(err) == "ConfigMap %s/over: %s (403 Forbidden)" % (mine, err.server_message)


def test_a_run_identity_may_act_only_as_the_service_accounts_it_may_impersonate(cluster, kubeconfig, tenants):
    """The least-privilege run: ``impersonate`` on the listed ServiceAccounts, nothing else."""
    mine, theirs, user = tenants
    runner = service_account(cluster, mine, "runner")
    grant(cluster, mine, mine + "/runner",
          [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"], "resourceNames": ["deployer"]}],
          "runner")
    stranger = service_account(cluster, theirs, "deployer")
    token = cluster.request("POST", "/api/v1/namespaces/%s/serviceaccounts/runner/token" % mine,
                            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                  "spec": {"expirationSeconds": 600}})["status"]["token"]
    with open(kubeconfig, encoding="utf-8") as handle:
        ca_cert = json.load(handle)["clusters"][0]["cluster"]["certificate-authority"]
    run = Cluster.from_params({"host": cluster.host, "api_key": token, "ca_cert": ca_cert})

    run.as_identity(user).apply(config_map(mine), MANAGER)
    assert str(refused(lambda: run.apply(config_map(mine, name="own"), MANAGER))).startswith(
        "ConfigMap %s/own: the run's own identity (user %s) may not patch configmaps" % (mine, runner))
    err = refused(lambda: run.as_identity(stranger).apply(config_map(theirs), MANAGER))
    assert str(err) == ('ConfigMap %s/settings: the run\'s own identity (user %s) may not impersonate serviceaccounts '
                        '"deployer" in namespace %s (403 Forbidden)' % (theirs, runner, theirs))
    assert cluster.get({"apiVersion": "v1", "kind": "ConfigMap", "namespace": theirs, "name": "settings"}) is None


def test_an_identity_is_a_user_name(cluster):
    for wrong in ("", "  ", None):
        with pytest.raises(Exception, match="an identity to act as is a user name"):
            cluster.as_identity(wrong)
