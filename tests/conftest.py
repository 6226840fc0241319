"""Shared pytest fixtures: the real local control plane, per-test namespaces, playbook runners.

Integration tests ask for ``kubeconfig`` / ``cluster`` / ``namespace``; the first one brings the
cluster up once per session with tests/cluster/up (or reuses a running one). There is no fake
API server: if the cluster cannot start, those tests fail with the reason.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)
sys.path.insert(0, os.path.join(TESTS, "cluster"))
import localcluster  # noqa: E402

with localcluster.locked():
    COLLECTIONS = localcluster.collections_root()
sys.path.insert(0, COLLECTIONS)  # import ansible_collections.gitops.k8s.* from this checkout

from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import Cluster  # noqa: E402

VENV_PYTHON = os.path.join(REPO, ".venv", "bin", "python")
ARTIFACTS = os.path.join(TESTS, "artifacts")


@pytest.fixture(scope="session")
def kubeconfig():
    proc = subprocess.run([os.path.join(TESTS, "cluster", "up")], stdout=subprocess.PIPE, text=True, check=False)
    assert proc.returncode == 0, "tests/cluster/up failed (exit %d); see its output above" % proc.returncode
    path = proc.stdout.strip().splitlines()[-1]
    assert os.path.exists(path), "tests/cluster/up printed %r, which is not a kubeconfig" % path
    os.environ["KUBECONFIG"] = path
    with localcluster.in_use():  # another session's `up` does not restart the cluster under this one
        yield path


@pytest.fixture(scope="session")
def cluster(kubeconfig):
    return Cluster.from_params({"kubeconfig": kubeconfig})


@pytest.fixture(scope="session")
def tools():
    """Directory holding kubectl, helm, kustomize and kwok (built on first use)."""
    with localcluster.locked():
        return localcluster.tools_dir()


@pytest.fixture(scope="session")
def ansible_env(tools):
    """Environment for ansible-playbook; tests that touch the cluster also ask for ``kubeconfig``."""
    env = dict(os.environ)
    env.update({
        "KUBECONFIG": localcluster.KUBECONFIG,
        "PATH": os.pathsep.join([os.path.dirname(VENV_PYTHON), tools, env.get("PATH", "")]),
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_PYTHON_INTERPRETER": VENV_PYTHON,
    })
    return env


def _slug(text):
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40].strip("-")


@pytest.fixture
def namespace(cluster, request):
    """A fresh namespace for one test, deleted afterwards."""
    name = "t-%s-%s" % (_slug(request.node.name), uuid.uuid4().hex[:5])
    cluster.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    cluster.delete({"apiVersion": "v1", "kind": "Namespace", "name": name})


class PlaybookRunner:
    """Run playbooks or single module tasks against this checkout's collection."""

    def __init__(self, env, workdir):
        self.env = env
        self.workdir = workdir

    def playbook(self, playbook, extra_vars=None, check=False, diff=False, inventory=None, args=()):
        """Run a playbook (a path, or a list of plays written to a file); return CompletedProcess."""
        if not isinstance(playbook, str):
            path = os.path.join(self.workdir, "play-%s.yml" % uuid.uuid4().hex[:6])
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(playbook, handle)
            playbook = path
        argv = [os.path.join(os.path.dirname(VENV_PYTHON), "ansible-playbook"), playbook,
                "-i", inventory or "localhost,", "-c", "local"]
        if extra_vars:
            argv += ["-e", json.dumps(extra_vars)]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        argv += list(args)
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, cwd=self.workdir, timeout=1800, check=False)

    def module(self, name, params, check=False, diff=False):
        """Run one module as a task; return (CompletedProcess, registered result dict)."""
        out = os.path.join(self.workdir, "result-%s.json" % uuid.uuid4().hex[:6])
        play = [{
            "hosts": "localhost", "gather_facts": False,
            "tasks": [
                {"name": "module under test", name: params, "register": "result", "ignore_errors": True},
                {"name": "save the result", "ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": out},
                 "check_mode": False, "diff": False},
            ],
        }]
        proc = self.playbook(play, check=check, diff=diff)
        if not os.path.exists(out):
            raise AssertionError("the playbook did not run the module:\n%s\n%s" % (proc.stdout, proc.stderr))
        with open(out, encoding="utf-8") as handle:
            return proc, json.load(handle)


@pytest.fixture
def ansible(ansible_env, tmp_path):
    return PlaybookRunner(ansible_env, str(tmp_path))


@pytest.fixture
def artifacts():
    """A directory for files a person may want to look at after the run (screenshots, reports)."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="gitops-k8s-test-") as path:
        yield path


# Local build and test products: build_ignore must keep every one of them out of the artifact.
# Each is planted into the copy (besides the ones this checkout really has) so that the check does
# not depend on which parts of the suite ran before.
LOCAL_PRODUCTS = (".venv/bin/python", ".venv-sanity/lib/site.py", ".pytest_cache/v/cache/lastfailed",
                  ".ansible/collections/x", "tests/artifacts/report.png", "tests/output/junit.xml",
                  "plugins/modules/__pycache__/apply.cpython-311.pyc", "gitops-report/report.html",
                  "context/Containerfile", "gitops-k8s-0.0.1.tar.gz", "changelogs/.plugin-cache.yaml")


def collection_source_copy(dest):
    """A copy of this working tree (tracked and new files) plus its local build and test products."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    ignored = subprocess.run(["git", "ls-files", "-oi", "--exclude-standard", "--directory", "-z"], cwd=REPO,
                             capture_output=True, check=True).stdout.decode().split("\0")
    for rel in [p for p in listed if p and os.path.isfile(os.path.join(REPO, p))]:
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(os.path.join(REPO, rel), os.path.join(dest, rel))
    # What this checkout really has besides, by name only (a venv is hundreds of MB to copy).
    planted = [p.rstrip("/") + "/placeholder" if p.endswith("/") else p for p in ignored if p]
    for rel in planted + list(LOCAL_PRODUCTS):
        path = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write("a local build or test product\n")
    return dest
