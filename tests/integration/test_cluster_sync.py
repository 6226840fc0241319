"""Many applications on one cluster: the per-cluster engine behind push and reconcile.

Real Git repositories (bare, over file://), the real local control plane, the collection's
playbooks run with ansible-playbook; assertions are on what a user sees: the cluster, the
summary lines, the report and the in-cluster records.
"""

import os
import sys
import threading
import time

import yaml

from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import read_record
from test_push_reconcile import PUSH, RECONCILE, GitRepo, Run, app_files, git, live, names, new_deployer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import audit  # noqa: E402


def config(greeting):
    return {"app/config.yaml": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                                 "data": {"greeting": greeting}}]}


def test_stage_on_main_and_prod_on_a_tag_of_one_repo_each_get_their_own_commit(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    v1 = repo.commit(config("from-v1"), "Greeting v1")
    git(repo.work, "tag", "v1")
    git(repo.work, "push", "-q", repo.bare, "v1")
    head = repo.commit(config("from-main"), "Greeting on main")
    prod_ns = namespace + "-p"
    cluster.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": prod_ns}})
    try:
        stage, prod = names(namespace, "stage", "prod")
        apps = [{"name": stage, "repo": repo.url, "version": "main", "path": "app", "namespace": namespace},
                {"name": prod, "repo": repo.url, "version": "v1", "path": "app", "namespace": prod_ns}]
        run = new_deployer(ansible, kubeconfig, workdir).run(PUSH, apps)
        assert run.rc == 0, run.out
        assert live(cluster, "ConfigMap", namespace, "settings")["data"]["greeting"] == "from-main"
        assert live(cluster, "ConfigMap", prod_ns, "settings")["data"]["greeting"] == "from-v1"
        assert "%s@localhost: SYNCED, HEALTHY, synced at %s (Greeting on main)" % (stage, head[:7]) in run.out
        assert "%s@localhost: SYNCED, HEALTHY, synced at %s (Greeting v1)" % (prod, v1[:7]) in run.out
        assert read_record(cluster, stage)["revision"] == head and read_record(cluster, prod)["revision"] == v1
    finally:
        cluster.delete({"apiVersion": "v1", "kind": "Namespace", "name": prod_ns})


def test_two_repositories_three_apps_each_and_a_noop_reconcile_changes_nothing(
        ansible, kubeconfig, cluster, namespace, workdir):
    for n in (1, 2):
        os.makedirs(os.path.join(workdir, "r%d" % n))
    repos = [GitRepo(os.path.join(workdir, "r%d" % n)) for n in (1, 2)]
    apps = []
    for number, repo in enumerate(repos):
        files = {}
        for part in ("a", "b", "c"):
            files.update(app_files("%s%d" % (part, number)))
        repo.commit(files, "Three apps of repo %d" % number)
        apps += [{"name": name, "repo": repo.url, "path": "%s%d" % (part, number), "namespace": namespace}
                 for part, name in zip("abc", names(namespace, *("%s%d" % (p, number) for p in "abc")))]
    deploy = new_deployer(ansible, kubeconfig, workdir)
    pushed = deploy.run(PUSH, apps)
    assert pushed.rc == 0, pushed.out
    assert pushed.report["summary"]["synced"] == 6 and pushed.report["summary"]["healthy"] == 6, pushed.report["summary"]
    for app in apps:
        assert live(cluster, "Deployment", namespace, app["path"]) is not None
        assert read_record(cluster, app["name"])["result"] == "Succeeded"

    quiet = deploy.run(RECONCILE, apps)
    assert quiet.rc == 0, quiet.out
    assert quiet.recap_changed("localhost") == 0, quiet.out
    assert {r["outcome"] for r in quiet.report["apps"]} == {"unchanged"}, quiet.report["apps"]
    assert {(r["sync"], r["health"]) for r in quiet.report["apps"]} == {("SYNCED", "HEALTHY")}


def test_a_noop_reconcile_reads_the_cluster_once_for_all_apps(ansible, kubeconfig, cluster, namespace, workdir):
    """An unchanged application costs no request of its own: 5 and 9 apps cost the same."""
    repo = GitRepo(workdir)
    files = {}
    for n in range(9):
        files.update(app_files("w%d" % n))
    repo.commit(files, "Nine apps")
    apps = [{"name": name, "repo": repo.url, "path": "w%d" % n, "namespace": namespace}
            for n, name in enumerate(names(namespace, *("w%d" % n for n in range(9))))]
    assert new_deployer(ansible, kubeconfig, workdir).run(PUSH, apps).rc == 0

    def requests(selected):
        proc, result = ansible.module("gitops.k8s.cluster_sync", {
            "apps": apps, "select": [a["name"] for a in selected], "kubeconfig": kubeconfig,
            "cluster_name": "localhost"})
        assert not result.get("failed"), proc.stdout
        assert [r["decision"] for r in result["results"]] == ["in sync"] * len(selected), result["results"]
        return result["api_requests"]

    few, many = requests(apps[:5]), requests(apps)
    assert many == few, (few, many)
    # nothing per app: discovery, the inventory (its Namespace, the claims Lease, every record, the
    # digest key), one LIST per kind; discovery's own count varies a little with the cluster
    assert many <= 15, many

    # one app among many of a namespace (a push of one) reads its own objects, not every object
    # of their kinds
    since = time.time()
    requests(apps[:1])
    audit.flush()
    reads = sorted((event["verb"], event["objectRef"]["resource"], event["objectRef"].get("name"))
                   for event in audit.requests(since=since, user_agent="gitops.k8s")
                   if event.get("objectRef", {}).get("namespace") == namespace)
    assert reads == sorted([("get", "configmaps", "w0-config"), ("get", "deployments", "w0"),
                            ("get", "secrets", "w0-secret"), ("get", "services", "w0")]), reads


def test_a_dependency_chain_runs_in_order_and_a_failure_skips_only_what_depends_on_it(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    files = {}
    for part in ("db", "api", "web", "other"):
        files.update(app_files(part))
    repo.commit(files, "A chain and a bystander")
    db, api, web, other = names(namespace, "db", "api", "web", "other")
    apps = [{"name": web, "repo": repo.url, "path": "web", "namespace": namespace, "depends_on": [api]},
            {"name": api, "repo": repo.url, "path": "api", "namespace": namespace, "depends_on": [db]},
            {"name": db, "repo": repo.url, "path": "db", "namespace": namespace},
            {"name": other, "repo": repo.url, "path": "other", "namespace": namespace}]
    deploy = new_deployer(ansible, kubeconfig, workdir)
    ordered = deploy.run(PUSH, apps)
    assert ordered.rc == 0, ordered.out
    times = {name: read_record(cluster, name)["history"][0] for name in (db, api, web)}
    # each app starts after the one it depends on was healthy (its verdict was recorded)
    assert times[db]["health_time"] <= times[api]["time"] - times[api]["duration"], times
    assert times[api]["health_time"] <= times[web]["time"] - times[web]["duration"], times
    # one line per app as it finishes (the summary at the end quotes them again)
    finished = [line.split("@")[0].split()[-1] for line in ordered.out.splitlines()
                if "@localhost: SYNCED" in line and not line.strip().startswith('"')]
    assert [name for name in finished if name != other] == [db, api, web], ordered.out

    apps[2]["path"] = "no-such-dir"
    blocked = deploy.run(PUSH, apps)
    assert blocked.rc != 0
    assert blocked.row(db)["failed_step"] == "render"
    for name in (api, web):
        assert blocked.row(name)["outcome"] == "skipped", blocked.row(name)
    assert "dependency %s did not succeed" % db in blocked.row(api)["message"]
    assert "dependency %s did not succeed" % api in blocked.row(web)["message"]
    assert blocked.row(other)["ok"], blocked.row(other)


def test_one_failing_app_among_ten_fails_the_run_naming_it_and_the_others_converge(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    files = {}
    for n in range(10):
        files.update(app_files("s%d" % n))
    files["s3/deployment.yaml"] = [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "s3"},
                                    "spec": {"replicas": "three"}}]
    repo.commit(files, "Ten apps, one broken")
    apps = [{"name": name, "repo": repo.url, "path": "s%d" % n, "namespace": namespace}
            for n, name in enumerate(names(namespace, *("s%d" % n for n in range(10))))]
    run = new_deployer(ansible, kubeconfig, workdir).run(PUSH, apps)
    assert run.rc != 0
    broken = apps[3]["name"]
    tail = run.out[run.out.rindex("TASK [Fail when an application failed]"):]
    assert "1 of 10 applications failed" in tail and broken in tail and "failed at apply" in tail, tail
    assert "Deployment %s/s3" % namespace in tail and "deployment.yaml" in tail, tail
    for n, app in enumerate(apps):
        if n == 3:
            assert read_record(cluster, app["name"]) is None or read_record(cluster, app["name"])["revision"] is None
            continue
        assert run.row(app["name"])["outcome"] == "synced", run.row(app["name"])
        assert live(cluster, "Deployment", namespace, "s%d" % n) is not None


def test_push_and_reconcile_started_together_leave_every_app_at_one_consistent_revision(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    files = {}
    for n in range(4):
        files.update(app_files("p%d" % n, greeting="one"))
    repo.commit(files, "Four apps")
    apps = [{"name": name, "repo": repo.url, "path": "p%d" % n, "namespace": namespace}
            for n, name in enumerate(names(namespace, *("p%d" % n for n in range(4))))]
    deploy = new_deployer(ansible, kubeconfig, workdir)
    assert deploy.run(PUSH, apps).rc == 0
    files = {}
    for n in range(4):
        files.update(app_files("p%d" % n, greeting="two"))
    second = repo.commit(files, "Greeting two")

    runs = {}

    def start(key, playbook, selected):
        os.makedirs(os.path.join(workdir, key))
        runs[key] = new_deployer(ansible, kubeconfig, os.path.join(workdir, key)).run(playbook, selected)

    threads = [threading.Thread(target=start, args=("push", PUSH, apps[:3])),
               threading.Thread(target=start, args=("reconcile", RECONCILE, apps[1:]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for key, run in runs.items():
        assert run.rc == 0, "%s failed:\n%s" % (key, run.out)
    for n, app in enumerate(apps):
        record = read_record(cluster, app["name"])
        assert record["revision"] == second and record["result"] == "Succeeded", record
        assert live(cluster, "ConfigMap", namespace, "p%d-config" % n)["data"]["greeting"] == "two"
        # every sync of the history is complete: no Running or Failed entry from the race
        assert {h["result"] for h in record["history"]} == {"Succeeded"}, record["history"]


def test_job_slices_reconcile_disjoint_clusters_that_together_make_the_whole_run(
        ansible, ansible_env, kubeconfig, cluster, namespace, workdir):
    """AWX job slicing runs `--limit`ed copies of a job; four 'clusters' are four inventory namespaces."""
    repo = GitRepo(workdir)
    files = {}
    for n in range(4):
        files.update(app_files("c%d" % n))
    repo.commit(files, "One app per cluster")
    hosts = {}
    for n in range(4):
        hosts["cluster%d" % n] = {
            "ansible_connection": "local", "gitops_cluster": {"kubeconfig": kubeconfig},
            "gitops_inventory_namespace": "%s-inv%d" % (namespace, n),
            "gitops_apps": [{"name": "app%d" % n, "repo": repo.url, "path": "c%d" % n, "namespace": namespace}],
        }
    inventory = os.path.join(workdir, "fleet.yml")
    with open(inventory, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"all": {"hosts": hosts}}, handle)
    try:
        slices = []
        for number, limit in enumerate(("cluster0,cluster1", "cluster2,cluster3")):
            report_dir = os.path.join(workdir, "slice%d" % number)
            proc = ansible.playbook(RECONCILE, inventory=inventory, extra_vars={"gitops_report_dir": report_dir},
                                    args=("--limit", limit))
            slices.append(Run(proc, report_dir))
        for run in slices:
            assert run.rc == 0, run.out
        seen = [{(r["cluster"], r["app"]) for r in run.report["apps"]} for run in slices]
        assert seen[0] == {("cluster0", "app0"), ("cluster1", "app1")}, seen
        assert seen[1] == {("cluster2", "app2"), ("cluster3", "app3")}, seen
        for n in range(4):
            record = read_record(cluster, "app%d" % n, namespace="%s-inv%d" % (namespace, n))
            assert record and record["result"] == "Succeeded", n
        whole = ansible.playbook(RECONCILE, inventory=inventory,
                                 extra_vars={"gitops_report_dir": os.path.join(workdir, "whole")})
        whole = Run(whole, os.path.join(workdir, "whole"))
        assert whole.rc == 0, whole.out
        assert {(r["cluster"], r["app"]) for r in whole.report["apps"]} == seen[0] | seen[1]
        assert {r["outcome"] for r in whole.report["apps"]} == {"unchanged"}
    finally:
        for n in range(4):
            cluster.delete({"apiVersion": "v1", "kind": "Namespace", "name": "%s-inv%d" % (namespace, n)})


def test_an_app_removed_from_the_list_is_pruned_with_its_record_or_reported_orphaned_without_prune(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    repo.commit(dict(app_files("gone"), **dict(app_files("kept"), **app_files("stays"))), "Three apps")
    gone, kept, stays = names(namespace, "gone", "kept", "stays")
    host = "rm-" + namespace[-5:]  # a cluster host of its own: departed apps are those this host recorded
    apps = [{"name": gone, "repo": repo.url, "path": "gone", "namespace": namespace, "prune": True},
            {"name": kept, "repo": repo.url, "path": "kept", "namespace": namespace},
            {"name": stays, "repo": repo.url, "path": "stays", "namespace": namespace}]
    runs = []

    def run(playbook, selected, extra=None, check=False):
        inventory = os.path.join(workdir, "inventory-%d.yml" % len(runs))
        with open(inventory, "w", encoding="utf-8") as handle:
            yaml.safe_dump({"all": {"hosts": {host: {"ansible_connection": "local", "gitops_apps": selected,
                                                     "gitops_cluster": {"kubeconfig": kubeconfig}}}}}, handle)
        report_dir = os.path.join(workdir, "report-%d" % len(runs))
        runs.append(Run(ansible.playbook(playbook, inventory=inventory, check=check,
                                         extra_vars=dict({"gitops_report_dir": report_dir}, **(extra or {}))),
                        report_dir))
        return runs[-1]

    assert run(PUSH, apps).rc == 0
    assert live(cluster, "Deployment", namespace, "gone") is not None

    # a push of a subset never removes anything; nor does a reconcile of a selection
    assert run(PUSH, apps[2:]).rc == 0
    assert run(RECONCILE, apps, {"gitops_app": stays}).rc == 0
    assert read_record(cluster, gone) is not None and read_record(cluster, kept) is not None

    checked = run(RECONCILE, apps[2:], check=True)
    assert checked.rc == 0, checked.out
    assert checked.row(gone)["outcome"] == "would remove", checked.row(gone)
    assert live(cluster, "Deployment", namespace, "gone") is not None and read_record(cluster, gone) is not None

    removed = run(RECONCILE, apps[2:])
    assert removed.rc == 0, removed.out
    assert {r["app"] for r in removed.report["apps"]} == {gone, kept, stays}, removed.report["apps"]
    assert removed.row(gone)["outcome"] == "removed", removed.row(gone)
    assert removed.row(kept)["outcome"] == "orphaned", removed.row(kept)
    assert removed.row(stays)["outcome"] == "unchanged"
    for kind, name in (("Deployment", "gone"), ("ConfigMap", "gone-config"), ("Service", "gone")):
        obj = live(cluster, kind, namespace, name)
        assert obj is None or obj["metadata"].get("deletionTimestamp"), (kind, name)
    assert read_record(cluster, gone) is None
    assert cluster.get({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "namespace": "gitops-system",
                        "name": "gitops-app-" + gone}) is None
    assert live(cluster, "Deployment", namespace, "kept") is not None and read_record(cluster, kept) is not None

    # a new app may now declare what the removed one had: nothing is left to "take over"
    again = run(PUSH, [apps[2], {"name": stays + "-new", "repo": repo.url, "path": "gone", "namespace": namespace}])
    assert again.rc == 0, again.out

    absent = run(PUSH, [dict(apps[1], state="absent", prune=True)])
    assert absent.rc == 0, absent.out
    assert absent.row(kept)["outcome"] == "removed" and read_record(cluster, kept) is None


def test_two_apps_declaring_the_same_object_in_one_run_both_fail_naming_each_other(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    shared = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"k": "v"}}
    repo.commit({"one/cm.yaml": [shared], "two/cm.yaml": [shared], "three/cm.yaml": [dict(shared, metadata={
        "name": "own"})]}, "Two apps, one object")
    one, two, three = names(namespace, "one", "two", "three")
    apps = [{"name": name, "repo": repo.url, "path": path, "namespace": namespace}
            for name, path in ((one, "one"), (two, "two"), (three, "three"))]
    run = new_deployer(ansible, kubeconfig, workdir).run(PUSH, apps)
    assert run.rc != 0
    for name in (one, two):
        row = run.row(name)
        assert row["outcome"] == "failed" and "ConfigMap %s/shared is declared by more than one application" % namespace \
            in row["message"] and one in row["message"] and two in row["message"], row
        assert read_record(cluster, name) is None
    assert live(cluster, "ConfigMap", namespace, "shared") is None
    assert run.row(three)["outcome"] == "synced"


def test_reconcile_never_moves_an_app_back_to_an_older_commit_than_the_cluster_runs(
        ansible, kubeconfig, cluster, namespace, workdir):
    """A push of a newer commit (here on another branch) is not reverted by a reconcile of main."""
    repo = GitRepo(workdir)
    old = repo.commit(app_files("web", greeting="old"), "Old greeting")
    git(repo.work, "checkout", "-q", "-b", "hotfix")
    new = repo.commit(app_files("web", greeting="new"), "New greeting")
    git(repo.work, "push", "-q", repo.bare, "hotfix")
    app = names(namespace, "web")[0]
    apps = [{"name": app, "repo": repo.url, "version": "main", "path": "web", "namespace": namespace}]
    deploy = new_deployer(ansible, kubeconfig, workdir)
    assert deploy.run(PUSH, apps, extra_vars={"gitops_app": app, "gitops_revision": new}).rc == 0

    kept = deploy.run(RECONCILE, apps)
    assert kept.rc == 0, kept.out
    row = kept.row(app)
    assert (row["outcome"], row["sync"]) == ("superseded", "OUT OF SYNC"), row
    assert "not moved back" in row["message"] and new[:7] in row["message"], row
    assert live(cluster, "ConfigMap", namespace, "web-config")["data"]["greeting"] == "new"
    assert read_record(cluster, app)["revision"] == new

    back = deploy.run(PUSH, apps, extra_vars={"gitops_app": app, "gitops_revision": old})
    assert back.rc == 0, back.out
    assert live(cluster, "ConfigMap", namespace, "web-config")["data"]["greeting"] == "old"
