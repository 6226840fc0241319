"""Teams and least privilege (docs/teams-and-least-privilege.md): each application inside its
project's policy, every request made for it acting as its own ServiceAccount.

The local control plane authorizes with RBAC. Two tenants, A (the test's namespace) and B
(another namespace), each a ServiceAccount ``deployer`` with a Role on its own namespace only,
and ``get`` on that Namespace. Runs go through gitops.k8s.cluster_sync (or the playbooks), and
what a user would check is checked: the results, the cluster, the records, and the API server's
audit log (~/.cache/gitops-k8s/cluster/audit.log: who made each request, as whom).
"""

import os
import re
import subprocess
import sys
import time

import pytest
import yaml

from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import ApiError, Cluster
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import Inventory, read_record
from conftest import REPO
from test_ansible_runner import kubectl, run_job
from test_impersonation import MANAGER, RBAC, grant, service_account
from test_inventory_apps import plain, write
from test_push_reconcile import PUSH, GitRepo, Run, deployment, names

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import audit  # noqa: E402

CM = "v1"
EVERYTHING = ["get", "list", "watch", "create", "update", "patch", "delete"]
TENANT_RULES = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": EVERYTHING},
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": EVERYTHING},
                {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": EVERYTHING},
                {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list", "watch"]}]


def configmap(name, namespace=None, **data):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": CM, "kind": "ConfigMap", "metadata": meta, "data": data or {"greeting": "hello"}}


def cm_ref(namespace, name):
    return {"apiVersion": CM, "kind": "ConfigMap", "namespace": namespace, "name": name}


def see_namespace(cluster, namespace, subject, name):
    """``subject`` ("ns/name") may get Namespace ``namespace`` (what apply reads of it); returns the objects."""
    sa_ns, sa_name = subject.split("/")
    role = {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [namespace], "verbs": ["get"]}]}
    binding = {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
               "subjects": [{"kind": "ServiceAccount", "namespace": sa_ns, "name": sa_name}]}
    for obj in (role, binding):
        cluster.apply(obj, MANAGER)
    return [binding, role]


class Tenant:
    def __init__(self, namespace, user):
        self.namespace, self.user, self.account = namespace, user, namespace + "/deployer"


@pytest.fixture
def teams(cluster, namespace):
    """(A, B): tenants, each a ServiceAccount ``deployer`` allowed its own namespace only."""
    other = namespace + "-b"
    cluster.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": other}})
    made, tenants = [], []
    for ns in (namespace, other):
        tenants.append(Tenant(ns, service_account(cluster, ns, "deployer")))
        grant(cluster, ns, ns + "/deployer", TENANT_RULES, "deployer")
        made += see_namespace(cluster, ns, ns + "/deployer", ns + "-ns")
    try:
        yield tenants[0], tenants[1], made
    finally:
        for obj in made:
            cluster.delete({"apiVersion": RBAC, "kind": obj["kind"], "namespace": "", "name": obj["metadata"]["name"]})
        cluster.delete({"apiVersion": "v1", "kind": "Namespace", "name": other})


def viewer_of(cluster, tenant, theirs, made):
    """``tenant`` may read ConfigMaps of ``theirs`` (and see that Namespace), not write them."""
    grant(cluster, theirs.namespace, tenant.account,
          [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}], "viewer")
    made += see_namespace(cluster, theirs.namespace, tenant.account, theirs.namespace + "-viewer")


def project(name, *destinations, **more):
    """A project whose applications act as the ``deployer`` of their namespace."""
    return dict({"name": name, "source_repos": ["file:///**"], "destinations": list(destinations),
                 "service_accounts": [{"namespace": "*", "service_account": "deployer"}]}, **more)


def sync(ansible, kubeconfig, apps, projects=(), check=False, diff=False, **options):
    """One gitops.k8s.cluster_sync run (a push unless ``options`` say otherwise); returns (its output, {app: result})."""
    proc, result = ansible.module("gitops.k8s.cluster_sync", dict(
        {"apps": apps, "projects": list(projects), "mode": "push", "kubeconfig": kubeconfig,
         "cluster_name": "tenancy"}, **options), check=check, diff=diff)
    assert not result.get("failed"), proc.stdout + proc.stderr
    return proc.stdout, {r["app"]: r for r in result["results"]}


