"""End to end: the push and reconcile playbooks against the real control plane and real Git repos.

Each test builds a local Git repository (a working copy pushed to a bare repo over file://),
writes an inventory whose cluster is the local control plane, runs the collection's playbooks
with ansible-playbook and checks what a user would check: the cluster, the exit code, the
summary at the end of the output and the report.
"""

import json
import os
import re
import subprocess
import uuid

import yaml

from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import read_record

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PUSH = os.path.join(REPO_ROOT, "playbooks", "push.yml")
RECONCILE = os.path.join(REPO_ROOT, "playbooks", "reconcile.yml")
SECRET_VALUE = "pa55-w0rd-never-shown"


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env=dict(os.environ, GIT_AUTHOR_NAME="Dev", GIT_AUTHOR_EMAIL="dev@example.com",
                                   GIT_COMMITTER_NAME="Dev", GIT_COMMITTER_EMAIL="dev@example.com")).stdout.strip()


class GitRepo:
    """A working copy and the bare repository it pushes to (the URL apps use)."""

    def __init__(self, root):
        self.work = os.path.join(root, "work")
        self.bare = os.path.join(root, "deploy.git")
        self.url = "file://" + self.bare
        git(root, "init", "-q", "--bare", "-b", "main", self.bare)
        git(root, "init", "-q", "-b", "main", self.work)

    def commit(self, files, message):
        """Write ``{path: objects or text}`` and commit; return the sha."""
        for path, content in files.items():
            full = os.path.join(self.work, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as handle:
                handle.write(content if isinstance(content, str) else yaml.safe_dump_all(content))
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", self.bare, "main")
        return git(self.work, "rev-parse", "HEAD")


def deployment(name, replicas=2, greeting="hello", labels=None, deadline=None):
    spec = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": dict({"app": name}, **(labels or {}))},
                     "spec": {"containers": [{"name": name, "image": "nginx:1.27",
                                              "env": [{"name": "GREETING", "value": greeting}]}]}},
    }
    if deadline:
        spec["progressDeadlineSeconds"] = deadline
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def app_files(prefix, greeting="hello", replicas=2, **deploy):
    """A small plain-YAML app: a Deployment, a Service, a ConfigMap and a Secret."""
    return {
        "%s/deployment.yaml" % prefix: [deployment(prefix, replicas, greeting, **deploy)],
        "%s/service.yaml" % prefix: [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": prefix},
                                      "spec": {"selector": {"app": prefix}, "ports": [{"port": 80}]}}],
        "%s/config.yaml" % prefix: [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": prefix + "-config"},
             "data": {"greeting": greeting}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": prefix + "-secret"},
             "stringData": {"password": SECRET_VALUE + "-" + greeting}},
        ],
    }


class Run:
    """One ansible-playbook run: exit code, output and the report it wrote."""

    def __init__(self, proc, report_dir):
        self.proc = proc
        self.rc = proc.returncode
        self.out = proc.stdout + proc.stderr
        path = os.path.join(report_dir, "report.json")
        self.report = json.load(open(path, encoding="utf-8")) if os.path.exists(path) else None
        self.html_path = os.path.join(report_dir, "report.html")

    def row(self, app):
        assert self.report, "no report was written:\n" + self.out
        rows = [r for r in self.report["apps"] if r["app"] == app]
        assert rows, "no row for %s in the report:\n%s" % (app, json.dumps(self.report, indent=1))
        return rows[0]

    def recap_changed(self, host):
        for line in self.out.splitlines():
            if line.startswith(host + " ") and "changed=" in line:
                return int(line.split("changed=")[1].split()[0])
        raise AssertionError("no recap line for %s:\n%s" % (host, self.out))


