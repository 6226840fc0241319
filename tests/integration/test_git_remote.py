"""git_fetch against real Git servers: HTTPS (git http-backend behind TLS and basic auth) and SSH (sshd).

Credentials go only to the repository's own host; global git config never applies.
"""

import os
import secrets
import subprocess

import pytest
import servers

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.sources.git import fetch

QUIET = dict(os.environ, GIT_AUTHOR_NAME="Ann", GIT_AUTHOR_EMAIL="ann@example.com", GIT_COMMITTER_NAME="Ann",
             GIT_COMMITTER_EMAIL="ann@example.com", GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull,
             GIT_CONFIG_COUNT="2", GIT_CONFIG_KEY_0="core.hooksPath", GIT_CONFIG_VALUE_0="/dev/null",
             GIT_CONFIG_KEY_1="protocol.file.allow", GIT_CONFIG_VALUE_1="always")


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, env=QUIET, check=True, capture_output=True, text=True).stdout.strip()


def bare_repo(root, name, files, submodule=None):
    """A bare repository ``root/name`` with one commit of ``files`` (and a submodule entry); returns the sha."""
    bare, work = os.path.join(root, name), os.path.join(root, name + "-work")
    git(root, "init", "-q", "--bare", "-b", "main", bare)
    git(root, "init", "-q", "-b", "main", work)
    for rel, text in files.items():
        path = os.path.join(work, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    if submodule:
        url, source = submodule
        git(work, "submodule", "add", "-q", source, "vendor")
        git(work, "config", "-f", ".gitmodules", "submodule.vendor.url", url)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "first")
    git(work, "push", "-q", bare, "HEAD:main")
    return git(work, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def git_servers(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("git-servers"))
    tls = servers.certificates(root)
    repos = os.path.join(root, "repos")
    os.makedirs(repos)
    token = "tok-" + secrets.token_hex(12)
    own = servers.HttpServer(os.path.join(root, "own"), "git-own", git=repos, tls=tls, user="ci", password=token)
    other = servers.HttpServer(os.path.join(root, "other"), "git-other", git=repos, tls=tls, user="someone",
                               password=secrets.token_hex(8))
    ssh = servers.SshServer(os.path.join(root, "ssh"))
    sha = bare_repo(repos, "app.git", {"deploy/cm.yaml": "kind: ConfigMap\n"})
    bare_repo(repos, "lib.git", {"lib.txt": "library\n"})
    # the submodule is named by the repository (untrusted): another host, which must never get the token
    bare_repo(repos, "with-sub.git", {"README.md": "hi\n"},
              submodule=("https://localhost:%d/lib.git" % other.port, os.path.join(repos, "lib.git")))
    yield {"tls": tls, "token": token, "own": own, "other": other, "ssh": ssh, "repos": repos, "sha": sha}
    for server in (own, other, ssh):
        server.stop()


def test_https_with_a_token(git_servers, tmp_path):
    own = git_servers["own"]
    result = fetch(own.url + "/app.git", dest=os.path.join(str(tmp_path), "c"), username="ci", password=git_servers["token"],
                   ca_file=git_servers["tls"]["ca"])
    assert result["revision"] == git_servers["sha"]
    assert os.path.isfile(os.path.join(str(tmp_path), "c", "deploy", "cm.yaml"))
    assert any(r["authorized"] for r in own.requests())


def test_https_wrong_token_is_a_clear_error_without_the_token(git_servers, tmp_path):
    wrong = "tok-wrong-" + secrets.token_hex(8)
    with pytest.raises(GitOpsError) as err:
        fetch(git_servers["own"].url + "/app.git", dest=os.path.join(str(tmp_path), "c"), username="ci", password=wrong,
              ca_file=git_servers["tls"]["ca"])
    message = str(err.value) + repr(err.value.details)
    assert "Authentication failed" in message and git_servers["own"].url in message
    assert wrong not in message


def test_https_untrusted_certificate_is_refused(git_servers, tmp_path):
    with pytest.raises(GitOpsError) as err:
        fetch(git_servers["own"].url + "/app.git", dest=os.path.join(str(tmp_path), "c"), username="ci",
              password=git_servers["token"])
    assert "certificate" in str(err.value) and git_servers["token"] not in str(err.value)


def test_ssh_with_a_key_and_known_hosts(git_servers, tmp_path):
    ssh = git_servers["ssh"]
    result = fetch(ssh.url(os.path.join(git_servers["repos"], "app.git")), dest=os.path.join(str(tmp_path), "c"),
                   key_file=ssh.client_key, known_hosts=ssh.known_hosts)
    assert result["revision"] == git_servers["sha"]


def test_ssh_unknown_host_key_is_refused(git_servers, tmp_path):
    ssh = git_servers["ssh"]
    empty = os.path.join(str(tmp_path), "known_hosts")
    open(empty, "w").close()
    with pytest.raises(GitOpsError) as err:
        fetch(ssh.url(os.path.join(git_servers["repos"], "app.git")), dest=os.path.join(str(tmp_path), "c"),
              key_file=ssh.client_key, known_hosts=empty)
    assert "Host key verification failed" in str(err.value)
    assert not os.path.exists(os.path.join(str(tmp_path), "c", "deploy"))


def test_token_never_goes_to_a_submodule_on_another_host(git_servers, tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_SSL_CAINFO", git_servers["tls"]["ca"])
    other = git_servers["other"]
    before = len(other.requests())
    with pytest.raises(GitOpsError) as err:
        fetch(git_servers["own"].url + "/with-sub.git", dest=os.path.join(str(tmp_path), "c"), username="ci",
              password=git_servers["token"], submodules=True)
    asked = other.requests()[before:]
    assert asked, "the submodule host was never contacted: the test proves nothing"
    assert not any(r["authorization_sent"] for r in asked), "credentials were sent to the submodule's host"
    assert "localhost:%d" % other.port in str(err.value) and git_servers["token"] not in str(err.value)


def test_global_git_config_does_not_apply(tmp_path, monkeypatch):
    real = os.path.join(str(tmp_path), "real")
    os.makedirs(real)
    sha = bare_repo(real, "app.git", {"who": "real\n"})
    bare_repo(real, "evil.git", {"who": "evil\n"})
    home = os.path.join(str(tmp_path), "home")
    os.makedirs(home)
    with open(os.path.join(home, ".gitconfig"), "w", encoding="utf-8") as handle:
        handle.write('[url "file://%s/evil.git"]\n\tinsteadOf = file://%s/app.git\n' % (real, real))
    monkeypatch.setenv("HOME", home)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    result = fetch("file://%s/app.git" % real, dest=os.path.join(str(tmp_path), "c"))
    assert result["revision"] == sha
    with open(os.path.join(str(tmp_path), "c", "who"), encoding="utf-8") as handle:
        assert handle.read() == "real\n"


def test_through_ansible_vvv_a_wrong_token_fails_clearly_and_is_never_printed(git_servers, ansible, tmp_path):
    wrong = "tok-wrong-" + secrets.token_hex(8)
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "fetch over https", "gitops.k8s.git_fetch": {
            "repo": git_servers["own"].url + "/app.git", "dest": str(tmp_path / "c"), "username": "ci",
            "password": wrong, "ca_file": git_servers["tls"]["ca"]}},
    ]}]
    proc = ansible.playbook(play, args=("-vvv",))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Authentication failed for '%s/app.git/'" % git_servers["own"].url in out, out
    assert wrong not in out
