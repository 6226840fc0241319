"""Rollouts, promotion gates and deployment windows, end to end through the playbooks.

Cluster hosts are namespaces of the local control plane: each host keeps its application and its
records in a namespace of its own (``gitops_inventory_namespace``), so an application has the
same name on every host, as it has on real clusters, and a promotion gate reads the record of the
application on another host. Time for windows and gates is injected with ``gitops_clock``.
"""

import os
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import yaml

from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import read_record
from test_push_reconcile import GitRepo, Run, app_files, live, scale

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOKS = os.path.join(REPO_ROOT, "playbooks")
BERLIN = ZoneInfo("Europe/Berlin")
# A weekend freeze, Friday 18:00 to Monday 06:00 Berlin time; on 2026-03-29 the clocks spring forward.
FREEZE = {"kind": "deny", "schedule": "0 18 * * 5", "duration": "2d12h", "timezone": "Europe/Berlin"}
NEVER_READY = {"gitops.k8s.test/never-ready": "true"}


def berlin(*when):
    return datetime(*when, tzinfo=BERLIN).timestamp()


class Fleet:
    """Cluster hosts that are namespaces of the local cluster, each with the app ``web``."""

    def __init__(self, ansible, kubeconfig, cluster, namespace, workdir, hosts, app=None, groups=None, host_vars=None):
        self.ansible, self.kubeconfig, self.cluster = ansible, kubeconfig, cluster
        self.namespace, self.workdir, self.hosts = namespace, workdir, hosts
        self.app, self.groups, self.host_vars = app or {}, groups or {}, host_vars or {}
        self.runs = 0

    def ns(self, host):
        return "%s-%s" % (self.namespace, host)

    def inventory(self):
        hosts = {}
        for host in self.hosts:
            apps = self.app(host) if callable(self.app) else [dict(self.app, namespace=self.ns(host))]
            hosts[host] = dict({"ansible_connection": "local", "gitops_cluster": {"kubeconfig": self.kubeconfig},
                                "gitops_inventory_namespace": self.ns(host), "gitops_apps": apps},
                               **self.host_vars.get(host, {}))
        path = os.path.join(self.workdir, "fleet-%d.yml" % self.runs)
        children = {name: {"hosts": {host: {} for host in members}} for name, members in self.groups.items()}
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump({"all": {"hosts": hosts, "children": children}}, handle)
        return path

    def run(self, playbook, **extra):
        self.runs += 1
        report_dir = os.path.join(self.workdir, "report-%d" % self.runs)
        proc = self.ansible.playbook(os.path.join(PLAYBOOKS, playbook + ".yml"), inventory=self.inventory(),
                                     extra_vars=dict(extra, gitops_report_dir=report_dir))
        return Run(proc, report_dir)

    def greeting(self, host):
        return live(self.cluster, "ConfigMap", self.ns(host), "web-config")["data"]["greeting"]

    def record(self, host, app="web"):
        return read_record(self.cluster, app, namespace=self.ns(host))

    def row(self, run, host, app="web"):
        rows = [r for r in run.report["apps"] if (r["cluster"], r["app"]) == (host, app)]
        assert rows, run.out
        return rows[0]

    def delete(self):
        for host in self.hosts:
            self.cluster.delete({"apiVersion": "v1", "kind": "Namespace", "name": self.ns(host)})


def sync_started(entry):
    return entry["time"] - entry["duration"]


WAVES = [{"hosts": "canary", "bake": 2}, {"hosts": "50%"}, {"hosts": "100%"}]


