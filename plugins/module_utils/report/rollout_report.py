# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""What the report says of a rollout (playbooks/rollout.yml): how each wave went, why the rollout
stopped, and which revision each cluster runs -- those it reached from their results, those it
did not from their in-cluster records, read when the run ended."""

from __future__ import annotations

from ..sync.rollout import wave_verdict
from .run_report import app_row, short

# A cluster passes when each of its apps is OK and healthy: what a wave asks of it.
PASSING_HEALTH = ("HEALTHY", "SUSPENDED")


def cluster_outcome(results):
    """(passed, why not): the results of one cluster's cluster_sync run (app_result.app_result)."""
    why = []
    for row in (app_row(result) for result in results):
        if row["outcome"] == "suspended":
            continue
        if not row["ok"]:
            why.append("%s failed%s: %s" % (row["app"], " at %s" % row["failed_step"] if row["failed_step"] else "",
                                            row["message"].splitlines()[0] if row["message"] else ""))
        elif row["health"] not in PASSING_HEALTH:
            why.append("%s is %s" % (row["app"], row["health"]))
    return not why, "; ".join(why)


def section(records, rollout):
    """The report's ``rollout``: ``rollout`` is {waves (rollout_plan's), reached (the cluster hosts
    that ran their wave), kept ({host: the records app_info read} of those it did not reach)}."""
    by_cluster = {}
    for record in records:
        by_cluster.setdefault(record.get("cluster"), []).append(record)
    reached = set(rollout.get("reached") or ())
    kept = rollout.get("kept") or {}
    waves, clusters, stopped = [], [], None
    for wave in rollout.get("waves") or ():
        ran = [host for host in wave["hosts"] if host in reached]
        outcomes = {host: cluster_outcome(by_cluster.get(host, []))[0] for host in ran}
        if stopped or (wave["hosts"] and not ran):
            state, message = "not started", "%s: not started%s" % (wave["name"], " (%s)" % stopped if stopped else "")
        else:
            verdict = wave_verdict(wave, outcomes)
            state, message = "passed" if verdict["passed"] else "failed", verdict["message"]
            if not verdict["passed"]:
                stopped = "the rollout stopped at %s" % wave["name"]
        waves.append({"number": wave["number"], "name": wave["name"], "hosts": wave["hosts"], "state": state,
                      "message": message})
        for host in wave["hosts"]:
            clusters.append(_cluster(host, wave, by_cluster.get(host, []), outcomes.get(host), kept.get(host)))
    return {"waves": waves, "clusters": clusters, "stopped": stopped}


def _cluster(host, wave, records, passed, kept):
    if passed is None:
        state = "not reached: keeps its revision"
        # app_info's records of the namespace; only this host's, when they say which host wrote them
        runs = {r.get("app"): r.get("revision") for r in kept or () if r.get("cluster") in (None, host)}
    else:
        state = "passed" if passed else "failed"
        # the record after the run: what runs now (the new revision, or the one a rollback restored)
        runs = {r.get("app"): ((r.get("info") or {}).get("record") or {}).get("revision") for r in records}
        if any((r.get("rollback") or {}).get("apply") for r in records):
            state += ", rolled back"
    return {"cluster": host, "wave": wave["number"], "state": state,
            "runs": {app: revision for app, revision in sorted(runs.items()) if app}}


def lines(rollout):
    """The summary's lines: one per wave, then one per cluster with what it runs."""
    out = ["rollout: %s" % wave["message"] for wave in rollout["waves"]]
    if rollout["stopped"]:
        out.append("rollout: %s; the later waves keep their revision" % rollout["stopped"])
    for cluster in rollout["clusters"]:
        runs = ", ".join("%s at %s" % (app, short(revision) or "nothing") for app, revision in cluster["runs"].items())
        out.append("rollout: %s (wave %d, %s) runs %s" % (cluster["cluster"], cluster["wave"], cluster["state"],
                                                          runs or "no application"))
    return out
