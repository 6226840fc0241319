"""The collection as a user gets it: the Galaxy artifact, built and installed the documented ways.

The artifact is built from a temporary copy of this working tree that also holds every local
build and test product the suite leaves behind (virtualenvs, caches, bundles, reports, earlier
artifacts): ``build_ignore`` in galaxy.yml must keep all of them out. The installed copy, alone on
ANSIBLE_COLLECTIONS_PATH, must document every plugin and role and push an application to the
local cluster.
"""

import json
import os
import subprocess
import tarfile

import yaml

from conftest import REPO, VENV_PYTHON, collection_source_copy

BIN = os.path.dirname(VENV_PYTHON)
# Everything a user runs; anything else at the top of the artifact is a build or test product.
SHIPPED = {"MANIFEST.json", "FILES.json", "README.md", "LICENSE", "requirements.txt", "bindep.txt",
           "meta", "plugins", "roles", "playbooks", "docs", "changelogs"}
MAX_ARTIFACT_BYTES = 400 * 1024  # about 270 KB today; the sanity venv alone made it 11 MB
MAX_INSTALLED_BYTES = 2 * 1024 * 1024


def galaxy_version():
    with open(os.path.join(REPO, "galaxy.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["version"]


def run(argv, **kw):
    # never the checkout's own collections path (tests/cluster/env exports it): ansible-galaxy would
    # find gitops.k8s "already installed" there and install nothing
    kw.setdefault("env", {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_COLLECTIONS_PATH")})
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, **kw)
    assert proc.returncode == 0, "%s failed (%d):\n%s\n%s" % (" ".join(argv), proc.returncode, proc.stdout, proc.stderr)
    return proc


def build_artifact(source, output):
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", output], cwd=source)
    path = os.path.join(output, "gitops-k8s-%s.tar.gz" % galaxy_version())
    assert os.path.exists(path), os.listdir(output)
    return path


def install(source, dest, cwd=None):
    """ansible-galaxy collection install SOURCE into an empty path; return the installed collection dir."""
    assert not os.path.exists(dest) or not os.listdir(dest)
    argv = [os.path.join(BIN, "ansible-galaxy"), "collection", "install", "-p", dest]
    argv += ["-r", source] if source.endswith(".yml") else [source]
    run(argv, cwd=cwd)
    installed = os.path.join(dest, "ansible_collections", "gitops", "k8s")
    assert os.path.exists(os.path.join(installed, "MANIFEST.json")), argv
    return installed


def python_files(*path):
    where = os.path.join(*path)
    return sorted(f[:-3] for f in os.listdir(where) if f.endswith(".py") and f != "__init__.py") \
        if os.path.isdir(where) else []


def tree_size(path):
    return sum(os.path.getsize(os.path.join(top, f)) for top, dummy, files in os.walk(path) for f in files)


def isolated_env(ansible_env, collections_path):
    """ansible-* sees only ``collections_path``: not this checkout, not ~/.ansible."""
    return dict(ansible_env, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")


def assert_only_shipped_files(names):
    unexpected = sorted({n.split("/")[0] for n in names} - SHIPPED)
    assert not unexpected, "build/test products in the artifact: %s" % unexpected
    products = [n for n in names if any(part.startswith(".venv") or part in ("__pycache__", ".pytest_cache", ".ansible")
                                        for part in n.split("/")) or n.endswith((".pyc", ".tar.gz", ".log"))]
    assert not products, products[:10]


def test_the_artifact_holds_only_the_collection_and_installs_with_working_docs_and_push(
        ansible_env, kubeconfig, namespace, tmp_path):
    source = collection_source_copy(str(tmp_path / "src"))
    artifact = build_artifact(source, str(tmp_path))
    with tarfile.open(artifact) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    assert_only_shipped_files(names)
    for needed in ("plugins/modules/apply.py", "roles/sync/meta/argument_specs.yml", "playbooks/push.yml",
                   "meta/runtime.yml", "meta/execution-environment.yml", "requirements.txt", "bindep.txt"):
        assert needed in names, needed
    size = os.path.getsize(artifact)
    assert size < MAX_ARTIFACT_BYTES, "artifact is %d bytes" % size

    installed = install(artifact, str(tmp_path / "installed"))
    assert tree_size(installed) < MAX_INSTALLED_BYTES, tree_size(installed)
    env = isolated_env(ansible_env, str(tmp_path / "installed"))

    plugins = {"module": python_files(installed, "plugins", "modules"),
               "inventory": python_files(installed, "plugins", "inventory"),
               "role": sorted(os.listdir(os.path.join(installed, "roles")))}
    assert "apply" in plugins["module"] and "sync" in plugins["role"], plugins
    for kind, found in plugins.items():
        for name in found:
            doc = run([os.path.join(BIN, "ansible-doc"), "-t", kind, "--json", "gitops.k8s." + name], env=env)
            data = json.loads(doc.stdout)["gitops.k8s." + name]
            where = data["path"] if kind == "role" else data["doc"]["filename"]
            assert where.startswith(installed), (kind, name, where)
            assert (data["entry_points"]["main"]["options"] if kind == "role" else data["doc"]["options"]), (kind, name)

    # One playbook from the installed copy, on the local cluster.
    inventory = tmp_path / "inventory.yml"
    repo = _one_app_repo(tmp_path / "git")
    app = "artifact-%s" % namespace[-5:]
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"local-cluster": {
        "ansible_connection": "local", "ansible_python_interpreter": VENV_PYTHON,
        "gitops_cluster": {"kubeconfig": kubeconfig},
        "gitops_apps": [{"name": app, "repo": repo, "path": "app", "namespace": namespace}],
    }}}}))
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "gitops.k8s.push", "-i", str(inventory),
                           "-e", "gitops_report_dir=%s" % (tmp_path / "report")],
                          env=env, capture_output=True, text=True, timeout=900, check=False, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "%s@local-cluster: SYNCED, HEALTHY, synced" % app in proc.stdout, proc.stdout
    got = subprocess.run(["kubectl", "get", "configmap", "greeting", "-n", namespace, "-o", "json"],
                         env=ansible_env, capture_output=True, text=True, check=False)
    assert got.returncode == 0 and json.loads(got.stdout)["data"] == {"hello": "world"}, got.stderr