def test_a_good_commit_reaches_all_four_clusters_in_wave_order_and_one_that_never_gets_ready_stops_at_the_canary(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    good = repo.commit(app_files("web", greeting="good"), "Good")
    hosts = ("c1", "c2", "c3", "c4")
    fleet = Fleet(ansible, kubeconfig, cluster, namespace, workdir, hosts, groups={"canary": ["c4"]},
                  app={"name": "web", "repo": repo.url, "path": "web", "rollback": True, "wait": {"timeout": 90}})
    try:
        rolled = fleet.run("rollout", gitops_rollout=WAVES)
        assert rolled.rc == 0, rolled.out
        for host in hosts:
            assert fleet.greeting(host) == "good" and fleet.record(host)["revision"] == good
        # the canary c4 first, then 50% (c1: two of four with the canary), then the rest
        synced = {host: fleet.record(host)["history"][0] for host in hosts}
        assert synced["c4"]["health_time"] + 2 <= sync_started(synced["c1"]), synced
        assert synced["c1"]["health_time"] <= min(sync_started(synced["c2"]), sync_started(synced["c3"])), synced
        for text in ("wave 1 (canary) passed: 1 cluster healthy", "wave 2 (50%) passed: 1 cluster healthy",
                     "wave 3 (100%) passed: 2 clusters healthy", "rollout: c4 (wave 1, passed) runs web at %s" % good[:7],
                     "rollout: c3 (wave 3, passed) runs web at %s" % good[:7]):
            assert text in rolled.out, text
        assert [w["state"] for w in rolled.report["rollout"]["waves"]] == ["passed"] * 3

        bad = repo.commit(app_files("web", greeting="stuck", deadline=10, labels=NEVER_READY), "Pods never ready")
        stopped = fleet.run("rollout", gitops_rollout=WAVES)
        assert stopped.rc != 0, stopped.out
        canary = fleet.record("c4")["history"]
        assert canary[0]["rollback"] and (canary[0]["revision"], canary[0]["rollback_of"]) == (good, bad), canary
        assert fleet.greeting("c4") == "good"
        for host in ("c1", "c2", "c3"):  # never started: their revision and their history as they were
            assert fleet.record(host)["history"][0] == synced[host] and fleet.greeting(host) == "good"
        rollout = stopped.report["rollout"]
        assert rollout["stopped"] == "the rollout stopped at wave 1 (canary)", rollout
        assert [w["state"] for w in rollout["waves"]] == ["failed", "not started", "not started"]
        assert {c["cluster"]: c["runs"]["web"] for c in rollout["clusters"]} == dict.fromkeys(hosts, good)
        for text in ("wave 1 (canary) failed: 1 of 1 cluster failed: c4; none may fail",
                     "c4: web failed at health",
                     "rollout: the rollout stopped at wave 1 (canary); the later waves keep their revision",
                     "rollout: c4 (wave 1, failed, rolled back) runs web at %s" % good[:7],
                     "rollout: c1 (wave 2, not reached: keeps its revision) runs web at %s" % good[:7]):
            assert text in stopped.out, text
        assert fleet.row(stopped, "c4")["outcome"] == "rolled back"
    finally:
        fleet.delete()


PROBE_HEALTH = [{"kind": "ConfigMap", "degraded": "data.state == 'crashed'", "healthy": "data.state != 'crashed'"}]


def probe_files(greeting):
    files = app_files("web", greeting=greeting)
    files["web/probe.yaml"] = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe"},
                                "data": {"state": "ok"}}]
    return files