def audited(since, **match):
    """Our requests since ``since`` (audit log), with ``user`` (impersonated; "" for the run's own),
    ``namespace``, ``name`` (objectRef) as given."""
    audit.flush()
    found = []
    for event in audit.requests(since=since, user_agent="gitops.k8s"):
        ref = event.get("objectRef") or {}
        seen = {"user": (event.get("impersonatedUser") or {}).get("username", ""),
                "namespace": ref.get("namespace", ""), "name": ref.get("name", "")}
        if all(seen[k] == v for k, v in match.items()):
            found.append(event)
    return found


def test_an_object_in_another_teams_namespace_is_refused_by_the_project_then_by_the_api_server_as_the_app(
        ansible, kubeconfig, cluster, teams, workdir):
    a, b, made = teams
    repo = GitRepo(workdir)
    repo.commit({"a/settings.yaml": [configmap("settings")],
                 "a/intruder.yaml": [configmap("intruder", b.namespace, greeting="mine now")],
                 "b/settings.yaml": [configmap("b-settings")]}, "two teams")
    app_a, app_b = names(a.namespace, "team-a", "team-b")
    apps = [{"name": app_a, "repo": repo.url, "path": "a", "namespace": a.namespace, "project": "team-a"},
            {"name": app_b, "repo": repo.url, "path": "b", "namespace": b.namespace, "project": "team-b"}]
    team_b = project("team-b", b.namespace)

    def nothing_of_a_written():
        assert cluster.get(cm_ref(a.namespace, "settings")) is None
        assert cluster.get(cm_ref(b.namespace, "intruder")) is None
        assert read_record(cluster, app_a) is None

    started = time.time()
    _out, results = sync(ansible, kubeconfig, apps, [project("team-a", a.namespace), team_b])
    refused = results[app_a]
    assert (refused["ok"], refused["error"]["step"]) == (False, "policy"), refused
    assert ("a/intruder.yaml: ConfigMap %s/intruder: namespace %s is not among project 'team-a''s destinations (%s)"
            % (b.namespace, b.namespace, a.namespace)) in refused["error"]["msg"], refused["error"]
    assert "nothing of it is applied" in refused["error"]["msg"]
    assert not audited(started, user=a.user), "no request as A: refused before any"
    assert not audited(started, name="intruder"), "nor by the run for it"
    nothing_of_a_written()
    # the other team goes on, as its own identity
    assert results[app_b]["ok"] and results[app_b]["identity"] == b.user, results[app_b]
    assert results[app_b]["service_account"] == b.account and results[app_b]["project"] == "team-b"
    assert cluster.get(cm_ref(b.namespace, "b-settings")) is not None
    # read, validated (a dry-run), written and watched as B
    assert {"get", "patch", "watch"} <= {e["verb"] for e in audited(started, user=b.user, name="b-settings")}

    # the policy widened: the API server refuses A's identity, here its read of B's namespace
    widened = [project("team-a", a.namespace, b.namespace), team_b]
    _out, results = sync(ansible, kubeconfig, apps, widened)
    refused = results[app_a]
    assert (refused["error"]["step"], refused["identity"]) == ("read", a.user), refused
    assert refused["error"]["msg"] == ('ConfigMap %s/intruder: %s may not get configmaps "intruder" in namespace %s '
                                       '(403 Forbidden)' % (b.namespace, a.user, b.namespace))
    nothing_of_a_written()

    # A may read B's namespace: the validation dry-run of the write is refused, nothing of A written
    viewer_of(cluster, a, b, made)
    _out, results = sync(ansible, kubeconfig, apps, widened)
    refused = results[app_a]
    assert refused["error"]["step"] == "apply", refused
    assert 'ConfigMap %s/intruder (a/intruder.yaml): %s may not patch configmaps "intruder" in namespace %s' % (
        b.namespace, a.user, b.namespace) in refused["error"]["msg"], refused["error"]
    nothing_of_a_written()
    assert results[app_b]["ok"], results[app_b]


