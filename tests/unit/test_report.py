"""The run report: statuses a person reads, the end-of-run failure summary, the HTML page."""

import datetime
import json
import os

from ansible_collections.gitops.k8s.plugins.module_utils.report import run_report as report

SHA = "3f2a9c1d" + "0" * 32
OLD = "a1b2c3d4" + "0" * 32
DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "web"}
SECRET = {"apiVersion": "v1", "kind": "Secret", "namespace": "shop", "name": "creds"}
FETCH = {"changed": True, "revision": SHA, "previous_revision": OLD,
         "commit": {"message": "Scale web to 3 replicas\n\nLonger body.", "author": "Ann <ann@example.com>"}}


def record(**extra):
    return dict({"app": "web", "cluster": "prod", "namespace": "shop", "trigger": "push", "fetch": FETCH}, **extra)


def test_a_successful_push_is_synced_and_healthy_with_what_changed():
    row = report.app_row(record(
        apply={"changed": True, "revision": SHA, "created": [DEPLOY], "configured": [], "pruned": []},
        health={"healthy": True, "status": "Healthy", "resources": [{"ref": DEPLOY, "status": "Healthy"}]},
        info={"record": {"history": [{"revision": OLD, "result": "Succeeded", "trigger": "push", "time": 1700000000.0}]}},
    ))
    assert (row["sync"], row["health"], row["outcome"], row["ok"]) == ("SYNCED", "HEALTHY", "synced", True)
    assert row["short_revision"] == "3f2a9c1"
    assert row["commit"] == "Scale web to 3 replicas"
    assert row["changes"] == {"created": ["Deployment shop/web"]}
    assert row["unhealthy"] == []


def test_drift_without_self_heal_is_out_of_sync_and_shows_the_diff():
    row = report.app_row(record(
        trigger="pull", decision="drift",
        apply={"skipped": True, "changed": False},
        diff={"changed": True, "summary": {"update": 1},
              "resources": [dict(DEPLOY, action="update", diff="-  replicas: 3\n+  replicas: 5\n"),
                            dict(SECRET, action="unchanged", diff="")]},
        health={"healthy": True, "status": "Healthy", "resources": []},
    ))
    assert (row["sync"], row["outcome"]) == ("OUT OF SYNC", "drift")
    assert row["changes"] == {"update": ["Deployment shop/web"]}
    assert [d["object"] for d in row["drift"]] == ["Deployment shop/web"]


def test_drift_healed_is_synced():
    row = report.app_row(record(
        trigger="pull", decision="drift",
        diff={"changed": True, "resources": [dict(DEPLOY, action="update", diff="x")]},
        apply={"changed": True, "revision": SHA, "configured": [DEPLOY]},
        health={"status": "Healthy"},
    ))
    assert (row["sync"], row["outcome"]) == ("SYNCED", "healed")
    assert row["changes"] == {"configured": ["Deployment shop/web"]}


def test_nothing_new_is_unchanged_and_synced():
    row = report.app_row(record(trigger="pull", decision="in sync",
                                diff={"changed": False, "resources": [dict(DEPLOY, action="unchanged")]},
                                health={"status": "Healthy"}))
    assert (row["sync"], row["health"], row["outcome"]) == ("SYNCED", "HEALTHY", "unchanged")
    assert row["changes"] == {} and row["drift"] == []


def test_check_mode_says_would():
    row = report.app_row(record(check_mode=True, diff={"changed": True, "resources": [dict(DEPLOY, action="update")]},
                                apply={"changed": True, "revision": SHA, "configured": [DEPLOY]}))
    assert (row["sync"], row["outcome"]) == ("OUT OF SYNC", "would sync")


