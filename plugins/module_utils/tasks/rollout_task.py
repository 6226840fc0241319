# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Options of gitops.k8s.rollout_plan and gitops.k8s.rollout_wave and their calls into
sync/rollout.py (shared by the modules and their action plugins). Both are pure: the waves of
``gitops_rollout`` over the run's cluster hosts, and whether a wave passed, from what
gitops.k8s.cluster_sync returned for each of its clusters."""

from __future__ import annotations

from ..report.rollout_report import cluster_outcome
from ..sync.durations import describe
from ..sync.rollout import plan_waves, wave_verdict

PLAN_ARGSPEC = {
    # not required: plan_waves says what is wrong with a missing gitops_rollout, naming it
    "waves": {"type": "raw"},
    "hosts": {"type": "list", "elements": "str", "required": True},
    "groups": {"type": "dict", "default": {}},
}

WAVE_ARGSPEC = {
    "wave": {"type": "dict", "required": True},
    "syncs": {"type": "dict", "default": {}},
}


def plan_task(call):
    """The waves, the hosts in wave order, and the batch sizes for the play's ``serial``."""
    params = call.params
    waves = plan_waves(params["waves"], params["hosts"], params["groups"])
    return {
        "changed": False,
        "waves": waves,
        "order": [host for wave in waves for host in wave["hosts"]],
        # an empty wave (earlier waves took its clusters) is no batch
        "serial": [len(wave["hosts"]) for wave in waves if wave["hosts"]],
        "hosts": {host: {"wave": wave["number"], "bake": wave["bake"]} for wave in waves for host in wave["hosts"]},
        "lines": [_wave_line(wave) for wave in waves],
    }


def _wave_line(wave):
    hosts = ", ".join(wave["hosts"]) or "no cluster (the waves before took them)"
    extra = [("bake %s" % describe(wave["bake"])) if wave["bake"] else "",
             ("%d may fail" % wave["max_failures"]) if wave["max_failures"] else ""]
    return "%s: %s%s" % (wave["name"], hosts, "".join("; " + text for text in extra if text))


def wave_task(call):
    """Whether the wave passed: each of its clusters' apps synced and healthy (through the bake).
    ``syncs``: cluster host -> its cluster_sync result; a host without one failed."""
    wave, syncs = call.params["wave"], call.params["syncs"]
    outcomes, reasons = {}, {}
    for host in wave["hosts"]:
        sync = syncs.get(host)
        if not isinstance(sync, dict):
            continue
        if sync.get("failed") and not sync.get("results"):
            outcomes[host], reasons[host] = False, sync.get("msg") or "the sync task failed"
        else:
            outcomes[host], reasons[host] = cluster_outcome(sync.get("results") or [])
    verdict = wave_verdict(wave, outcomes)
    lines = [verdict["message"]] + ["%s: %s" % (host, reasons[host]) for host in verdict["failed"] if reasons.get(host)]
    # not ``failed``: Ansible would take a list of clusters for the task's own failure
    return {"changed": False, "passed": verdict["passed"], "failed_clusters": verdict["failed"],
            "wave": wave["name"], "reasons": reasons, "msg": " | ".join(lines)}