def test_a_cluster_role_binding_in_a_teams_repo_is_refused(ansible, kubeconfig, cluster, teams, workdir):
    a, _b, _made = teams
    repo = GitRepo(workdir)
    binding = {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": a.namespace + "-admin"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"kind": "ServiceAccount", "namespace": a.namespace, "name": "deployer"}]}
    repo.commit({"a/admin.yaml": [binding], "a/settings.yaml": [configmap("settings")]}, "make me admin")
    [app] = names(a.namespace, "escalate")
    spec = {"name": app, "repo": repo.url, "path": "a", "namespace": a.namespace}
    binding_ref = {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "name": a.namespace + "-admin"}

    _out, results = sync(ansible, kubeconfig, [dict(spec, project="team-a")], [project("team-a", a.namespace)])
    assert results[app]["error"]["step"] == "policy", results[app]
    assert ("a/admin.yaml: ClusterRoleBinding %s-admin: cluster-scoped ClusterRoleBinding.rbac.authorization.k8s.io "
            "is not in project 'team-a''s cluster_resources (none allowed)" % a.namespace) in results[app]["error"]["msg"]

    # without a project, the app's identity is what stops it
    _out, results = sync(ansible, kubeconfig, [dict(spec, service_account=a.account)])
    assert results[app]["error"]["step"] == "read", results[app]
    assert results[app]["error"]["msg"] == (
        'ClusterRoleBinding %s-admin: %s may not get clusterrolebindings.rbac.authorization.k8s.io "%s-admin" at '
        'cluster scope (403 Forbidden)' % (a.namespace, a.user, a.namespace))
    assert cluster.get(binding_ref) is None and cluster.get(cm_ref(a.namespace, "settings")) is None


def test_a_teams_prune_cannot_delete_another_teams_object_even_when_its_record_claims_it(
        ansible, kubeconfig, cluster, teams, workdir):
    a, b, made = teams
    theirs = cluster.apply(configmap("b-data", b.namespace, owner="team b"), MANAGER)
    repo = GitRepo(workdir)
    repo.commit({"a/settings.yaml": [configmap("settings")]}, "team a")
    [app] = names(a.namespace, "pruner")
    apps = [{"name": app, "repo": repo.url, "path": "a", "namespace": a.namespace, "project": "team-a",
             "prune": True}]
    _out, results = sync(ansible, kubeconfig, apps, [project("team-a", a.namespace)])
    assert results[app]["ok"], results[app]
    # someone edits A's record to claim B's object (the record's uid too: what a prune checks)
    claim = dict(cm_ref(b.namespace, "b-data"), uid=theirs["metadata"]["uid"])
    Inventory(cluster).update(app, lambda record: dict(record, objects=record["objects"] + [claim]))

    def b_data_stays():
        assert cluster.get(cm_ref(b.namespace, "b-data"))["metadata"]["uid"] == theirs["metadata"]["uid"]
        recorded = [{k: o[k] for k in ("apiVersion", "kind", "namespace", "name")}
                    for o in read_record(cluster, app)["objects"]]
        assert cm_ref(b.namespace, "b-data") in recorded

    started = time.time()
    _out, results = sync(ansible, kubeconfig, apps, [project("team-a", a.namespace)])
    assert results[app]["error"]["step"] == "policy", results[app]
    assert ("the record of %s: ConfigMap %s/b-data: namespace %s is not among project 'team-a''s destinations"
            % (app, b.namespace, b.namespace)) in results[app]["error"]["msg"]
    assert not audited(started, user=a.user), "refused before any request as A"
    b_data_stays()

    # the project lets A into B's namespace and A may read it: its prune's delete is refused by the server
    viewer_of(cluster, a, b, made)
    started = time.time()
    _out, results = sync(ansible, kubeconfig, apps, [project("team-a", a.namespace, b.namespace)])
    failed = results[app]
    assert failed["error"]["step"] == "apply", failed
    assert ('1 object(s) could not be pruned (they stay recorded):\n  ConfigMap %s/b-data: %s may not delete '
            'configmaps "b-data" in namespace %s (403 Forbidden)' % (b.namespace, a.user, b.namespace)
            ) in failed["error"]["msg"], failed["error"]["msg"]
    b_data_stays()
    deletes = audited(started, user=a.user, name="b-data")
    assert [(e["verb"], e["responseStatus"]["code"]) for e in deletes if e["verb"] == "delete"] == [("delete", 403)]
    assert not [e for e in audited(started, user="", namespace=b.namespace) if e["verb"] == "delete"]


def test_hooks_and_health_waits_act_as_the_app_with_its_own_rights_only(ansible, kubeconfig, cluster, teams, workdir):
    a, _b, _made = teams
    repo = GitRepo(workdir)
    migrate = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "migrate", "annotations": {"argocd.argoproj.io/hook": "PreSync",
                                                               "argocd.argoproj.io/hook-delete-policy":
                                                                   "BeforeHookCreation"}},
               "spec": {"backoffLimit": 0, "template": {"spec": {
                   "restartPolicy": "Never", "containers": [{"name": "run", "image": "busybox"}]}}}}
    repo.commit({"a/hook.yaml": [migrate], "a/web.yaml": [deployment("web", replicas=1)],
                 "a/settings.yaml": [configmap("settings")]}, "a hook and a workload")
    [app] = names(a.namespace, "hooked")
    apps = [{"name": app, "repo": repo.url, "path": "a", "namespace": a.namespace, "project": "team-a",
             "wait": {"timeout": 120}}]
    started = time.time()
    _out, results = sync(ansible, kubeconfig, apps, [project("team-a", a.namespace)])
    result = results[app]
    assert result["ok"] and result["health"]["status"] == "Healthy", result
    assert [(h["phase"], h["status"]) for h in result["apply"]["hooks"]] == [("PreSync", "Healthy")]
    assert result["identity"] == a.user

    mine = audited(started, namespace=a.namespace)
    assert mine and {(e.get("impersonatedUser") or {}).get("username") for e in mine} == {a.user}, \
        "every request about A's objects acts as A"
    jobs = [e for e in mine if e["objectRef"]["resource"] == "jobs" and e["verb"] in ("create", "patch")]
    assert jobs and all(e["responseStatus"]["code"] < 300 for e in jobs), "A's hook Job was written as A"
    watched = {(e["verb"], e["objectRef"]["resource"]) for e in mine}
    assert ("watch", "deployments") in watched, watched  # the health wait: A's own get/list/watch
    # the run's own identity kept to its records and Lease: nothing in A's namespace as itself (tests of
    # other files run beside this one, so the run's requests elsewhere are not all this test's)
    assert not audited(started, user="", namespace=a.namespace)

    # --check --diff shows as whom the change would be made
    repo.commit({"a/settings.yaml": [configmap("settings", greeting="changed")]}, "change")
    out, results = sync(ansible, kubeconfig, apps, [project("team-a", a.namespace)], check=True, diff=True)
    assert "ConfigMap %s/settings (update) as %s" % (a.namespace, a.account) in out, out
    assert results[app]["service_account"] == a.account