def test_a_rollback_is_out_of_sync_and_reports_the_rollback_health():
    row = report.app_row(record(
        apply={"changed": True, "revision": SHA, "configured": [DEPLOY]},
        health={"failed": True, "status": "Degraded",
                "resources": [{"ref": DEPLOY, "status": "Degraded", "message": "ProgressDeadlineExceeded"}]},
        error={"step": "health", "msg": "Deployment shop/web: ProgressDeadlineExceeded"},
        rollback={"revision": OLD, "apply": {"changed": True}, "health": {"healthy": True, "status": "Healthy"}},
    ))
    assert (row["sync"], row["health"], row["outcome"], row["ok"]) == ("OUT OF SYNC", "HEALTHY", "rolled back", False)
    assert row["rollback"] == {"revision": OLD, "short_revision": "a1b2c3d", "ok": True, "message": ""}
    assert report.failure_lines([row]) == [
        "web (cluster prod): failed at health: Deployment shop/web: ProgressDeadlineExceeded; rolled back to a1b2c3d"]


def test_a_failed_health_without_rollback_lists_the_unhealthy_objects():
    row = report.app_row(record(
        apply={"changed": True, "revision": SHA, "configured": [DEPLOY]},
        health={"failed": True, "status": "Degraded",
                "resources": [{"ref": DEPLOY, "status": "Degraded", "message": "0 of 2 available"}]},
        error={"step": "health", "msg": "not healthy"},
    ))
    assert (row["sync"], row["health"], row["outcome"]) == ("SYNCED", "DEGRADED", "failed")
    assert row["unhealthy"] == [{"object": "Deployment shop/web", "status": "Degraded", "message": "0 of 2 available"}]


def test_an_unreachable_repo_is_failed_and_unknown():
    row = report.app_row(record(fetch={"failed": True, "msg": "cannot reach repo"},
                                error={"step": "fetch", "msg": "cannot reach https://git.example.com/x.git"}))
    assert (row["sync"], row["health"], row["outcome"]) == ("UNKNOWN", "UNKNOWN", "failed")
    assert report.failure_lines([row]) == ["web (cluster prod): failed at fetch: cannot reach https://git.example.com/x.git"]


def test_suspended_app_is_reported_as_skipped():
    row = report.app_row({"app": "web", "cluster": "prod", "skipped": "suspended", "suspended": True})
    assert (row["outcome"], row["sync"], row["ok"]) == ("suspended", "UNKNOWN", True)
    summary = report.summarize([row])
    assert summary["skipped"] == 1 and summary["failed"] == 0


def test_build_counts_and_sorts():
    now = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    built = report.build([
        record(app="b", apply={"changed": True, "revision": SHA, "created": [DEPLOY]}, health={"status": "Healthy"}),
        record(app="a", error={"step": "render", "msg": "bad.yaml: missing kind"}),
    ], mode="push", now=now)
    assert [r["app"] for r in built["apps"]] == ["a", "b"]
    assert built["generated"] == "2030-01-02T03:04:05Z"
    assert built["summary"]["failed"] == 1 and built["summary"]["synced"] == 1
    assert built["failures"] == ["a (cluster prod): failed at render: bad.yaml: missing kind"]


def test_html_is_self_contained_escaped_and_shows_each_row(tmp_path):
    built = report.build([
        record(app="web", apply={"changed": True, "revision": SHA, "created": [DEPLOY]}, health={"status": "Healthy"},
               info={"record": {"history": [{"revision": SHA, "result": "Succeeded", "trigger": "push", "time": 1700000000.0}]}}),
        record(app="api", fetch=dict(FETCH, commit={"message": "<script>alert(1)</script>"}),
               decision="drift", diff={"changed": True, "resources": [dict(DEPLOY, action="update", diff="+  replicas: 5")]}),
    ], mode="reconcile")
    paths = report.write(str(tmp_path / "out"), built)
    page = open(paths["html"], encoding="utf-8").read()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http://" not in page and "https://" not in page  # no external assets
    assert page.count('<tr class="app"') == 2
    assert "OUT OF SYNC" in page and "3f2a9c1" in page and "2023-11-14 22:13:20Z" in page
    assert json.load(open(paths["json"]))["summary"]["apps"] == 2
    assert sorted(os.listdir(tmp_path / "out")) == ["report.html", "report.json"]


