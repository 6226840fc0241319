"""The local cluster's process checks (tests/cluster/localcluster.py), on real processes."""

import copy
import shutil
import subprocess

import localcluster

SLEEP = shutil.which("sleep")


def test_a_process_that_was_just_started_is_alive():
    """Right after exec the kernel may not have set up the new command line yet (it reads empty);
    a component checked at that moment is starting, not dead."""
    dead = 0
    for _ in range(50):
        proc = subprocess.Popen([SLEEP, "30"])
        try:
            dead += not localcluster._alive(proc.pid, SLEEP)
        finally:
            proc.kill()
            proc.wait()
    assert dead == 0, "%d of 50 freshly started processes were taken for dead" % dead


def test_an_exited_process_is_not_alive_even_before_it_is_reaped():
    proc = subprocess.Popen([SLEEP, "30"])
    proc.kill()
    try:
        # a zombie (killed, not yet waited for) has an empty command line too
        localcluster.wait_for("the killed process to become a zombie", lambda: _state(proc.pid) == "Z", 30)
        assert not localcluster._alive(proc.pid, SLEEP)
    finally:
        proc.wait()
    assert not localcluster._alive(proc.pid, SLEEP)


def test_a_pid_running_another_program_is_not_ours():
    proc = subprocess.Popen([SLEEP, "30"])
    try:
        localcluster.wait_for("sleep to have its command line", lambda: _cmdline(proc.pid), 30)
        assert not localcluster._alive(proc.pid, "/usr/bin/etcd")
    finally:
        proc.kill()
        proc.wait()


def test_a_cluster_started_with_other_flags_or_nodes_is_outdated():
    wanted = localcluster._config("/cache/bin/k8s-v1-abc")
    assert localcluster._changes(wanted, wanted) == []
    older = copy.deepcopy(wanted)
    older["commands"]["kube-apiserver"].remove("--service-cluster-ip-range=" + localcluster.SERVICE_CIDR)
    older["nodes"][0]["status"]["allocatable"]["pods"] = "250"
    assert localcluster._changes(older, wanted) == ["kube-apiserver flags", "nodes"]
    rebuilt = localcluster._config("/cache/bin/k8s-v1-def")
    assert localcluster._changes(wanted, rebuilt) == ["versions"]
    assert localcluster._changes(None, wanted)[0].startswith("everything")


def _cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as handle:
        return handle.read()


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