class Deployer:
    """Runs the playbooks for a set of applications against the local cluster."""

    def __init__(self, ansible, kubeconfig, root):
        self.ansible, self.kubeconfig, self.root = ansible, kubeconfig, root
        self.runs = 0

    def run(self, playbook, apps, extra_vars=None, check=False, diff=False):
        self.runs += 1
        inventory = os.path.join(self.root, "inventory-%d.yml" % self.runs)
        with open(inventory, "w", encoding="utf-8") as handle:
            yaml.safe_dump({"all": {"hosts": {"localhost": {
                "ansible_connection": "local",
                "gitops_cluster": {"kubeconfig": self.kubeconfig},
                "gitops_apps": apps,
            }}}}, handle)
        report_dir = os.path.join(self.root, "report-%d" % self.runs)
        # Every test's inventory names its cluster host localhost, on one shared cluster: a reconcile
        # of one test's list must not take the others' apps for departed ones (test_cluster_sync
        # tests removal with a host name of its own).
        defaults = {"gitops_report_dir": report_dir, "gitops_remove_departed": False}
        proc = self.ansible.playbook(playbook, inventory=inventory, extra_vars=dict(defaults, **(extra_vars or {})),
                                     check=check, diff=diff)
        return Run(proc, report_dir)


def new_deployer(ansible, kubeconfig, workdir):
    return Deployer(ansible, kubeconfig, workdir)


def live(cluster, kind, namespace, name):
    api = {"Deployment": "apps/v1"}.get(kind, "v1")
    return cluster.get({"apiVersion": api, "kind": kind, "namespace": namespace, "name": name})


def scale(cluster, namespace, name, replicas):
    cluster.request("PATCH", "/apis/apps/v1/namespaces/%s/deployments/%s" % (namespace, name),
                    body={"spec": {"replicas": replicas}}, content_type="application/merge-patch+json")


def names(namespace, *apps):
    """Application names unique to this test (the in-cluster inventory is shared by all tests)."""
    tag = namespace[-5:]
    return ["%s-%s" % (app, tag) for app in apps]