def test_strict_mode_refuses_an_app_without_identity_before_any_request_for_it(
        ansible, kubeconfig, cluster, teams, workdir):
    a, _b, _made = teams
    repo = GitRepo(workdir)
    repo.commit({"anon/cm.yaml": [configmap("strict-anonymous")], "known/cm.yaml": [configmap("strict-known")]},
                "two apps")
    anonymous, known = names(a.namespace, "anonymous", "known")
    apps = [{"name": anonymous, "repo": repo.url, "path": "anon", "namespace": a.namespace},
            {"name": known, "repo": repo.url, "path": "known", "namespace": a.namespace,
             "service_account": a.account}]
    started = time.time()
    _out, results = sync(ansible, kubeconfig, apps, require_identity=True)
    assert results[anonymous]["error"] == {
        "step": "policy", "msg": "application %r is refused by the cluster's policy; nothing of it is applied:\n  "
                                 "application %r has no identity, and gitops_require_identity is set: give it a "
                                 "service_account" % (anonymous, anonymous), "details": {}}
    assert not audited(started, name="strict-anonymous"), "no request for it, by anyone"
    assert read_record(cluster, anonymous) is None
    assert results[known]["ok"] and results[known]["identity"] == a.user, results[known]
    assert cluster.get(cm_ref(a.namespace, "strict-known")) is not None