def test_the_documented_install_commands_work_from_a_checkout_and_from_a_git_url(ansible_env, tmp_path):
    source = collection_source_copy(str(tmp_path / "src"))
    # docs/getting-started.md: from the checkout's root with collections/requirements.yml
    from_dir = install("collections/requirements.yml", str(tmp_path / "from-dir"), cwd=source)
    assert not [p for p in os.listdir(from_dir) if p.startswith(".venv")], os.listdir(from_dir)
    assert_only_shipped_files(os.listdir(from_dir))
    # ... and from a Git URL the user supplies (git+URL,version)
    bare = str(tmp_path / "gitops.k8s.git")
    run(["git", "init", "-q", "-b", "main", source])
    run(["git", "-C", source, "add", "-A", "-f"])  # products too: build_ignore must drop them
    run(["git", "-C", source, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "release"])
    run(["git", "clone", "-q", "--bare", source, bare])
    from_git = install("git+file://%s,main" % bare, str(tmp_path / "from-git"))
    assert_only_shipped_files(os.listdir(from_git))
    env = isolated_env(ansible_env, str(tmp_path / "from-git"))
    doc = run([os.path.join(BIN, "ansible-doc"), "-t", "module", "--json", "gitops.k8s.apply"], env=env)
    assert json.loads(doc.stdout)["gitops.k8s.apply"]["doc"]["filename"].startswith(from_git)


def _one_app_repo(root):
    work = str(root)
    os.makedirs(os.path.join(work, "app"))
    with open(os.path.join(work, "app", "configmap.yaml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "greeting"},
                        "data": {"hello": "world"}}, handle)
    run(["git", "init", "-q", "-b", "main", work])
    run(["git", "-C", work, "add", "-A"])
    run(["git", "-C", work, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one app"])
    return "file://" + work
