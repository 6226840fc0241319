"""git_fetch against real repositories created here (bare repos over file://) and the real git."""

import json
import os
import subprocess
import threading

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.sources.git import fetch

ENV = dict(os.environ, GIT_AUTHOR_NAME="Ann", GIT_AUTHOR_EMAIL="ann@example.com", GIT_COMMITTER_NAME="Ann",
           GIT_COMMITTER_EMAIL="ann@example.com", GIT_CONFIG_NOSYSTEM="1")
# the test's own commits and pushes run no hooks either: only the fetcher is under test
QUIET = dict(ENV, GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="core.hooksPath", GIT_CONFIG_VALUE_0="/dev/null")


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, env=QUIET, check=True, capture_output=True, text=True).stdout.strip()


class Origin:
    """A bare repository (the remote) and a working clone used to push to it."""

    def __init__(self, root):
        self.bare = os.path.join(root, "origin.git")
        self.work = os.path.join(root, "work")
        git(root, "init", "-q", "--bare", "-b", "main", self.bare)
        git(root, "init", "-q", "-b", "main", self.work)
        git(self.work, "remote", "add", "origin", self.bare)
        self.url = "file://" + self.bare

    def commit(self, files, message="change", remove=()):
        for rel, text in files.items():
            path = os.path.join(self.work, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        for rel in remove:
            git(self.work, "rm", "-q", rel)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def push(self, *args):
        git(self.work, "push", "-q", *args, "origin", "HEAD:main")


@pytest.fixture
def origin(workdir):
    repo = Origin(workdir)
    repo.commit({"apps/web.yaml": "kind: ConfigMap\n", "README.md": "hello\n"}, "first")
    repo.push()
    return repo


def test_first_fetch_then_idempotent_then_follows_new_commits(origin, workdir):
    dest = os.path.join(workdir, "cache")
    first = fetch(origin.url, dest=dest)
    assert first["changed"] and first["previous_revision"] is None and first["ref"] == "refs/heads/main"
    assert first["revision"] == git(origin.work, "rev-parse", "HEAD") and len(first["revision"]) == 40
    assert first["commit"]["author"] == "Ann <ann@example.com>" and first["commit"]["message"] == "first"
    assert os.path.isfile(os.path.join(dest, "apps", "web.yaml"))

    again = fetch(origin.url, dest=dest)
    assert not again["changed"] and again["previous_revision"] == first["revision"] and again["changed_paths"] == []

    second = origin.commit({"apps/db.yaml": "kind: Service\n"}, "add db")
    origin.push()
    moved = fetch(origin.url, dest=dest)
    assert moved["changed"] and moved["revision"] == second and moved["previous_revision"] == first["revision"]
    assert moved["changed_paths"] == ["apps/db.yaml"]


def test_semver_range_picks_the_newest_matching_tag(origin, workdir):
    for tag, files in [("v1.2.0", {"v": "1.2.0"}), ("v1.10.0", {"v": "1.10.0"}), ("v2.0.0", {"v": "2.0.0"})]:
        origin.commit(files, tag)
        git(origin.work, "tag", "-a", tag, "-m", tag)
    origin.push("--tags")
    dest = os.path.join(workdir, "cache")
    result = fetch(origin.url, version=">=1.2.0 <2.0.0", dest=dest, depth=1)
    assert result["ref"] == "refs/tags/v1.10.0"
    assert result["revision"] == git(origin.work, "rev-parse", "v1.10.0^{commit}")
    with open(os.path.join(dest, "v")) as handle:
        assert handle.read() == "1.10.0"
    assert fetch(origin.url, version="v1.2.0", dest=dest)["ref"] == "refs/tags/v1.2.0"


def test_force_pushed_branch_is_followed_and_checkout_is_clean(origin, workdir):
    dest = os.path.join(workdir, "cache")
    origin.commit({"apps/old.yaml": "kind: Secret\n"}, "soon rewritten")
    origin.push()
    fetch(origin.url, dest=dest, depth=1)
    with open(os.path.join(dest, "apps", "stray.yaml"), "w") as handle:
        handle.write("left behind\n")  # untracked junk in the cache
    git(origin.work, "reset", "-q", "--hard", "HEAD~1")
    rewritten = origin.commit({"apps/new.yaml": "kind: Service\n"}, "rewritten history")
    origin.push("--force")
    result = fetch(origin.url, dest=dest, depth=1)
    assert result["revision"] == rewritten
    assert sorted(os.listdir(os.path.join(dest, "apps"))) == ["new.yaml", "web.yaml"]


def test_commit_by_full_and_short_sha(origin, workdir):
    first = git(origin.work, "rev-parse", "HEAD")
    origin.commit({"b": "b"}, "second")
    origin.push()
    dest = os.path.join(workdir, "cache")
    assert fetch(origin.url, version=first[:8], dest=dest)["revision"] == first
    assert not os.path.exists(os.path.join(dest, "b"))
    result = fetch(origin.url, version=git(origin.work, "rev-parse", "HEAD"), dest=dest)
    assert result["ref"] is None and os.path.exists(os.path.join(dest, "b"))
    with pytest.raises(GitOpsError, match="commit deadbeef not found in file://"):
        fetch(origin.url, version="deadbeef", dest=dest)


def test_sparse_paths(origin, workdir):
    origin.commit({"other/x.yaml": "x\n"}, "other")
    origin.push()
    dest = os.path.join(workdir, "cache")
    fetch(origin.url, dest=dest, sparse_paths=["apps"])
    assert sorted(p for p in os.listdir(dest) if p != ".git") == ["README.md", "apps"]
    fetch(origin.url, dest=dest)
    assert os.path.exists(os.path.join(dest, "other", "x.yaml"))


def test_git_hooks_never_run(origin, workdir):
    marker = os.path.join(workdir, "hook-ran")
    hook = "#!/bin/sh\necho \"$0\" >> %s\n" % marker
    names = ("post-checkout", "post-merge", "reference-transaction", "fsmonitor-watchman")

    def plant(hooks):
        os.makedirs(hooks, exist_ok=True)
        for name in names:
            with open(os.path.join(hooks, name), "w") as handle:
                handle.write(hook)
            os.chmod(os.path.join(hooks, name), 0o755)

    # hooks in the repository the commits come from, in a template dir git would copy, then in the cache itself
    plant(os.path.join(origin.work, ".git", "hooks"))
    plant(os.path.join(workdir, "template", "hooks"))
    os.environ["GIT_TEMPLATE_DIR"] = os.path.join(workdir, "template")
    try:
        dest = os.path.join(workdir, "cache")
        fetch(origin.url, dest=dest)
        plant(os.path.join(dest, ".git", "hooks"))
        origin.commit({"hooks/post-checkout": hook}, "a hook as content")
        origin.push()
        assert fetch(origin.url, dest=dest)["changed"]
    finally:
        del os.environ["GIT_TEMPLATE_DIR"]
    assert not os.path.exists(marker), open(marker).read()
    # proof that the planted hook would have run under plain git
    subprocess.run(["git", "checkout", "-q", "--detach", "HEAD~1"], cwd=dest, env=ENV, check=True)
    assert os.path.exists(marker)


def test_unreachable_remote_names_repo_without_credentials_and_keeps_cache(origin, workdir):
    dest = os.path.join(workdir, "cache")
    before = fetch(origin.url, dest=dest)["revision"]
    with pytest.raises(GitOpsError) as err:
        fetch("https://deploy:hunter2-token@127.0.0.1:9/team/deploy.git", dest=dest, timeout=20)
    text = str(err.value) + json.dumps(err.value.details)
    assert "https://127.0.0.1:9/team/deploy.git" in text and "hunter2" not in text
    assert git(dest, "rev-parse", "HEAD") == before and os.path.isfile(os.path.join(dest, "apps", "web.yaml"))
    for folder, _dirs, files in os.walk(os.path.join(dest, ".git")):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                assert b"hunter2" not in handle.read(), os.path.join(folder, name)


def test_concurrent_runs_on_one_cache(origin, workdir):
    dest = os.path.join(workdir, "cache")
    results, errors = [], []

    def run():
        try:
            results.append(fetch(origin.url, dest=dest)["revision"])
        except Exception as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=run) for _thread in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(results)) == 1 and len(results) == 4
    git(dest, "fsck", "--no-progress")


