"""Benchmark: many applications on one cluster, the per-cluster engine vs the per-app-host path.

Run with `make bench` (or `.venv/bin/python tests/bench/bench_fleet.py [--sizes 10,100,1000]
[--previous-sizes 10,100]`) against the local control plane. Every application has 3 objects (a
ConfigMap, a Secret and a Deployment of one replica, or --replicas), all from one local Git repository, one
cluster. For each size it prints the wall time of whole `ansible-playbook` runs (Ansible start-up
included) and the peak RSS of the largest process of the run:

  initial push        every app applied and waited healthy
  no-op reconcile     nothing changed in Git or in the cluster
  no-op push          the same through gitops.k8s.push
  one changed app     one app's ConfigMap changed in Git, then reconcile (applied, healthy)
  push of one app     -e gitops_app=<one> with a change, its health wait disabled
  push of one, YAML   the same with gitops_apps in the YAML inventory file instead of host_vars/<host>.json

Every run but the last reads gitops_apps from host_vars/<host>.json (see Fleet.inventory).

The peer is the previous release (the per-app-host path: one inventory host and five module
processes per application), extracted from this repository's history at PREVIOUS and run on the
same repository and cluster for the smaller sizes. Figures, not assertions.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "cluster"))
import localcluster  # noqa: E402

# The last commit whose playbooks ran one inventory host per application.
PREVIOUS = "689dd16"
GOALS = {"initial push": {1000: 60.0}, "no-op reconcile": {1000: 15.0, 100: 4.0}, "one changed app": {1000: 20.0},
         "push of one app": {1000: 3.0}}


def git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="bench@example.com")
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout.strip()


def app_objects(name, greeting, replicas=1):
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"greeting": greeting}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"token": "t-" + name}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
         "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}},
    ]


class Fleet:
    """A Git repository of ``size`` apps and inventories for the engine and the previous release."""

    def __init__(self, root, size, namespace, replicas=1):
        self.root, self.size, self.namespace, self.replicas = root, size, namespace, replicas
        # the cluster host owns what it records: another fleet's reconcile must not see these apps
        # as departed from its gitops_apps
        self.host = "bench-" + namespace
        self.work, self.bare = os.path.join(root, "work"), os.path.join(root, "fleet.git")
        git(root, "init", "-q", "--bare", "-b", "main", self.bare)
        git(root, "init", "-q", "-b", "main", self.work)
        for n in range(size):
            self.write(n, "hello")
        self.commit("%d apps" % size)
        self.apps = [{"name": "%s-%04d" % (namespace, n), "repo": "file://" + self.bare, "path": "app-%04d" % n,
                      "namespace": namespace, "wait": {"timeout": 600}} for n in range(size)]

    def write(self, n, greeting):
        folder = os.path.join(self.work, "app-%04d" % n)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "app.yaml"), "w", encoding="utf-8") as handle:
            yaml.safe_dump_all(app_objects("app-%04d" % n, greeting, self.replicas), handle)

    def commit(self, message):
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", self.bare, "main")

    def inventory(self, kubeconfig, apps=None, layout="json"):
        """An inventory of one cluster host. ``json``: gitops_apps in host_vars/<host>.json, the layout
        docs/applications.md advises for hundreds of apps; ``yaml``: everything in one YAML file
        (Ansible reads YAML about ten times slower: ~2 s more at 1,000 apps)."""
        folder = os.path.join(self.root, "inventory-%s" % uuid.uuid4().hex[:6])
        os.makedirs(os.path.join(folder, "host_vars"))
        host = {"ansible_connection": "local", "gitops_cluster": {"kubeconfig": kubeconfig}}
        if layout == "yaml":
            host["gitops_apps"] = apps or self.apps
        else:
            with open(os.path.join(folder, "host_vars", self.host + ".json"), "w", encoding="utf-8") as handle:
                json.dump({"gitops_apps": apps or self.apps}, handle)
        path = os.path.join(folder, "inventory.yml")
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump({"all": {"hosts": {self.host: host}}}, handle)
        return path


class Playbooks:
    """ansible-playbook of this checkout, or of the previous release extracted from history."""

    def __init__(self, collections_root, label):
        self.collections_root, self.label = collections_root, label
        self.dir = os.path.join(collections_root, "ansible_collections", "gitops", "k8s", "playbooks")

    def run(self, playbook, inventory, extra=None):
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=self.collections_root, ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_PYTHON_INTERPRETER=sys.executable,
                   ANSIBLE_FORKS="50")
        argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                os.path.join(self.dir, playbook + ".yml"), "-i", inventory,
                "-e", json.dumps(dict({"gitops_report_dir": tempfile.mkdtemp(prefix="bench-report-")}, **(extra or {})))]
        # wait4 gives this run's own figures: CPU of the whole process tree, and the peak RSS of its
        # largest process (RUSAGE_CHILDREN would give the largest of every run so far)
        with tempfile.TemporaryFile("w+") as output:
            started = time.perf_counter()
            proc = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT)
            _pid, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            if os.waitstatus_to_exitcode(status):
                output.seek(0)
                raise SystemExit("%s %s failed:\n%s" % (self.label, playbook, output.read()[-4000:]))
        cpu = usage.ru_utime + usage.ru_stime
        return {"wall": wall, "cpu": cpu, "rss_mib": usage.ru_maxrss / 1024.0}


def previous_release(root):
    """The collection as it was at PREVIOUS, laid out as an ANSIBLE_COLLECTIONS_PATH entry."""
    dest = os.path.join(root, "previous", "ansible_collections", "gitops", "k8s")
    os.makedirs(dest)
    archive = subprocess.run(["git", "-C", REPO, "archive", PREVIOUS], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return Playbooks(os.path.join(root, "previous"), "previous release (%s, one host per app)" % PREVIOUS)


def measure(playbooks, fleet, kubeconfig, rows, with_changes=True):
    inventory = fleet.inventory(kubeconfig)
    rows.append((fleet.size, playbooks.label, "initial push", playbooks.run("push", inventory)))
    rows.append((fleet.size, playbooks.label, "no-op reconcile", playbooks.run("reconcile", inventory)))
    rows.append((fleet.size, playbooks.label, "no-op push", playbooks.run("push", inventory)))
    if not with_changes:
        return
    fleet.write(fleet.size // 2, "changed")
    fleet.commit("Change one app")
    rows.append((fleet.size, playbooks.label, "one changed app", playbooks.run("reconcile", inventory)))
    fleet.write(0, "pushed")
    fleet.commit("Change the first app")
    one = dict(fleet.apps[0], wait={"enabled": False})
    rows.append((fleet.size, playbooks.label, "push of one app",
                 playbooks.run("push", fleet.inventory(kubeconfig, [one] + fleet.apps[1:]),
                               {"gitops_app": fleet.apps[0]["name"]})))
    fleet.write(0, "pushed again")
    fleet.commit("Change the first app again")
    rows.append((fleet.size, playbooks.label, "push of one, YAML",
                 playbooks.run("push", fleet.inventory(kubeconfig, [one] + fleet.apps[1:], layout="yaml"),
                               {"gitops_app": fleet.apps[0]["name"]})))


def delete_fleet(kubeconfig, fleet):
    """The fleet's namespace, and its apps' records and Leases (only theirs: other runs share the cluster)."""
    kubectl = [os.path.join(localcluster.tools_dir(), "kubectl"), "--kubeconfig", kubeconfig]
    subprocess.run(kubectl + ["delete", "namespace", fleet.namespace, "--wait=false"], capture_output=True, check=False)
    names = [app["name"] for app in fleet.apps]
    for first in range(0, len(names), 200):
        selector = "gitops.k8s/app in (%s)" % ",".join(names[first:first + 200])
        for label in (selector, selector.replace("gitops.k8s/app", "gitops.k8s/record-of")):  # records, shards
            subprocess.run(kubectl + ["-n", "gitops-system", "delete", "configmap", "-l", label, "--wait=false"],
                           capture_output=True, check=False)
        subprocess.run(kubectl + ["-n", "gitops-system", "delete", "lease", "--ignore-not-found", "--wait=false"]
                       + ["gitops-app-" + name for name in names[first:first + 200]], capture_output=True, check=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--previous-sizes", default="10,100")
    parser.add_argument("--replicas", type=int, default=1, help="of each app's Deployment (3 nodes hold 2,000 pods each)")
    args = parser.parse_args()
    with localcluster.locked():
        kubeconfig = localcluster.up()
        ours = Playbooks(localcluster.collections_root(), "gitops.k8s (one engine per cluster)")
    rows = []
    root = tempfile.mkdtemp(prefix="bench-fleet-")
    try:
        previous = previous_release(root)
        for size in [int(s) for s in args.sizes.split(",") if s]:
            for playbooks, wanted in ((previous, args.previous_sizes), (ours, args.sizes)):
                if str(size) not in wanted.split(","):
                    continue
                namespace = "fleet-%d-%s" % (size, uuid.uuid4().hex[:4])
                folder = os.path.join(root, namespace)
                os.makedirs(folder)
                fleet = Fleet(folder, size, namespace, args.replicas)
                try:
                    measure(playbooks, fleet, kubeconfig, rows)
                finally:
                    delete_fleet(kubeconfig, fleet)
                print_table(rows)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def print_table(rows):
    print("\n%-6s %-18s %-44s %9s %8s %9s  %s" % ("apps", "run", "playbooks", "wall s", "CPU s", "RSS MiB", "vs peer / goal"))
    peers = {(size, what): figures for size, label, what, figures in rows if label.startswith("previous")}
    for size, label, what, figures in rows:
        note = ""
        peer = peers.get((size, what))
        if peer and not label.startswith("previous"):
            note = "%.1fx faster than the previous release" % (peer["wall"] / figures["wall"])
        goal = GOALS.get(what, {}).get(size)
        if goal and not label.startswith("previous"):
            note += "%sgoal <= %.0f s: %s" % ("; " if note else "", goal, "met" if figures["wall"] <= goal else "MISSED")
        print("%-6d %-18s %-44s %9.2f %8.2f %9.0f  %s"
              % (size, what, label, figures["wall"], figures["cpu"], figures["rss_mib"], note))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
