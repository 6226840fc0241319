"""tests/cluster/localcluster.py: its process checks (on real processes) and its configuration records."""

import copy
import shutil
import subprocess
import time

import pytest

import localcluster

SLEEP = shutil.which("sleep")


def test_a_process_that_was_just_started_is_alive():
    """Right after exec the kernel may not have set up the new command line yet (it reads empty);
    a component checked at that moment is starting, not dead."""
    dead = 0
    for _attempt in range(50):
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


def test_up_reports_a_component_that_exits_at_once_with_its_code_and_log(tmp_path, monkeypatch):
    monkeypatch.setattr(localcluster, "STATE", str(tmp_path))
    crashing = localcluster._start("etcd", ["sh", "-c", "echo 'listen tcp 127.0.0.1:2379: address already in use'; exit 3"])
    starting = localcluster._start("kwok", [SLEEP, "30"])
    try:
        started = time.monotonic()
        with pytest.raises(SystemExit) as stopped:
            localcluster._wait("etcd", lambda: False, {"etcd": crashing, "kwok": starting})
        assert time.monotonic() - started < 30, "seen at once, not at the end of the wait"
        assert "etcd exited (code 3) while waiting for etcd" in str(stopped.value)
        assert "address already in use" in str(stopped.value)
        # a component that runs (even one that has just been started) is waited for
        fresh = localcluster._start("kube-scheduler", [SLEEP, "30"])
        assert localcluster._wait("kwok", lambda: "ready", {"kwok": starting, "kube-scheduler": fresh}) == "ready"
        fresh.kill()
        fresh.wait()
    finally:
        starting.kill()
        starting.wait()


@pytest.mark.parametrize("log, attempts", [
    ("listen tcp 127.0.0.1:40001: bind: address already in use", 2),  # lost its port: other ports are as good
    ("panic: open /var/lib/etcd: permission denied", 1),  # anything else is reported
])
def test_up_starts_again_only_when_a_component_lost_its_port(tmp_path, monkeypatch, log, attempts):
    monkeypatch.setattr(localcluster, "STATE", str(tmp_path))
    (tmp_path / "etcd.log").write_text(log + "\n")
    started = []

    def start_cluster(config):
        started.append(config)
        if len(started) == 1:
            raise localcluster.ComponentExited("etcd", 1, "etcd")
        return "admin.kubeconfig"

    monkeypatch.setattr(localcluster, "_start_cluster", start_cluster)
    if attempts == 2:
        assert localcluster.up() == "admin.kubeconfig"
    else:
        with pytest.raises(SystemExit, match="etcd exited .code 1. while waiting for etcd"):
            localcluster.up()
    assert len(started) == attempts


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
