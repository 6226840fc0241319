"""Peers the benchmarks install for themselves, outside the project's .venv.

kubernetes.core comes from the `ansible` package on PyPI (the "batteries included" distribution
bundles it under ansible_collections/kubernetes/core), because Galaxy may be unreachable. It lives
in its own virtualenv, created once and reused, so the project's .venv stays exactly what
requirements-dev.txt says.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "cluster"))
import localcluster  # noqa: E402

BENCH_VENV = os.path.join(localcluster.CACHE, "bench-venv")
# Written after a complete install: a half-finished one (interrupted pip) is redone, not reused.
READY = os.path.join(BENCH_VENV, ".installed")
PACKAGES = ("ansible", "kubernetes")


class KubernetesCore:
    """ansible-playbook of the bench venv and the collections path holding kubernetes.core."""

    def __init__(self, venv):
        self.python = os.path.join(venv, "bin", "python")
        self.ansible_playbook = os.path.join(venv, "bin", "ansible-playbook")
        self.collections_path = subprocess.run(
            [self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True).stdout.strip()
        manifest = os.path.join(self.collections_path, "ansible_collections", "kubernetes", "core", "MANIFEST.json")
        with open(manifest, encoding="utf-8") as handle:
            self.version = json.load(handle)["collection_info"]["version"]

    def env(self, kubeconfig):
        """Environment for the peer's ansible-playbook: its own collections only, its own Python."""
        return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=self.collections_path, K8S_AUTH_KUBECONFIG=kubeconfig,
                    ANSIBLE_PYTHON_INTERPRETER=self.python, ANSIBLE_NOCOLOR="1")


def kubernetes_core():
    """The kubernetes.core peer, installing it on first use (a few minutes, then cached)."""
    if not os.path.exists(READY):
        print("installing kubernetes.core peer into %s (pip install %s, once)" % (BENCH_VENV, " ".join(PACKAGES)),
              flush=True)
        # The interpreter that made .venv, not .venv itself: the bench venv must not inherit its packages.
        subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--clear", BENCH_VENV],
                       check=True)
        subprocess.run([os.path.join(BENCH_VENV, "bin", "pip"), "install", "--quiet"] + list(PACKAGES), check=True)
        with open(READY, "w", encoding="utf-8") as handle:
            handle.write("\n".join(PACKAGES) + "\n")
    return KubernetesCore(BENCH_VENV)


if __name__ == "__main__":
    peer = kubernetes_core()
    print("kubernetes.core %s: %s (ANSIBLE_COLLECTIONS_PATH=%s)" % (
        peer.version, peer.ansible_playbook, peer.collections_path))