def test_an_app_project_and_two_applications_read_by_the_inventory_plugin_behave_the_same(
        ansible, kubeconfig, cluster, teams, workdir):
    a, b, _made = teams
    tag = a.namespace[-5:]
    os.makedirs(os.path.join(workdir, "git"))
    repo = GitRepo(os.path.join(workdir, "git"))
    repo.commit({"a/settings.yaml": [configmap("settings")],
                 "a/intruder.yaml": [configmap("intruder", b.namespace)],
                 "b/settings.yaml": [configmap("b-settings")]}, "two teams")
    server = "https://kubernetes.default.svc"

    def app_project(name, namespace):
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": name, "namespace": "argocd"},
                "spec": {"sourceRepos": ["*"], "destinations": [{"server": server, "namespace": namespace}],
                         "destinationServiceAccounts": [{"server": server, "namespace": namespace,
                                                         "defaultServiceAccount": "deployer"}]}}

    def application(name, path, namespace, team):
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": name},
                "spec": {"project": team, "source": {"repoURL": repo.url, "path": path},
                         "destination": {"server": server, "namespace": namespace}}}

    app_a, app_b = "team-a-" + tag, "team-b-" + tag
    write(os.path.join(workdir, "defs"), {
        "projects.yaml": [app_project("team-a-" + tag, a.namespace), app_project("team-b-" + tag, b.namespace)],
        "apps/a.yaml": [application(app_a, "a", a.namespace, "team-a-" + tag)],
        "apps/b.yaml": [application(app_b, "b", b.namespace, "team-b-" + tag)]})
    config = os.path.join(workdir, "teams.gitops.yml")
    with open(config, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"plugin": "gitops.k8s.apps", "source": "defs",
                        "clusters": {"tenancy-" + tag: {"destinations": [server],
                                                        "vars": {"gitops_cluster": {"kubeconfig": kubeconfig},
                                                                 "gitops_require_identity": True}}}}, handle)
    listed = subprocess.run(["ansible-inventory", "-i", config, "--host", "tenancy-" + tag], env=ansible.env,
                            capture_output=True, text=True, cwd=workdir, check=True)
    host = plain(yaml.safe_load(listed.stdout))
    assert [p["name"] for p in host["gitops_projects"]] == ["team-a-" + tag, "team-b-" + tag]
    assert host["gitops_projects"][0]["service_accounts"] == [{"namespace": a.namespace, "service_account": "deployer"}]

    report = os.path.join(workdir, "report")
    run = Run(ansible.playbook(PUSH, inventory=config, extra_vars={"gitops_report_dir": report}), report)
    assert run.rc != 0, run.out  # the playbook fails at the end, naming the failed app
    row = run.row(app_a)
    assert row["failed_step"] == "policy", row
    assert "a/intruder.yaml: ConfigMap %s/intruder: namespace %s is not among project 'team-a-%s''s destinations" % (
        b.namespace, b.namespace, tag) in row["message"]
    assert cluster.get(cm_ref(a.namespace, "settings")) is None and read_record(cluster, app_a) is None
    synced = run.row(app_b)
    assert (synced["outcome"], synced["service_account"], synced["project"]) == (
        "synced", b.account, "team-b-" + tag), synced
    lines = [line for line in run.out.splitlines() if "%s@tenancy-%s: SYNCED, HEALTHY, synced at" % (app_b, tag) in line]
    assert lines and all(" (two teams) as %s" % b.account in line for line in lines), run.out