def test_ssh_signature_verification(origin, workdir):
    key = os.path.join(workdir, "signing")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    with open(key + ".pub") as handle:
        pub = handle.read().split()
    signers = os.path.join(workdir, "allowed_signers")
    with open(signers, "w") as handle:
        handle.write("ann@example.com %s %s\n" % (pub[0], pub[1]))
    dest = os.path.join(workdir, "cache")
    unsigned = fetch(origin.url, dest=dest)["revision"]  # the last good checkout
    origin.commit({"signed": "yes"}, "signed")
    git(origin.work, "-c", "gpg.format=ssh", "-c", "user.signingkey=%s" % key, "commit", "-q", "--amend", "-S", "--no-edit")
    origin.push("--force")
    result = fetch(origin.url, dest=dest, verify_signature="head", allowed_signers=signers)
    assert result["commit"]["signed"] and os.path.exists(os.path.join(dest, "signed"))

    origin.commit({"unsigned": "no"}, "not signed")
    origin.push()
    with pytest.raises(GitOpsError, match="signature verification of commit .* failed"):
        fetch(origin.url, dest=dest, verify_signature="head", allowed_signers=signers)
    assert git(dest, "rev-parse", "HEAD") == result["revision"] != unsigned
    assert not os.path.exists(os.path.join(dest, "unsigned"))


def test_module_check_mode_idempotence_and_no_secret_in_results(ansible, origin, workdir):
    dest = os.path.join(workdir, "cache")
    proc, first = ansible.module("gitops.k8s.git_fetch", {"repo": origin.url, "dest": dest})
    assert not first.get("failed"), proc.stdout
    assert first["changed"] and first["path"] == dest

    new = origin.commit({"apps/web.yaml": "kind: Deployment\n"}, "update web")
    origin.push()
    proc, checked = ansible.module("gitops.k8s.git_fetch", {"repo": origin.url, "dest": dest}, check=True, diff=True)
    assert checked["changed"] and checked["revision"] == new and checked["previous_revision"] == first["revision"]
    assert git(dest, "rev-parse", "HEAD") == first["revision"]  # check mode did not move the checkout
    assert "+revision: %s" % new in proc.stdout

    _proc, moved = ansible.module("gitops.k8s.git_fetch", {"repo": origin.url, "dest": dest})
    _proc, same = ansible.module("gitops.k8s.git_fetch", {"repo": origin.url, "dest": dest})
    assert moved["changed"] and not same["changed"] and same["revision"] == new

    proc, failed = ansible.module("gitops.k8s.git_fetch", {
        "repo": "https://ci:url-secret-1@127.0.0.1:9/r.git", "password": "option-secret-2", "dest": dest, "timeout": 20})
    assert failed["failed"] and "https://127.0.0.1:9/r.git" in failed["msg"]
    everything = json.dumps(failed) + proc.stdout + proc.stderr
    assert "url-secret-1" not in everything and "option-secret-2" not in everything
