"""The controller's caches stay bounded: unpacked charts and Git repositories (the engine's
mirrors, git_fetch's default clones) that no run uses any more are evicted, what a run uses is
not, and a mirror fetched every few minutes is packed. Real git and real archives; no cluster."""

import fcntl
import io
import os
import subprocess
import tarfile
import time

from test_push_reconcile import GitRepo, git

from ansible_collections.gitops.k8s.plugins.module_utils.sources import charts as chart_source, git as source
from ansible_collections.gitops.k8s.plugins.module_utils.sources.checkouts import Sources

HOUR, DAY = 3600, 24 * 3600


def aged(path, seconds):
    os.makedirs(path, exist_ok=True)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def chart_archive(folder, version):
    """A chart archive as helm packages it: ``<name>/Chart.yaml`` in a gzipped tar."""
    path = os.path.join(folder, "greeter-%s.tgz" % version)
    text = ("apiVersion: v2\nname: greeter\nversion: %s\n" % version).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("greeter/Chart.yaml")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    return path


def test_unpacked_charts_unused_for_a_week_or_beyond_the_newest_128_are_evicted_never_one_pulled_within_the_hour(
        tmp_path):
    charts = str(tmp_path / "cache" / "charts")
    old = aged(os.path.join(charts, "a" * 64), 8 * DAY)
    in_use = aged(os.path.join(charts, "b" * 64), HOUR / 2)  # pulled by a run half an hour ago
    stale = [aged(os.path.join(charts, "%064x" % i), 2 * HOUR + i) for i in range(130)]

    pulled = chart_source._unpack(chart_archive(str(tmp_path), "1.0.0"), {"repo": "oci://r", "chart": "greeter"},
                                  str(tmp_path / "cache"))

    assert os.path.isfile(os.path.join(pulled["path"], "Chart.yaml"))
    assert not os.path.exists(old), "unused for 8 days"
    assert os.path.isdir(in_use), "pulled within the hour: kept whatever the count"
    # the newest 128: the chart just pulled, the one in use and the 126 most recently used others
    assert [os.path.isdir(path) for path in stale] == [True] * 126 + [False] * 4
    assert not [n for n in os.listdir(charts) if n.startswith(".evicted")]


def test_repositories_unused_for_a_month_are_evicted_unless_a_run_holds_their_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    repo = GitRepo(str(tmp_path))
    sha = repo.commit({"app/cm.yaml": "kind: ConfigMap\n"}, "one")
    sources = Sources()
    path, _info = sources.checkout(sources.resolve(repo.url, "main"))
    mirror = sources.mirror_path(repo.url)
    folder = os.path.dirname(mirror)
    abandoned = aged(os.path.join(folder, "gone-0123456789abcdef.git", "objects"), 31 * DAY)
    held = aged(os.path.join(folder, "held-0123456789abcdef.git"), 31 * DAY)
    aged(os.path.dirname(abandoned), 31 * DAY)
    with open(held + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a run fetching into it right now
        Sources().evict()
        assert not os.path.exists(os.path.dirname(abandoned))
        assert os.path.isdir(held), "a repository whose lock a run holds is never evicted"
        fcntl.flock(lock, fcntl.LOCK_UN)
    Sources().evict()
    assert not os.path.exists(held)
    assert os.path.isdir(os.path.join(mirror, "objects")) and os.path.isdir(path), "used by this run: kept"
    assert git(mirror, "cat-file", "-t", sha) == "commit"


def test_git_fetch_evicts_the_abandoned_repositories_of_its_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    repo = GitRepo(str(tmp_path))
    repo.commit({"app/cm.yaml": "kind: ConfigMap\n"}, "one")
    abandoned = aged(os.path.join(str(tmp_path), "cache", "gitops-k8s", "git", "old-0123456789abcdef"), 40 * DAY)
    result = source.fetch(repo.url)
    assert result["path"].startswith(os.path.join(str(tmp_path), "cache", "gitops-k8s", "git"))
    assert not os.path.exists(abandoned)
    assert os.path.isfile(os.path.join(result["path"], "app", "cm.yaml"))


def test_a_mirror_evicted_while_a_run_uses_it_is_fetched_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    repo = GitRepo(str(tmp_path))
    repo.commit({"app/cm.yaml": "kind: ConfigMap\n"}, "one")
    sources = Sources()
    first = sources.resolve(repo.url, "main")
    sources.checkout(first)
    newer = repo.commit({"app/cm.yaml": "kind: ConfigMap\nmetadata: {name: two}\n"}, "two")
    subprocess.run(["rm", "-rf", sources.mirror_path(repo.url)], check=True)  # another process evicted it
    # what reconcile asks before moving an app: is the commit it fetched older than the cluster's?
    assert sources.is_ancestor(first, newer) is True


def test_a_mirror_fetched_again_and_again_is_packed(tmp_path, monkeypatch):
    """Each fetch of 100 objects or more keeps its own pack; git's automatic housekeeping, which
    the safe configuration turns off, would merge them after 50. Sixty runs, one commit each."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    repo = GitRepo(str(tmp_path))
    for run in range(60):
        commit = "".join("M 100644 inline f/%d/%d.txt\ndata <<EOF\nrun %d file %d\nEOF\n" % (run, i, run, i)
                         for i in range(100))
        stream = "commit refs/heads/main\ncommitter Dev <dev@example.com> %d +0000\ndata 4\nrun\n%s%s\n" % (
            1700000000 + run, "from refs/heads/main^0\n" if run else "", commit)
        subprocess.run(["git", "fast-import", "--quiet"], cwd=repo.bare, input=stream, text=True, check=True)
        sources = Sources()
        resolved = sources.resolve(repo.url, "main")
        assert sources.is_ancestor(resolved, resolved["revision"]) is True  # fetched into the mirror
    mirror = Sources().mirror_path(repo.url)
    packs = [n for n in os.listdir(os.path.join(mirror, "objects", "pack")) if n.endswith(".pack")]
    assert len(packs) <= 50, "%d packs in the mirror after 60 fetches" % len(packs)
    assert git(mirror, "rev-list", "--count", "main") == "60"