def test_a_departed_app_is_removed_as_the_identity_its_record_names_and_strict_mode_keeps_one_without(
        ansible, kubeconfig, cluster, teams, workdir):
    a, _b, _made = teams
    repo = GitRepo(workdir)
    repo.commit({"a/cm.yaml": [configmap("leaving")], "anon/cm.yaml": [configmap("leaving-anonymous")]}, "apps")
    named, anonymous = names(a.namespace, "leaving", "anonymous")
    host = "tenancy-" + a.namespace[-5:]  # a cluster host of its own: the departed apps are this test's
    apps = [{"name": named, "repo": repo.url, "path": "a", "namespace": a.namespace, "prune": True,
             "service_account": a.account},
            {"name": anonymous, "repo": repo.url, "path": "anon", "namespace": a.namespace, "prune": True}]
    _out, results = sync(ansible, kubeconfig, apps, cluster_name=host)
    assert all(r["ok"] for r in results.values()), results
    assert read_record(cluster, named)["identity"] == a.user and read_record(cluster, anonymous).get("identity") is None

    started = time.time()
    _out, results = sync(ansible, kubeconfig, [], cluster_name=host, mode="reconcile", complete=True,
                         require_identity=True)
    removed, kept = results[named], results[anonymous]
    assert (removed["decision"], removed["ok"], removed["identity"]) == ("removed", True, a.user), removed
    assert kept["error"]["step"] == "policy", kept
    assert "its record names no identity to remove it as, and gitops_require_identity is set" in kept["error"]["msg"]
    leaving = audited(started, name="leaving")
    assert "delete" in [e["verb"] for e in leaving]
    assert {(e.get("impersonatedUser") or {}).get("username") for e in leaving} == {a.user}, "pruned as A only"
    assert not audited(started, name="leaving-anonymous"), "refused before any request for it"
    assert cluster.get(cm_ref(a.namespace, "leaving")) is None and read_record(cluster, named) is None
    assert cluster.get(cm_ref(a.namespace, "leaving-anonymous")) is not None