def test_push_a_sha_then_reconcile_picks_up_new_commits_and_is_quiet_when_nothing_changed(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    first = repo.commit(app_files("web", greeting="one"), "First greeting")
    second = repo.commit(app_files("web", greeting="two"), "Second greeting")
    [app] = names(namespace, "web")
    apps = [{"name": app, "repo": repo.url, "version": "main", "path": "web", "namespace": namespace,
             "wait": {"timeout": 120}}]
    deploy = new_deployer(ansible, kubeconfig, workdir)

    pushed = deploy.run(PUSH, apps, extra_vars={"gitops_revision": first})
    assert pushed.rc == 0, pushed.out
    assert live(cluster, "ConfigMap", namespace, "web-config")["data"]["greeting"] == "one"
    row = pushed.row(app)
    assert (row["sync"], row["health"], row["outcome"]) == ("SYNCED", "HEALTHY", "synced")
    assert row["revision"] == first and row["commit"] == "First greeting"
    assert read_record(cluster, app)["history"][0]["trigger"] == "push"
    assert "%s@localhost: SYNCED, HEALTHY, synced at %s (First greeting)" % (app, first[:7]) in pushed.out
    for text in (pushed.out, open(pushed.html_path, encoding="utf-8").read(), json.dumps(pushed.report)):
        assert SECRET_VALUE not in text

    picked = deploy.run(RECONCILE, apps)
    assert picked.rc == 0, picked.out
    assert live(cluster, "ConfigMap", namespace, "web-config")["data"]["greeting"] == "two"
    assert picked.row(app)["revision"] == second and picked.row(app)["outcome"] == "synced"
    record = read_record(cluster, app)
    assert record["revision"] == second and record["history"][0]["trigger"] == "pull"

    quiet = deploy.run(RECONCILE, apps)
    assert quiet.rc == 0, quiet.out
    assert quiet.recap_changed("localhost") == 0, quiet.out
    row = quiet.row(app)
    assert (row["sync"], row["health"], row["outcome"]) == ("SYNCED", "HEALTHY", "unchanged")
    assert len(read_record(cluster, app)["history"]) == len(record["history"])  # no new sync recorded


def test_drift_is_healed_with_self_heal_only_reported_without_and_check_diff_changes_nothing(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    repo.commit(dict(app_files("healed"), **app_files("kept")), "Two apps")
    healed, kept = names(namespace, "healed", "kept")
    apps = [
        {"name": healed, "repo": repo.url, "path": "healed", "namespace": namespace, "self_heal": True},
        {"name": kept, "repo": repo.url, "path": "kept", "namespace": namespace},
    ]
    deploy = new_deployer(ansible, kubeconfig, workdir)
    assert deploy.run(PUSH, apps).rc == 0
    scale(cluster, namespace, "healed", 5)
    scale(cluster, namespace, "kept", 4)

    checked = deploy.run(RECONCILE, apps, check=True, diff=True)
    assert checked.rc == 0, checked.out
    assert "-  replicas: 5" in checked.out and "+  replicas: 2" in checked.out, checked.out
    assert "-  replicas: 4" in checked.out, checked.out
    assert live(cluster, "Deployment", namespace, "healed")["spec"]["replicas"] == 5  # nothing changed
    assert checked.row(healed)["outcome"] == "would heal" and checked.row(healed)["sync"] == "OUT OF SYNC"

    reconciled = deploy.run(RECONCILE, apps)
    assert reconciled.rc == 0, reconciled.out
    assert live(cluster, "Deployment", namespace, "healed")["spec"]["replicas"] == 2
    assert live(cluster, "Deployment", namespace, "kept")["spec"]["replicas"] == 4
    assert (reconciled.row(healed)["sync"], reconciled.row(healed)["outcome"]) == ("SYNCED", "healed")
    row = reconciled.row(kept)
    assert (row["sync"], row["outcome"]) == ("OUT OF SYNC", "drift")
    assert [d["object"] for d in row["drift"]] == ["Deployment %s/kept" % namespace]
    assert "replicas: 4" in row["drift"][0]["diff"]


def test_a_bad_commit_fails_the_push_with_a_clear_message_and_the_previous_revision_keeps_running(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    good = repo.commit(app_files("web", greeting="good"), "Good")
    [app] = names(namespace, "web")
    apps = [{"name": app, "repo": repo.url, "path": "web", "namespace": namespace}]
    deploy = new_deployer(ansible, kubeconfig, workdir)
    assert deploy.run(PUSH, apps).rc == 0

    files = app_files("web", greeting="bad")
    files["web/deployment.yaml"][0]["spec"]["replicas"] = "many"  # the API server rejects it
    repo.commit(files, "Bad replicas")
    failed = deploy.run(PUSH, apps)
    assert failed.rc != 0
    summary = failed.out[failed.out.index("Fail when an application failed"):]
    assert "1 of 1 applications failed" in summary and app in summary and "failed at apply" in summary
    assert "Deployment %s/web" % namespace in summary and "deployment.yaml" in summary, summary
    assert live(cluster, "ConfigMap", namespace, "web-config")["data"]["greeting"] == "good"  # nothing applied
    assert read_record(cluster, app)["revision"] == good
    assert (failed.row(app)["outcome"], failed.row(app)["failed_step"]) == ("failed", "apply")


def test_a_commit_that_never_becomes_healthy_is_rolled_back(ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    good = repo.commit(app_files("web", greeting="good"), "Healthy")  # a short deadline would race a loaded machine
    [app] = names(namespace, "web")
    apps = [{"name": app, "repo": repo.url, "path": "web", "namespace": namespace, "rollback": True,
             "wait": {"timeout": 90}}]
    deploy = new_deployer(ansible, kubeconfig, workdir)
    assert deploy.run(PUSH, apps).rc == 0

    bad = repo.commit(app_files("web", greeting="stuck", deadline=10, labels={"gitops.k8s.test/never-ready": "true"}),
                      "Pods that never get ready")
    failed = deploy.run(PUSH, apps)
    assert failed.rc != 0, failed.out
    row = failed.row(app)
    assert row["outcome"] == "rolled back" and row["failed_step"] == "health", row
    assert row["rollback"]["revision"] == good and row["rollback"]["ok"], row
    assert "rolled back to %s" % good[:7] in failed.out
    assert live(cluster, "ConfigMap", namespace, "web-config")["data"]["greeting"] == "good"
    labels = live(cluster, "Deployment", namespace, "web")["spec"]["template"]["metadata"]["labels"]
    assert "gitops.k8s.test/never-ready" not in labels
    latest = read_record(cluster, app)["history"][0]
    assert latest["rollback"] is True and latest["revision"] == good and latest["rollback_of"] == bad

    # The next reconcile does not retry the rolled-back revision: it waits for a new commit.
    again = deploy.run(RECONCILE, apps)
    assert again.rc == 0, again.out
    assert read_record(cluster, app)["history"][0]["rollback_of"] == bad
    assert again.row(app)["sync"] == "OUT OF SYNC"


def test_dependencies_are_synced_first_and_a_failed_dependency_stops_its_dependents(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    repo.commit(dict(app_files("db"), **app_files("api")), "Database and API")
    db, api = names(namespace, "db", "api")
    apps = [
        {"name": api, "repo": repo.url, "path": "api", "namespace": namespace, "depends_on": [db]},
        {"name": db, "repo": repo.url, "path": "db", "namespace": namespace},
    ]
    deploy = new_deployer(ansible, kubeconfig, workdir)
    ordered = deploy.run(PUSH, apps)
    assert ordered.rc == 0, ordered.out
    db_sync, api_sync = read_record(cluster, db)["history"][0], read_record(cluster, api)["history"][0]
    assert db_sync["health"] == "Healthy" and db_sync["health_time"] <= api_sync["time"] - api_sync["duration"]

    apps[1]["path"] = "no-such-dir"
    blocked = deploy.run(PUSH, apps)
    assert blocked.rc != 0
    assert blocked.row(db)["failed_step"] == "render"
    assert blocked.row(api)["outcome"] == "skipped"
    assert "dependency %s did not succeed" % db in blocked.row(api)["message"]
    assert read_record(cluster, api)["history"][0] == api_sync  # not synced again


def test_an_unreachable_repo_fails_only_its_app_and_suspended_apps_are_skipped(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    repo.commit(dict(app_files("web"), **app_files("paused")), "Apps")
    web, lost, paused = names(namespace, "web", "lost", "paused")
    apps = [
        {"name": lost, "repo": "file://" + os.path.join(workdir, "gone-%s.git" % uuid.uuid4().hex[:6]),
         "path": "web", "namespace": namespace},
        {"name": web, "repo": repo.url, "path": "web", "namespace": namespace},
        {"name": paused, "repo": repo.url, "path": "paused", "namespace": namespace, "suspend": True},
    ]
    deploy = new_deployer(ansible, kubeconfig, workdir)
    run = deploy.run(RECONCILE, apps)
    assert run.rc != 0
    assert live(cluster, "Deployment", namespace, "web") is not None
    assert run.row(web)["outcome"] == "synced"
    row = run.row(lost)
    assert (row["outcome"], row["failed_step"], row["sync"]) == ("failed", "fetch", "UNKNOWN")
    assert read_record(cluster, lost) is None  # untouched
    assert run.row(paused)["outcome"] == "suspended"
    assert live(cluster, "Deployment", namespace, "paused") is None
    tail = run.out[run.out.index("TASK [Fail when an application failed]"):]
    assert "1 of 3 applications failed" in tail and lost in tail and "failed at fetch" in tail


def test_invalid_applications_are_refused_before_anything_runs(ansible, kubeconfig, namespace, workdir):
    deploy = new_deployer(ansible, kubeconfig, workdir)
    run = deploy.run(PUSH, [{"name": "a", "repo": "file:///x", "depends_on": ["b"]},
                            {"name": "b", "repo": "file:///x", "depends_on": ["a"], "self_heeal": True}])
    assert run.rc != 0
    assert "unknown key self_heeal" in run.out
    run = deploy.run(PUSH, [{"name": "a", "repo": "file:///x", "depends_on": ["b"]},
                            {"name": "b", "repo": "file:///x", "depends_on": ["a"]}])
    assert run.rc != 0 and "dependency cycle between applications: a -> b -> a" in run.out


def test_roles_and_playbooks_pass_ansible_lint_production(ansible_env):
    proc = subprocess.run([os.path.join(REPO_ROOT, ".venv", "bin", "ansible-lint"), "--profile", "production",
                           "roles/", "playbooks/"], cwd=REPO_ROOT, env=ansible_env, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_role_argument_specs_render_with_ansible_doc(ansible_env):
    proc = subprocess.run([os.path.join(REPO_ROOT, ".venv", "bin", "ansible-doc"), "-t", "role", "gitops.k8s.sync"],
                          env=ansible_env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    plain = re.sub(r"\x1b\[[0-9;]*m|\*", "", proc.stdout)  # ansible-doc emphasis, colour or not
    for text in ("ENTRY POINT: main", "ENTRY POINT: reconcile", "sync_app", "self_heal", "sync_fail_on_error"):
        assert text in plain, text
