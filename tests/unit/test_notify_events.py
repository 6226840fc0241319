"""Notifications: which event a run gives each application, and the request each target type gets.

Delivery itself (retries, timeouts, what a receiver sees) is tested against a real HTTP server in
tests/integration/test_notify.py.
"""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.report import notify
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.report.run_report import app_row

SHA = "3f2a9c1d" + "0" * 32
OLD = "a1b2c3d4" + "0" * 32
DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "web"}
FETCH = {"revision": SHA, "commit": {"message": "Scale web", "author": "Ann <ann@example.com>"}}
HEALTHY = {"healthy": True, "status": "Healthy", "resources": []}
DEGRADED = {"status": "Degraded", "resources": [{"ref": DEPLOY, "status": "Degraded", "message": "0 of 3 available"}]}


def record(**extra):
    return dict({"app": "web", "cluster": "prod", "namespace": "shop", "trigger": "push", "fetch": FETCH}, **extra)


RECORDS = {
    "sync_succeeded": record(apply={"changed": True, "revision": SHA, "configured": [DEPLOY]}, health=HEALTHY),
    "sync_failed": record(apply={"failed": True, "msg": "Deployment shop/web: invalid"},
                          error={"step": "apply", "msg": "Deployment shop/web: invalid"}),
    "health_degraded": record(trigger="pull", decision="in sync", diff={"changed": False, "resources": []},
                              health=DEGRADED),
    "drift_found": record(trigger="pull", decision="drift", apply={"skipped": True},
                          diff={"changed": True, "resources": [dict(DEPLOY, action="update", diff="-  replicas: 5")]},
                          health=HEALTHY),
    "rolled_back": record(apply={"changed": True, "revision": SHA}, health=DEGRADED,
                          error={"step": "health", "msg": "Deployment shop/web: 0 of 3 available"},
                          rollback={"revision": OLD, "apply": {"changed": True}, "health": HEALTHY}),
}


@pytest.mark.parametrize("event", sorted(RECORDS))
def test_each_outcome_gives_its_event(event):
    assert notify.event_of(app_row(RECORDS[event])) == event


def test_unchanged_skipped_and_check_mode_sync_send_nothing_but_check_mode_drift_does():
    unchanged = record(trigger="pull", decision="in sync", diff={"changed": False, "resources": []}, health=HEALTHY)
    skipped = {"app": "old", "cluster": "prod", "skipped": "suspended", "suspended": True}
    would_sync = record(check_mode=True, diff={"changed": True, "resources": [dict(DEPLOY, action="update")]},
                        apply={"changed": True, "revision": SHA})
    would_heal = dict(RECORDS["drift_found"], check_mode=True, apply={"changed": True, "revision": SHA})
    assert [notify.event_of(app_row(r)) for r in (unchanged, skipped, would_sync, would_heal)] == \
        [None, None, None, "drift_found"]


def test_the_webhook_body_says_what_happened_without_diffs():
    row = app_row(RECORDS["rolled_back"])
    body = notify.event_body("rolled_back", row, mode="push", link="https://awx.example.com/#/jobs/7")
    assert body["summary"] == ("web@prod: rolled back at 3f2a9c1 (Scale web) - failed at health: "
                               "Deployment shop/web: 0 of 3 available; rolled back to a1b2c3d")
    assert (body["event"], body["app"], body["cluster"], body["revision"], body["outcome"]) == \
        ("rolled_back", "web", "prod", SHA, "rolled back")
    assert body["rollback"]["revision"] == OLD and body["link"].endswith("/7")
    drift = notify.event_body("drift_found", app_row(RECORDS["drift_found"]))
    assert drift["drift"] == [{"object": "Deployment shop/web", "action": "update"}]
    assert "replicas" not in str(drift)


@pytest.mark.parametrize("kind, url, path, auth, state_key", [
    ("github", None, "https://api.github.com/repos/team/deploy/statuses/" + SHA,
     ("Authorization", "Bearer s3cret"), "context"),
    ("gitlab", "https://gitlab.example.com/", "https://gitlab.example.com/api/v4/projects/team%2Fdeploy/statuses/" + SHA,
     ("PRIVATE-TOKEN", "s3cret"), "name"),
    ("gitea", "https://gitea.example.com", "https://gitea.example.com/api/v1/repos/team/deploy/statuses/" + SHA,
     ("Authorization", "token s3cret"), "context"),
])
def test_commit_statuses_use_each_forges_api(kind, url, path, auth, state_key):
    target = {"type": kind, "url": url, "repository": "team/deploy", "token": "s3cret", "context": "gitops.k8s"}
    body = notify.event_body("sync_failed", app_row(RECORDS["sync_failed"]), link="https://awx.example.com/j/1")
    got_url, payload, headers = notify.request_for(target, "sync_failed", body)
    assert got_url == path
    assert headers[auth[0]] == auth[1]
    assert payload["state"] in ("failure", "failed") and payload[state_key] == "gitops.k8s/prod/web"
    assert payload["target_url"] == "https://awx.example.com/j/1" and len(payload["description"]) <= 140


def test_a_commit_status_needs_a_revision_and_a_token_from_the_environment(monkeypatch):
    no_revision = notify.event_body("sync_failed", app_row(record(fetch={"failed": True, "msg": "unreachable"},
                                                                  error={"step": "fetch", "msg": "unreachable"})))
    target = {"type": "github", "repository": "team/deploy", "token_env": "GITOPS_TEST_TOKEN"}
    assert notify.request_for(target, "sync_failed", no_revision) == "no revision to set a commit status on"
    body = notify.event_body("sync_succeeded", app_row(RECORDS["sync_succeeded"]))
    monkeypatch.delenv("GITOPS_TEST_TOKEN", raising=False)
    with pytest.raises(GitOpsError, match="GITOPS_TEST_TOKEN"):
        notify.request_for(target, "sync_succeeded", body)
    monkeypatch.setenv("GITOPS_TEST_TOKEN", "from-env")
    assert notify.request_for(target, "sync_succeeded", body)[2]["Authorization"] == "Bearer from-env"


def test_a_target_that_cannot_work_is_refused_by_name():
    with pytest.raises(GitOpsError, match="chat .slack. needs url"):
        notify.validate_targets([{"name": "chat", "type": "slack"}])
    with pytest.raises(GitOpsError, match="github-0 .github. needs repository"):
        notify.validate_targets([{"type": "github", "token": "x"}])