def test_a_failed_step_the_role_did_not_note_still_fails_the_row():
    row = report.app_row(record(fetch={"failed": True, "msg": "listing the refs failed"}))
    assert (row["outcome"], row["ok"], row["failed_step"]) == ("failed", False, "fetch")


def test_no_healthy_revision_to_go_back_to_is_said_not_hidden():
    why = "no revision of web other than 3f2a9c1 was recorded healthy in its history"
    row = report.app_row(record(
        apply={"changed": True, "revision": SHA, "configured": [DEPLOY]},
        health={"failed": True, "status": "Degraded", "resources": [{"ref": DEPLOY, "status": "Degraded"}]},
        error={"step": "health", "msg": "Deployment shop/web: ProgressDeadlineExceeded"},
        rollback={"revision": "", "apply": {}, "health": {}, "msg": why},
    ))
    assert (row["outcome"], row["health"], row["ok"]) == ("failed", "DEGRADED", False)
    assert row["rollback"] == {"revision": "", "short_revision": "", "ok": False, "message": why}
    assert report.failure_lines([row]) == [
        "web (cluster prod): failed at health: Deployment shop/web: ProgressDeadlineExceeded; not rolled back: " + why]
    page = report.render_html(report.build([record(error={"step": "health", "msg": "x"},
                                                   rollback={"revision": "", "msg": why})], mode="push"))
    assert "Not rolled back: " + why in page and "Rolled back to" not in page


def test_the_history_shows_the_health_of_each_sync():
    history = [
        {"revision": OLD, "result": "Succeeded", "trigger": "push", "time": 1700000300.0, "rollback": True,
         "rollback_of": SHA, "health": "Healthy", "health_time": 1700000320.0},
        {"revision": SHA, "result": "Succeeded", "trigger": "push", "time": 1700000200.0, "rollback": False,
         "health": "Degraded", "health_time": 1700000260.0},
        {"revision": OLD, "result": "Succeeded", "trigger": "push", "time": 1700000000.0, "rollback": False},
    ]
    row = report.app_row(record(info={"record": {"history": history}}))
    assert [h.get("health") for h in row["history"]] == ["Healthy", "Degraded", None]
    page = report.render_html(report.build([record(info={"record": {"history": history}})], mode="push"))
    cells = [cell.split("</td>")[0] for cell in page.split('<td class="health">')[1:]]
    # oldest first: nobody waited, then the degraded commit, then the healthy rollback to the old one
    assert ["DEGRADED" in c for c in cells] == [False, True, False]
    assert "-" in cells[0] and "HEALTHY" in cells[2]
    assert "rollback of <code>3f2a9c1</code>" in page


def test_the_identity_an_app_acted_as_is_on_its_row_its_line_and_the_page():
    from ansible_collections.gitops.k8s.plugins.module_utils.sync.tenancy import identity_fields

    acted = record(apply={"changed": True, "revision": SHA, "created": [DEPLOY]}, health={"status": "Healthy"},
                   **identity_fields("system:serviceaccount:shop:deployer", "team-shop"))
    own = record(app="api", apply={"changed": True, "revision": SHA, "created": [DEPLOY]}, health={"status": "Healthy"},
                 **identity_fields(None, None))
    rows = [report.app_row(acted), report.app_row(own)]
    assert [(r["identity"], r["service_account"], r["project"]) for r in rows] == [
        ("system:serviceaccount:shop:deployer", "shop/deployer", "team-shop"), (None, None, None)]
    assert report.status_lines(rows) == [
        "web@prod: SYNCED, HEALTHY, synced at 3f2a9c1 (Scale web to 3 replicas) as shop/deployer",
        "api@prod: SYNCED, HEALTHY, synced at 3f2a9c1 (Scale web to 3 replicas)"]
    page = report.render_html(report.build([acted, own], mode="push"))
    assert page.count('<span class="identity">as shop/deployer</span>') == 1
