"""Benchmark: what impersonation costs on the no-op reconcile of a fleet (docs/teams-and-least-privilege.md).

Run with `.venv/bin/python tests/bench/bench_identity.py [--apps 100] [--teams 10] [--rounds 5]`
against the local control plane. Two fleets of the same shape (tests/bench/bench_fleet.py: each
app a ConfigMap, a Secret and a Deployment of one replica, from one Git repository), their apps
spread over ``--teams`` namespaces: one acting as the run's own identity, the other with each app
acting as its team's ServiceAccount (``service_account: <team namespace>/deployer``, a Role on
that namespace only). Both are pushed and reconciled once, then reconciled with nothing to do,
alternately, ``--rounds`` times each, in the same run:

  playbook   wall time of `ansible-playbook gitops.k8s.reconcile` (Ansible start-up included)
  engine     the per-cluster engine alone (sync/engine.sync_cluster, in this process): its
             duration and the requests it sent

It prints the medians, and the ratio with / without identities as the median of each round's
ratio (the two runs of a round are back to back: a shared machine's load weighs on both alike;
the issue's budget: at most 1.10).
An app acting as an identity has its objects read as that identity: one snapshot per identity
(sync/read.py), so the reads of a no-op reconcile grow with the number of identities, not apps.
Figures, not assertions.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_fleet import Fleet, Playbooks, delete_fleet, localcluster  # noqa: E402

RBAC = "rbac.authorization.k8s.io/v1"
EVERYTHING = ["get", "list", "watch", "create", "update", "patch", "delete"]


def engine(collections_root):
    """(Cluster, RunSettings, sync_cluster) of this checkout."""
    sys.path.insert(0, collections_root)
    from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import Cluster
    from ansible_collections.gitops.k8s.plugins.module_utils.sync.engine import RunSettings, sync_cluster
    return Cluster, RunSettings, sync_cluster


def tenants(cluster, namespaces):
    """A ServiceAccount ``deployer`` in each namespace, with a Role on that namespace only; returns
    the cluster-scoped objects made (to delete)."""
    made = []
    for ns in namespaces:
        cluster.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                            "metadata": {"name": ns}})
        subject = [{"kind": "ServiceAccount", "namespace": ns, "name": "deployer"}]
        objects = [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer", "namespace": ns}},
            {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "deployer", "namespace": ns}, "rules": [
                {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": EVERYTHING},
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": EVERYTHING},
                {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list", "watch"]}]},
            {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "deployer", "namespace": ns},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
             "subjects": subject},
            {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": ns + "-ns"}, "rules": [
                {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [ns], "verbs": ["get"]}]},
            {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": ns + "-ns"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ns + "-ns"},
             "subjects": subject},
        ]
        for obj in objects:
            cluster.apply(obj, "bench-identity")
        made += [o for o in objects if o["kind"].startswith("Cluster")]
    return made


def fleet_of(root, size, teams, tag, with_identity):
    """A Fleet whose app n lives in team namespace n % teams (acting as its ServiceAccount or not)."""
    kind = "id" if with_identity else "own"
    folder = os.path.join(root, kind)
    os.makedirs(folder)
    fleet = Fleet(folder, size, "benchid-%s-%s" % (tag, kind))
    fleet.namespaces = ["benchid-%s-%s-%d" % (tag, kind, t) for t in range(teams)]
    for n, app in enumerate(fleet.apps):
        app["namespace"] = fleet.namespaces[n % teams]
        if with_identity:
            app["service_account"] = app["namespace"] + "/deployer"
    return fleet


def median(values):
    return statistics.median(values) if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--teams", type=int, default=10, help="namespaces, one ServiceAccount each")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with localcluster.locked():
        kubeconfig = localcluster.up()
        collections_root = localcluster.collections_root()
    Cluster, RunSettings, sync_cluster = engine(collections_root)
    cluster = Cluster.from_params({"kubeconfig": kubeconfig}, pool_size=32)  # the bench's own requests
    playbooks = Playbooks(collections_root, "gitops.k8s")
    root, tag = tempfile.mkdtemp(prefix="bench-identity-"), uuid.uuid4().hex[:4]
    fleets = {label: fleet_of(root, args.apps, args.teams, tag, label == "identity") for label in ("own", "identity")}
    made = []
    try:
        for fleet in fleets.values():
            made += tenants(cluster, fleet.namespaces)
            fleet.path = fleet.inventory(kubeconfig)
            playbooks.run("push", fleet.path)
            playbooks.run("reconcile", fleet.path)  # records stamped with the identity once; memos warm
        figures = {label: {"playbook": [], "engine": [], "requests": []} for label in fleets}
        for round_ in range(args.rounds):
            order = list(fleets) if round_ % 2 == 0 else list(reversed(fleets))  # neither always first
            for label in order:
                fleet = fleets[label]
                figures[label]["playbook"].append(playbooks.run("reconcile", fleet.path)["wall"])
                settings = RunSettings(mode="reconcile", cluster_name=fleet.host, complete=True)
                started = time.perf_counter()
                # a client of its own, as a run has (discovery included), with cluster_sync's pool
                result = sync_cluster(Cluster.from_params({"kubeconfig": kubeconfig}, pool_size=32), fleet.apps,
                                      settings)
                figures[label]["engine"].append(time.perf_counter() - started)
                figures[label]["requests"].append(result["api_requests"])
                decisions = {r["decision"] for r in result["results"]}
                if decisions != {"in sync"} or result["failed_apps"]:
                    raise SystemExit("%s: not a no-op reconcile: %s %s" % (label, decisions, result["failed_apps"]))
        print_figures(args, figures)
    finally:
        for fleet in fleets.values():
            delete_fleet(kubeconfig, fleet)
            for ns in fleet.namespaces:
                cluster.delete({"apiVersion": "v1", "kind": "Namespace", "name": ns})
        for obj in made:
            cluster.delete({"apiVersion": RBAC, "kind": obj["kind"], "namespace": "", "name": obj["metadata"]["name"]})
        shutil.rmtree(root, ignore_errors=True)


def print_figures(args, figures):
    print("\nno-op reconcile of %d apps in %d namespaces, median of %d rounds each" % (args.apps, args.teams, args.rounds))
    print("%-32s %12s %12s %10s" % ("", "playbook s", "engine s", "requests"))
    medians = {label: {k: median(v) for k, v in values.items()} for label, values in figures.items()}
    for label, title in (("own", "the run's own identity"), ("identity", "each app as its team's SA")):
        m = medians[label]
        print("%-32s %12.2f %12.3f %10.0f" % (title, m["playbook"], m["engine"], m["requests"]))
    for label in figures:
        print("  %-8s playbook %s  engine %s" % (label, " ".join("%.2f" % v for v in figures[label]["playbook"]),
                                                 " ".join("%.3f" % v for v in figures[label]["engine"])))
    ratios = {key: median([i / o for i, o in zip(figures["identity"][key], figures["own"][key])])
              for key in ("playbook", "engine", "requests")}
    print("%-32s %12.2f %12.2f %10.2f  (budget: 1.10)" % (
        "ratio with / without", ratios["playbook"], ratios["engine"], ratios["requests"]))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
