"""What a person reads of held changes and of a rollout: the rows, the summary lines, the waves."""

from ansible_collections.gitops.k8s.plugins.module_utils.report import rollout_report, run_report as report
from ansible_collections.gitops.k8s.plugins.module_utils.sync.rollout import plan_waves
from ansible_collections.gitops.k8s.plugins.module_utils.tasks.ansible_module import Call
from ansible_collections.gitops.k8s.plugins.module_utils.tasks.rollout_task import plan_task, wave_task

NEW = "3f2a9c1d" + "0" * 32
OLD = "a1b2c3d4" + "0" * 32
HEALTHY = {"healthy": True, "status": "Healthy", "resources": []}
WHY = 'inside deny window gitops_windows[0] ("0 18 * * 5" for 2d12h, Europe/Berlin) until 2026-03-30 06:00 CEST'


def result(cluster, app="web", runs=NEW, **extra):
    return dict({"app": app, "cluster": cluster, "namespace": "shop", "trigger": "push", "decision": "sync",
                 "fetch": {"revision": NEW}, "health": HEALTHY, "info": {"record": {"revision": runs}}}, **extra)


def failed(cluster, rolled_back_to=None):
    extra = {"error": {"step": "health", "msg": "Deployment shop/web: 0 of 2 available"},
             "health": {"healthy": False, "status": "Degraded", "resources": []}}
    if rolled_back_to:
        extra["rollback"] = {"revision": rolled_back_to, "apply": {"changed": True}, "health": HEALTHY}
    return result(cluster, runs=rolled_back_to or NEW, **extra)


def test_a_held_change_says_why_and_until_when_and_is_counted():
    row = report.app_row(result("eu", decision="held", trigger="pull", note=WHY,
                                held={"by": "window", "reason": WHY, "until": 1774843200.0},
                                diff={"changed": True, "resources": [{"kind": "ConfigMap", "namespace": "shop",
                                                                      "name": "web", "action": "update"}]}))
    assert (row["outcome"], row["sync"], row["ok"], row["message"]) == ("held", "OUT OF SYNC", True, WHY)
    assert report.status_lines([row]) == ["web@eu: OUT OF SYNC, HEALTHY, held at 3f2a9c1: " + WHY]
    assert report.summarize([row])["held"] == 1
    assert "Held by a window: " in report.render_html(report.build([result("eu", decision="held", note=WHY,
                                                                           held={"by": "window", "reason": WHY,
                                                                                 "until": None})], "reconcile"))


def test_a_push_through_a_window_says_so_in_its_line_and_its_history():
    row = report.app_row(result("eu", override="hotfix INC-42", apply={"changed": True, "revision": NEW},
                                info={"record": {"history": [{"revision": NEW, "override": "hotfix INC-42"}]}}))
    assert report.status_lines([row])[0].endswith("[window overridden: hotfix INC-42]")
    assert "window overridden: hotfix INC-42" in report.render_html(
        {"apps": [row], "summary": report.summarize([row]), "mode": "push", "check_mode": False, "generated": "now"})


def test_a_cluster_passes_when_every_app_is_ok_and_healthy_suspended_ones_aside():
    assert rollout_report.cluster_outcome([result("c1"), result("c1", app="cron", suspended=True, skipped="suspended")]) \
        == (True, "")
    assert rollout_report.cluster_outcome([failed("c1")]) == (
        False, "web failed at health: Deployment shop/web: 0 of 2 available")
    progressing = result("c1", health={"healthy": False, "status": "Progressing", "resources": []})
    assert rollout_report.cluster_outcome([progressing]) == (False, "web is PROGRESSING")


def test_the_rollout_says_how_each_wave_went_why_it_stopped_and_what_each_cluster_runs():
    waves = plan_waves([{"hosts": "c1"}, {"hosts": "50%"}, {"hosts": "100%"}], ["c1", "c2", "c3", "c4"])
    section = rollout_report.section([failed("c1", rolled_back_to=OLD)], {
        "waves": waves, "reached": ["c1"],
        "kept": {host: [{"app": "web", "revision": OLD, "cluster": host}, {"app": "other-host", "revision": NEW,
                                                                           "cluster": "elsewhere"}]
                 for host in ("c2", "c3", "c4")}})
    assert section["stopped"] == "the rollout stopped at wave 1 (c1)"
    assert [(w["state"], w["message"]) for w in section["waves"]] == [
        ("failed", "wave 1 (c1) failed: 1 of 1 cluster failed: c1; none may fail"),
        ("not started", "wave 2 (50%): not started (the rollout stopped at wave 1 (c1))"),
        ("not started", "wave 3 (100%): not started (the rollout stopped at wave 1 (c1))")]
    assert [(c["cluster"], c["state"], c["runs"]) for c in section["clusters"]] == [
        ("c1", "failed, rolled back", {"web": OLD}), ("c2", "not reached: keeps its revision", {"web": OLD}),
        ("c3", "not reached: keeps its revision", {"web": OLD}), ("c4", "not reached: keeps its revision", {"web": OLD})]
    lines = rollout_report.lines(section)
    assert "rollout: the rollout stopped at wave 1 (c1); the later waves keep their revision" in lines
    assert "rollout: c1 (wave 1, failed, rolled back) runs web at a1b2c3d" in lines
    html = report.render_html(dict(report.build([failed("c1", rolled_back_to=OLD)], "push"), rollout=section))
    assert 'id="rollout"' in html and "the rollout stopped at wave 1 (c1)" in html


def test_a_wave_passes_within_its_max_unavailable_and_names_why_a_cluster_failed():
    [wave] = plan_waves([{"hosts": "100%", "max_unavailable": 1}], ["c1", "c2", "c3"])
    verdict = wave_task(Call({"wave": wave, "syncs": {"c1": {"results": [result("c1")]},
                                                      "c2": {"results": [failed("c2")]},
                                                      "c3": {"results": [result("c3")]}}}))
    assert (verdict["passed"], verdict["failed_clusters"], verdict["changed"]) == (True, ["c2"], False)
    assert "failed" not in verdict  # Ansible would fail the task on it
    assert verdict["msg"] == ("wave 1 (100%) passed: 1 of 3 clusters failed: c2; at most 1 may fail"
                              " | c2: web failed at health: Deployment shop/web: 0 of 2 available")
    lost = wave_task(Call({"wave": wave, "syncs": {"c1": {"results": [result("c1")]}}}))
    assert not lost["passed"] and lost["failed_clusters"] == ["c2", "c3"]


def test_the_plan_gives_the_play_its_order_and_batch_sizes():
    planned = plan_task(Call({"waves": [{"hosts": "canary", "bake": "5m"}, {"hosts": "canary"}, {"hosts": "100%"}],
                              "hosts": ["a", "b", "c"], "groups": {"canary": ["c"]}}))
    assert planned["order"] == ["c", "a", "b"] and planned["serial"] == [1, 2]
    assert planned["hosts"]["c"] == {"wave": 1, "bake": 300.0} and planned["hosts"]["a"]["wave"] == 3
    assert planned["lines"] == ["wave 1 (canary): c; bake 5m", "wave 2 (canary): no cluster (the waves before took them)",
                                "wave 3 (100%): a, b"]
