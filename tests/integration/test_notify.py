"""Notifications from the push and reconcile playbooks, received by a real local HTTP server.

tests/receiver.py runs as its own process and records every request (path, headers, JSON body)
and answers it as the service its path names would (GitHub, GitLab and Gitea commit statuses,
Slack incoming webhooks), refusing what that service refuses; the first segment of a path can
choose another answer (fail twice, never answer). Each target type gets a success, a failed sync
and a drift, and every request must be one the service accepts; a flaky and a dead receiver must
cost bounded time and change nothing about the sync.
"""

import http.client
import json
import os
import re
import subprocess
import sys
import time
import uuid

import pytest
import yaml

from conftest import TESTS, VENV_PYTHON, PlaybookRunner
from test_push_reconcile import PUSH, RECONCILE, GitRepo, app_files, live, names

GITHUB_TOKEN = "ghp-test-token-never-shown"
GITLAB_TOKEN = "glpat-vaulted-never-shown"
GITEA_TOKEN = "gitea-token-never-shown"
HOOK_TOKEN = "hook-bearer-never-shown"
VAULT_PASSWORD = "vault-pass-for-tests"


class Receiver:
    def __init__(self, record_file, port):
        self.record_file, self.port = record_file, port

    def url(self, path):
        return "http://127.0.0.1:%d/%s" % (self.port, path.strip("/"))

    def requests(self, prefix):
        """Requests whose path starts with /PREFIX, in arrival order."""
        if not os.path.exists(self.record_file):
            return []
        with open(self.record_file, encoding="utf-8") as handle:
            found = [json.loads(line) for line in handle if line.strip()]
        return [r for r in found if r["path"].startswith("/" + prefix.strip("/"))]

    def post(self, path, body, headers):
        """POST ``body`` (a document, sent as JSON, or raw bytes) with exactly ``headers``; (status, answer text)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("POST", "/" + path.strip("/"), body=data, headers=dict(headers, **{"Content-Length": str(len(data))}))
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    record_file = str(tmp_path_factory.mktemp("receiver") / "requests.jsonl")
    proc = subprocess.Popen([sys.executable, os.path.join(TESTS, "receiver.py"), record_file],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        yield Receiver(record_file, port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def vault_var(workdir, name, value):
    """A `name: !vault |` line block, encrypted by ansible-vault as a user would do it."""
    password_file = os.path.join(workdir, "vault-password")
    with open(password_file, "w", encoding="utf-8") as handle:
        handle.write(VAULT_PASSWORD)
    out = subprocess.run([os.path.join(os.path.dirname(VENV_PYTHON), "ansible-vault"), "encrypt_string",
                          "--vault-password-file", password_file, "--name", name, value],
                         capture_output=True, text=True, check=True).stdout
    return out, password_file


def run_playbook(runner, workdir, playbook, apps, notify_config, vault_text, password_file, tag):
    inventory_dir = os.path.join(workdir, "inventory-%s" % tag)
    os.makedirs(os.path.join(inventory_dir, "group_vars", "all"))
    with open(os.path.join(inventory_dir, "group_vars", "all", "vault.yml"), "w", encoding="utf-8") as handle:
        handle.write(vault_text or "{}\n")
    with open(os.path.join(inventory_dir, "hosts.yml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump({"all": {"hosts": {"local-cluster": {
            "ansible_connection": "local", "gitops_cluster": {"kubeconfig": runner.env["KUBECONFIG"]},
            "gitops_apps": apps, "gitops_notify": notify_config,
        }}}}, handle)
    report_dir = os.path.join(workdir, "report-%s" % tag)
    started = time.time()
    # a host name other tests use too: their apps are not this run's departed ones
    proc = runner.playbook(playbook, inventory=inventory_dir,
                           extra_vars={"gitops_report_dir": report_dir, "gitops_remove_departed": False},
                           args=["--vault-password-file", password_file])
    with open(os.path.join(report_dir, "report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    return proc, {row["app"]: row for row in report["apps"]}, time.time() - started


def by_app(requests, key=lambda r: r["body"]["app"]):
    return {key(r): r for r in requests}


def test_every_target_type_hears_of_a_success_a_failed_sync_and_a_drift(
        ansible_env, kubeconfig, cluster, namespace, workdir, receiver):
    tag = uuid.uuid4().hex[:6]
    repo = GitRepo(workdir)
    # No pods (replicas 0): what matters here is what the receivers hear, not scheduling.
    files = dict(app_files("good", replicas=0), **app_files("bad", replicas=0))
    files["bad/deployment.yaml"][0]["spec"]["replicas"] = "many"  # the API server refuses it
    sha = repo.commit(files, "Good and bad")
    good, bad = names(namespace, "good", "bad")
    apps = [{"name": good, "repo": repo.url, "path": "good", "namespace": namespace, "wait": {"timeout": 120}},
            {"name": bad, "repo": repo.url, "path": "bad", "namespace": namespace}]
    vault_text, password_file = vault_var(workdir, "vault_gitlab_token", GITLAB_TOKEN)
    vault_hook = vault_var(workdir, "vault_hook_token", HOOK_TOKEN)[0]
    targets = [
        {"name": "hook", "type": "webhook", "url": receiver.url("%s/hook" % tag),
         "headers": {"Authorization": "Bearer {{ vault_hook_token }}"}},
        {"name": "chat", "type": "slack", "url": receiver.url("%s/slack/services/T0001/B0001/XXXX" % tag)},
        {"name": "gh", "type": "github", "url": receiver.url("%s/github" % tag), "repository": "team/deploy",
         "token_env": "GITOPS_TEST_GITHUB_TOKEN"},
        {"name": "gl", "type": "gitlab", "url": receiver.url("%s/gitlab" % tag), "repository": "team/deploy",
         "token": "{{ vault_gitlab_token }}"},
        {"name": "gt", "type": "gitea", "url": receiver.url("%s/gitea" % tag), "repository": "team/deploy",
         "token": GITEA_TOKEN},
    ]
    config = {"targets": targets, "link": "https://awx.example.com/#/jobs/playbook/42"}
    runner = PlaybookRunner(dict(ansible_env, GITOPS_TEST_GITHUB_TOKEN=GITHUB_TOKEN), workdir)

    pushed, rows, dummy = run_playbook(runner, workdir, PUSH, apps, config, vault_text + vault_hook, password_file, "push")
    out = pushed.stdout + pushed.stderr
    assert pushed.returncode != 0 and rows[good]["outcome"] == "synced" and rows[bad]["outcome"] == "failed", out
    for secret in (GITHUB_TOKEN, GITLAB_TOKEN, GITEA_TOKEN, HOOK_TOKEN, receiver.url("%s/slack" % tag)):
        assert secret not in out
    assert [(r["path"], r["refusal"]) for r in receiver.requests(tag) if r["refusal"]] == [], \
        "every request is one the real service accepts"
    assert not re.search(r"notification \S+ of \S+ to \S+ failed", out), out

    hook = by_app(receiver.requests("%s/hook" % tag))
    assert set(hook) == {good, bad}, hook
    assert hook[good]["body"]["event"] == "sync_succeeded" and hook[good]["headers"]["x-gitops-event"] == "sync_succeeded"
    assert hook[good]["headers"]["authorization"] == "Bearer " + HOOK_TOKEN
    assert hook[good]["headers"]["content-type"] == "application/json"
    body = hook[bad]["body"]
    assert (body["event"], body["cluster"], body["namespace"], body["mode"], body["revision"], body["failed_step"]) == \
        ("sync_failed", "local-cluster", namespace, "push", sha, "apply")
    assert "Deployment %s/bad" % namespace in body["message"], body["message"]
    assert body["link"] == config["link"] and body["commit"] == "Good and bad"

    slack = receiver.requests("%s/slack" % tag)
    texts = sorted(r["body"]["text"] for r in slack)
    assert len(texts) == 2 and set(slack[0]["body"]) == {"text"}, texts
    assert any(t.startswith(":white_check_mark: %s@local-cluster: synced at %s" % (good, sha[:7])) for t in texts), texts
    assert any(t.startswith(":x: %s@local-cluster: sync failed at %s" % (bad, sha[:7])) for t in texts), texts

    statuses = {
        "github": ("/%s/github/repos/team/deploy/statuses/%s" % (tag, sha), "authorization", "Bearer " + GITHUB_TOKEN,
                   "context", ("success", "failure")),
        "gitlab": ("/%s/gitlab/api/v4/projects/team%%2Fdeploy/statuses/%s" % (tag, sha), "private-token", GITLAB_TOKEN,
                   "name", ("success", "failed")),
        "gitea": ("/%s/gitea/api/v1/repos/team/deploy/statuses/%s" % (tag, sha), "authorization", "token " + GITEA_TOKEN,
                  "context", ("success", "failure")),
    }
    for kind, (path, header, value, context_key, states) in statuses.items():
        got = by_app(receiver.requests("%s/%s" % (tag, kind)), key=lambda r: r["body"][context_key].rsplit("/", 1)[1])
        assert set(got) == {good, bad}, (kind, got)
        for app, state in zip((good, bad), states):
            assert got[app]["path"] == path, (kind, got[app]["path"])
            assert got[app]["headers"][header] == value, (kind, got[app]["headers"])
            assert got[app]["body"]["state"] == state, (kind, got[app]["body"])
            assert got[app]["body"][context_key] == "gitops.k8s/local-cluster/%s" % app
            assert got[app]["body"]["target_url"] == config["link"]

    # Drift on the good app (no self_heal): reported by reconcile, the bad app fails again.
    cluster.request("PATCH", "/api/v1/namespaces/%s/configmaps/good-config" % namespace,
                    body={"data": {"greeting": "changed by hand"}}, content_type="application/merge-patch+json")
    reconciled, rows, dummy = run_playbook(runner, workdir, RECONCILE, apps, config, vault_text + vault_hook,
                                           password_file, "reconcile")
    assert rows[good]["outcome"] == "drift", reconciled.stdout
    assert live(cluster, "ConfigMap", namespace, "good-config")["data"]["greeting"] == "changed by hand"
    hook = [r["body"] for r in receiver.requests("%s/hook" % tag) if r["body"]["mode"] == "reconcile"]
    drift = [b for b in hook if b["app"] == good]
    assert [b["event"] for b in drift] == ["drift_found"], hook
    assert drift[0]["drift"] == [{"object": "ConfigMap %s/good-config" % namespace, "action": "update"}]
    assert [b["event"] for b in hook if b["app"] == bad] == ["sync_failed"]
    assert any(r["body"]["text"].startswith(":mag: %s@local-cluster: drift found" % good)
               for r in receiver.requests("%s/slack" % tag))
    drift_states = {"github": "error", "gitlab": "failed", "gitea": "warning"}
    for kind, state in drift_states.items():
        assert [r["body"]["state"] for r in receiver.requests("%s/%s" % (tag, kind))
                if good in json.dumps(r["body"])][-1] == state, kind
    out = reconciled.stdout + reconciled.stderr
    for secret in (GITHUB_TOKEN, GITLAB_TOKEN, GITEA_TOKEN, HOOK_TOKEN):
        assert secret not in out
    assert [(r["path"], r["refusal"]) for r in receiver.requests(tag) if r["refusal"]] == []
    assert not re.search(r"notification \S+ of \S+ to \S+ failed", out), out


def test_a_flaky_receiver_is_retried_and_a_dead_one_costs_bounded_time_and_neither_touches_the_sync(
        ansible_env, kubeconfig, cluster, namespace, workdir, receiver):
    tag = uuid.uuid4().hex[:6]
    repo = GitRepo(workdir)
    repo.commit(dict(app_files("one", replicas=0), **app_files("two", replicas=0)), "Two apps")
    one, two = names(namespace, "one", "two")
    apps = [{"name": one, "repo": repo.url, "path": "one", "namespace": namespace},
            {"name": two, "repo": repo.url, "path": "two", "namespace": namespace}]
    config = {"timeout": 2, "retries": 2, "targets": [
        {"name": "flaky", "type": "webhook", "url": receiver.url("fail-twice/%s/hook" % tag)},
        {"name": "dead", "type": "webhook", "url": receiver.url("hang/%s/hook" % tag), "events": ["sync_succeeded"]},
    ]}
    vault_text, password_file = vault_var(workdir, "unused", "x")
    runner = PlaybookRunner(ansible_env, workdir)
    pushed, rows, elapsed = run_playbook(runner, workdir, PUSH, apps, config, vault_text, password_file, "push")
    out = pushed.stdout + pushed.stderr
    assert pushed.returncode == 0, out
    assert rows[one]["outcome"] == rows[two]["outcome"] == "synced", rows
    assert live(cluster, "ConfigMap", namespace, "one-config")["data"]["greeting"] == "hello"

    # Flaky: 500, 500, then 200 for the first app (three identical requests), then 200 for the second.
    flaky = receiver.requests("fail-twice/%s" % tag)
    assert [r["body"]["app"] for r in flaky] == [one, one, one, two], [r["body"]["app"] for r in flaky]
    assert flaky[0]["body"] == flaky[1]["body"] == flaky[2]["body"]
    assert "to flaky failed" not in out, out

    # Dead: the first delivery tries 3 times (2 s each plus 1 + 2 s back-off), the second is skipped.
    dead = receiver.requests("hang/%s" % tag)
    assert len(dead) == 3, [r["path"] for r in dead]
    assert "to dead failed after 3 attempt(s): timed out" in out, out
    assert "the target did not answer earlier in this run" in out, out
    spent = dead[-1]["time"] - dead[0]["time"]
    assert spent < 2 * 2 + 1 + 2 + 2, spent
    assert elapsed < 300, elapsed


SHA = "3f2a9c1d" + "0" * 32
GITHUB_HEADERS = {"User-Agent": "test", "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
                  "Authorization": "Bearer x", "Content-Type": "application/json"}
GITLAB_HEADERS = {"PRIVATE-TOKEN": "x", "Content-Type": "application/json"}
GITEA_HEADERS = {"Authorization": "token x", "Content-Type": "application/json"}
SLACK_HEADERS = {"Content-Type": "application/json"}
GITHUB, GITLAB, GITEA, SLACK = ("github/repos/team/deploy/statuses/" + SHA, "gitlab/api/v4/projects/team%2Fdeploy/statuses/" + SHA,
                                "gitea/api/v1/repos/team/deploy/statuses/" + SHA, "slack/services/T0001/B0001/XXXX")


def without(headers, name):
    return {k: v for k, v in headers.items() if k != name}


@pytest.mark.parametrize("path, body, headers, status, says", [
    (GITHUB, {"state": "success", "description": "d" * 140, "context": "gitops.k8s/c/a"}, GITHUB_HEADERS, 201, '"id"'),
    (GITHUB, {"state": "success", "description": "d" * 141}, GITHUB_HEADERS, 422,
     "description is too long (maximum is 140 characters)"),
    (GITHUB, {"state": "failed"}, GITHUB_HEADERS, 422, "state is not included in the list"),
    (GITHUB, {"state": "success", "context": 7}, GITHUB_HEADERS, 422, "context is invalid"),
    (GITHUB, {"state": "success"}, without(GITHUB_HEADERS, "User-Agent"), 403, "User-Agent header"),
    (GITHUB, {"state": "success"}, without(GITHUB_HEADERS, "X-GitHub-Api-Version"), 400, "X-GitHub-Api-Version"),
    (GITHUB, {"state": "success"}, dict(GITHUB_HEADERS, Accept="application/json"), 415, "Accept"),
    (GITHUB, {"state": "success"}, without(GITHUB_HEADERS, "Authorization"), 401, "Requires authentication"),
    (GITHUB, b"{not json", GITHUB_HEADERS, 400, "Problems parsing JSON"),
    (GITLAB, {"state": "failed", "name": "gitops.k8s/c/a", "description": "d"}, GITLAB_HEADERS, 201, '"status": "failed"'),
    (GITLAB, {"state": "running"}, dict(without(GITLAB_HEADERS, "PRIVATE-TOKEN"), Authorization="Bearer x"), 201, "running"),
    (GITLAB, {"state": "failure"}, GITLAB_HEADERS, 400, "state does not have a valid value"),
    (GITLAB, {"name": "n"}, GITLAB_HEADERS, 400, "state is missing"),
    (GITLAB, {"state": "success", "target_url": "https://e.example/" + "x" * 240}, GITLAB_HEADERS, 400, "maximum is 255"),
    (GITLAB, {"state": "success"}, without(GITLAB_HEADERS, "PRIVATE-TOKEN"), 401, "401 Unauthorized"),
    (GITEA, {"state": "warning", "context": "gitops.k8s/c/a", "description": "d"}, GITEA_HEADERS, 201, "warning"),
    (GITEA, {"state": "failed"}, GITEA_HEADERS, 422, "invalid commit status state"),
    (GITEA, {"state": "success"}, without(GITEA_HEADERS, "Authorization"), 401, "token is required"),
    (SLACK, {"text": "hello"}, SLACK_HEADERS, 200, "ok"),
    (SLACK, b"{not json", SLACK_HEADERS, 400, "invalid_payload"),
    (SLACK, {"text": "hello"}, {"Content-Type": "text/plain"}, 400, "invalid_payload"),
    (SLACK, {"username": "gitops"}, SLACK_HEADERS, 400, "no_text"),
])
def test_the_receiver_answers_as_each_service_would(receiver, path, body, headers, status, says):
    tag = uuid.uuid4().hex[:6]
    got, answer = receiver.post("%s/%s" % (tag, path), body, headers)
    assert (got, says in answer) == (status, True), answer
    [recorded] = receiver.requests(tag)
    assert recorded["status"] == status and bool(recorded["refusal"]) == (status >= 400), recorded


def test_a_commit_status_target_without_a_token_is_refused_before_anything_is_sent(ansible, receiver):
    # GitHub, GitLab and Gitea create no commit status without a token: the target cannot work
    tag = uuid.uuid4().hex[:6]
    record = {"app": "web", "cluster": "prod", "namespace": "shop", "trigger": "push",
              "fetch": {"revision": SHA, "commit": {"message": "Scale web", "author": "Ann <ann@example.com>"}},
              "apply": {"changed": True, "revision": SHA}, "health": {"healthy": True, "status": "Healthy", "resources": []}}
    for kind in ("github", "gitlab", "gitea"):
        target = {"name": "forge", "type": kind, "url": receiver.url("%s/%s" % (tag, kind)), "repository": "team/deploy"}
        proc, result = ansible.module("gitops.k8s.notify", {"results": [record], "targets": [target]})
        assert result.get("failed"), (kind, result, proc.stdout)
        assert "gitops_notify target forge (%s) needs token or token_env" % kind in result["msg"], result["msg"]
    assert receiver.requests(tag) == [], "nothing was sent"