def test_a_commit_that_turns_degraded_during_the_bake_fails_the_wave_and_is_rolled_back(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    good = repo.commit(probe_files("good"), "Good")
    hosts = ("c1", "c2", "c3", "c4")
    fleet = Fleet(ansible, kubeconfig, cluster, namespace, workdir, hosts, groups={"canary": ["c1"]},
                  app={"name": "web", "repo": repo.url, "path": "web", "rollback": True, "wait": {"timeout": 90},
                       "custom_health": PROBE_HEALTH})
    try:
        assert fleet.run("push").rc == 0
        bad = repo.commit(probe_files("crashes later"), "Healthy first, then a crash")
        runs = []
        rollout = threading.Thread(target=lambda: runs.append(fleet.run(
            "rollout", gitops_rollout=[{"hosts": "canary", "bake": 120}, {"hosts": "50%"}, {"hosts": "100%"}])))
        rollout.start()
        try:
            deadline = time.monotonic() + 120
            while True:  # the canary synced the commit and found it healthy: its bake has begun
                entry = (fleet.record("c1") or {}).get("history", [{}])[0]
                if entry.get("revision") == bad and entry.get("health") == "Healthy":
                    break
                assert time.monotonic() < deadline and rollout.is_alive(), "the canary never became healthy"
                time.sleep(0.2)
            cluster.request("PATCH", "/api/v1/namespaces/%s/configmaps/probe" % fleet.ns("c1"),
                            body={"data": {"state": "crashed"}}, content_type="application/merge-patch+json")
            began = time.monotonic()
        finally:
            rollout.join()
        [run] = runs
        assert run.rc != 0, run.out
        assert time.monotonic() - began < 100, "the bake ran its whole length: the Degraded was not seen"
        row = fleet.row(run, "c1")
        assert (row["outcome"], row["failed_step"]) == ("rolled back", "bake"), row
        assert "ConfigMap %s/probe turned Degraded" % fleet.ns("c1") in row["message"], row["message"]
        assert "into the 2m bake" in row["message"], row["message"]
        history = fleet.record("c1")["history"]
        assert history[0]["rollback"] and history[0]["revision"] == good and history[0]["health"] == "Healthy"
        assert history[1]["revision"] == bad and history[1]["health"] == "Degraded", history[:2]
        assert live(cluster, "ConfigMap", fleet.ns("c1"), "probe")["data"]["state"] == "ok"
        assert fleet.greeting("c1") == "good"
        for host in ("c2", "c3", "c4"):
            assert fleet.record(host)["revision"] == good and fleet.greeting(host) == "good"
        assert run.report["rollout"]["stopped"] == "the rollout stopped at wave 1 (canary)"
    finally:
        fleet.delete()


def test_a_promotion_gate_holds_prod_until_staging_was_healthy_long_enough_then_the_next_reconcile_applies(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    first = repo.commit(app_files("web", greeting="one"), "One")
    app = {"name": "web", "repo": repo.url, "path": "web"}

    def apps(host):
        gate = {"promote_after": {"cluster": "staging", "healthy_for": 3600}} if host == "prod" else {}
        return [dict(app, namespace=fleet.ns(host), **gate)]

    fleet = Fleet(ansible, kubeconfig, cluster, namespace, workdir, ("staging", "prod"), app=apps)
    try:
        assert fleet.run("push").rc == 0  # a push is a person's decision: no gate holds it
        assert fleet.record("prod")["revision"] == first
        second = repo.commit(app_files("web", greeting="two"), "Two")
        assert fleet.run("reconcile", gitops_hosts="staging").rc == 0
        healthy = fleet.record("staging")["history"][0]
        assert (healthy["revision"], healthy["health"]) == (second, "Healthy")

        held = fleet.run("reconcile", gitops_hosts="prod", gitops_clock=healthy["health_time"] + 12 * 60)
        assert held.rc == 0, held.out
        row = fleet.row(held, "prod")
        assert row["outcome"] == "held" and row["held"]["by"] == "promotion", row
        assert row["message"].startswith("waiting for staging: healthy for 12 of 60 minutes (opens "), row["message"]
        assert row["held"]["until"] == healthy["health_time"] + 3600
        assert "web@prod: OUT OF SYNC, HEALTHY, held at %s (Two): waiting for staging" % second[:7] in held.out
        assert fleet.greeting("prod") == "one" and fleet.record("prod")["revision"] == first

        opened = fleet.run("reconcile", gitops_hosts="prod", gitops_clock=healthy["health_time"] + 3601)
        assert opened.rc == 0, opened.out
        assert fleet.row(opened, "prod")["outcome"] == "synced"
        assert fleet.greeting("prod") == "two" and fleet.record("prod")["revision"] == second
    finally:
        fleet.delete()


def test_a_deny_window_holds_a_new_commit_and_self_heal_until_it_closes_across_a_dst_change_and_refuses_a_push(
        ansible, kubeconfig, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    repo.commit(dict(app_files("web", greeting="one"), **app_files("kept")), "One")

    def apps(host):
        ns = fleet.ns(host)
        return [{"name": "web", "repo": repo.url, "path": "web", "namespace": ns},
                {"name": "kept", "repo": repo.url, "path": "kept", "namespace": ns, "self_heal": True}]

    fleet = Fleet(ansible, kubeconfig, cluster, namespace, workdir, ("eu",), app=apps,
                  host_vars={"eu": {"gitops_windows": [FREEZE]}})
    try:
        assert fleet.run("push", gitops_clock=berlin(2026, 3, 27, 12)).rc == 0  # Friday noon: no freeze yet
        second = repo.commit(dict(app_files("web", greeting="two"), **app_files("kept")), "Two")
        scale(cluster, fleet.ns("eu"), "kept", 5)

        # Monday 05:30 CEST, the morning after the clocks sprang forward: the freeze ends at 06:00
        held = fleet.run("reconcile", gitops_clock=berlin(2026, 3, 30, 5, 30))
        assert held.rc == 0, held.out
        why = 'inside deny window gitops_windows[0] ("0 18 * * 5" for 2d12h, Europe/Berlin) until 2026-03-30 06:00 CEST'
        for app in ("web", "kept"):
            row = fleet.row(held, "eu", app)
            assert (row["outcome"], row["sync"], row["message"]) == ("held", "OUT OF SYNC", why), row
            assert row["held"]["until"] == berlin(2026, 3, 30, 6)
        assert [d["object"] for d in fleet.row(held, "eu", "kept")["drift"]] == ["Deployment %s/kept" % fleet.ns("eu")]
        assert "web@eu: OUT OF SYNC, HEALTHY, held at %s (Two): %s" % (second[:7], why) in held.out
        assert fleet.greeting("eu") == "one"
        assert live(cluster, "Deployment", fleet.ns("eu"), "kept")["spec"]["replicas"] == 5
        assert held.report["summary"]["held"] == 2

        # 06:30 CEST: 59 hours after the start, the first run after the window applies both. (Adding
        # 60 hours of elapsed time, as Argo CD does, would hold them until 07:00.)
        after = fleet.run("reconcile", gitops_clock=berlin(2026, 3, 30, 6, 30))
        assert after.rc == 0, after.out
        assert (fleet.row(after, "eu", "web")["outcome"], fleet.row(after, "eu", "kept")["outcome"]) == \
            ("synced", "healed")
        assert fleet.greeting("eu") == "two" and fleet.record("eu")["revision"] == second
        assert live(cluster, "Deployment", fleet.ns("eu"), "kept")["spec"]["replicas"] == 2

        third = repo.commit(dict(app_files("web", greeting="three"), **app_files("kept")), "Three")
        saturday = berlin(2026, 4, 4, 12)
        refused = fleet.run("push", gitops_app="web", gitops_clock=saturday)
        assert refused.rc != 0, refused.out
        row = fleet.row(refused, "eu")
        assert (row["outcome"], row["failed_step"]) == ("failed", "window"), row
        assert 'push anyway with -e gitops_override_window="<reason>"' in row["message"]
        assert "web (cluster eu): failed at window: inside deny window" in refused.out
        assert fleet.greeting("eu") == "two"

        forced = fleet.run("push", gitops_app="web", gitops_clock=saturday, gitops_override_window="hotfix INC-42")
        assert forced.rc == 0, forced.out
        assert fleet.greeting("eu") == "three"
        entry = fleet.record("eu")["history"][0]
        assert (entry["revision"], entry["trigger"], entry["override"]) == (third, "push", "hotfix INC-42"), entry
        assert fleet.row(forced, "eu")["override"] == "hotfix INC-42"
        assert "[window overridden: hotfix INC-42]" in forced.out
    finally:
        fleet.delete()