def strict_rbac(team, tag):
    """The '# gitops.k8s strict RBAC' block of docs/teams-and-least-privilege.md, ``team-a`` being
    ``team`` and the run's own names tagged (a shared cluster, parallel tests)."""
    with open(os.path.join(REPO, "docs", "teams-and-least-privilege.md"), encoding="utf-8") as handle:
        blocks = re.findall(r"```yaml\n(# gitops.k8s strict RBAC\n.*?)```", handle.read(), re.S)
    assert len(blocks) == 1, "the page must hold exactly one '# gitops.k8s strict RBAC' block"
    text = blocks[0].replace("team-a", team).replace("gitops-k8s", "gitops-k8s-" + tag)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_strict_mode_through_ansible_runner_with_the_documented_least_privilege_rbac(
        ansible_env, kubeconfig, cluster, namespace, workdir):
    tag = namespace[-5:]
    env = dict(ansible_env, KUBECONFIG=kubeconfig)
    subprocess.run(["kubectl", "create", "namespace", "gitops-system"], env=env, capture_output=True, check=False)
    docs = strict_rbac(namespace, tag)
    kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    run_user = "system:serviceaccount:gitops-system:gitops-k8s-" + tag
    try:
        token = kubectl(env, "create", "token", "gitops-k8s-" + tag, "-n", "gitops-system", "--duration", "1h").strip()
        with open(kubeconfig, encoding="utf-8") as handle:
            server = yaml.safe_load(handle)["clusters"][0]["cluster"]
        with open(server["certificate-authority"], encoding="utf-8") as handle:
            credential = {"K8S_AUTH_HOST": server["server"], "K8S_AUTH_SSL_CA_CERT": handle.read(),
                          "K8S_AUTH_VERIFY_SSL": "True", "K8S_AUTH_API_KEY": token}
        repo = GitRepo(workdir)
        repo.commit({"web/app.yaml": [configmap("web-settings"), deployment("web", replicas=1)],
                     "anon/cm.yaml": [configmap("anonymous-settings")]}, "two apps")
        web, anonymous = names(namespace, "web", "anonymous")
        apps = [{"name": web, "repo": repo.url, "path": "web", "namespace": namespace, "project": "team-a",
                 "wait": {"timeout": 120}},
                {"name": anonymous, "repo": repo.url, "path": "anon", "namespace": namespace}]
        started = time.time()
        job = run_job(workdir, "push", apps, credential, extravars={
            "gitops_require_identity": True, "gitops_projects": [project("team-a", namespace)]})
        rows = {row["app"]: row for row in job.stats()["gitops_report"]["apps"]}
        assert (rows[web]["outcome"], rows[web]["health"]) == ("synced", "HEALTHY"), job.stdout[-3000:]
        assert rows[anonymous]["outcome"] == "failed" and job.status == "failed", "strict mode refused it"
        assert job.events_mentioning("failed at policy: application %r is refused" % anonymous)
        # the run's own identity acted in team-a only as team-a/deployer, and may not write there itself
        ours = audited(started, namespace=namespace)
        assert ours and {(e["user"]["username"], (e.get("impersonatedUser") or {}).get("username")) for e in ours} \
            == {(run_user, "system:serviceaccount:%s:deployer" % namespace)}
        assert cluster.get(cm_ref(namespace, "web-settings")) is not None
        assert cluster.get(cm_ref(namespace, "anonymous-settings")) is None
        run = Cluster.from_params({"host": server["server"], "api_key": token,
                                   "ca_cert": server["certificate-authority"]})
        with pytest.raises(ApiError, match="the run's own identity \\(user %s\\) may not patch configmaps" % run_user):
            run.apply(configmap("direct", namespace), MANAGER)
    finally:
        for doc in docs:
            if doc["metadata"].get("namespace") != namespace:  # the test namespace goes with its contents
                subprocess.run(["kubectl", "delete", doc["kind"], doc["metadata"]["name"], "--ignore-not-found",
                                *(["-n", doc["metadata"]["namespace"]] if doc["metadata"].get("namespace") else [])],
                               env=env, capture_output=True, check=False)


def test_a_rollback_acts_as_the_app_too(ansible, kubeconfig, cluster, teams, workdir):
    a, _b, _made = teams
    repo = GitRepo(workdir)
    good = repo.commit({"a/app.yaml": [configmap("web-config", greeting="good"), deployment("web", replicas=1)]},
                       "Healthy")
    [app] = names(a.namespace, "rolling")
    apps = [{"name": app, "repo": repo.url, "path": "a", "namespace": a.namespace, "project": "team-a",
             "rollback": True, "wait": {"timeout": 90}}]
    projects = [project("team-a", a.namespace)]
    _out, results = sync(ansible, kubeconfig, apps, projects)
    assert results[app]["ok"], results[app]
    repo.commit({"a/app.yaml": [configmap("web-config", greeting="stuck"), deployment(
        "web", replicas=1, deadline=10, labels={"gitops.k8s.test/never-ready": "true"})]}, "Pods that never get ready")
    started = time.time()
    _out, results = sync(ansible, kubeconfig, apps, projects)
    rolled = results[app]
    assert rolled["error"]["step"] == "health" and rolled["rollback"]["revision"] == good, rolled
    assert rolled["rollback"]["apply"]["configured"], rolled["rollback"]
    writes = [e for e in audited(started, namespace=a.namespace) if e["verb"] == "patch"]
    assert {(e.get("impersonatedUser") or {}).get("username") for e in writes} == {a.user}, "the sync and its rollback"
    assert len([e for e in writes if e["objectRef"]["name"] == "web-config"]) >= 4  # dry-run and write, twice
    assert cluster.get(cm_ref(a.namespace, "web-config"))["data"] == {"greeting": "good"}
