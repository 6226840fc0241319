#!/usr/bin/env python
"""How fast health_wait notices a finished rollout, and what waiting costs.

1. Latency: N Deployments roll out on the kwok nodes; separate watches note when the last pod
   became Ready and when the last Deployment status said "rolled out"; we print how long after
   each moment every waiter returned:
   wait_healthy, `kubectl rollout status` (one per Deployment, in parallel, as a pipeline would)
   and `kubectl wait --for=condition=Available` (all in one command). Each in a fresh namespace,
   several rounds, median.
2. Cost: CPU seconds (getrusage, this process and its threads) and API requests while waiting
   on 500 objects of which one never becomes healthy, vs `kubectl wait` on the same Deployments.
3. A fleet: N apps of 3 objects (ConfigMap, Secret, Deployment of one replica) applied at once,
   then every app waited healthy: each app with its own watches, 4 at a time (as the engine's
   converge waited), vs every app at once through one WatchHub (one watch per kind); then the
   same waits again on the apps all healthy, which is what waiting itself costs. The first
   figure is bounded by the cluster's controllers (the time until the last Deployment is
   available, printed beside it).

Run: .venv/bin/python tests/bench/bench_health_wait.py [--deployments 5] [--rounds 3] [--apps 100]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "cluster"))
import localcluster  # noqa: E402

sys.path.insert(0, localcluster.collections_root())
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import Cluster  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.concurrency import each  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.health import Health, assess  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.health.hub import WatchHub  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.health.status import condition  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.health.watch import wait_healthy  # noqa: E402

KUBECTL = os.path.join(localcluster.tools_dir(), "kubectl")


def deployment(namespace, name, replicas, never_ready=False):
    labels = {"app": name}
    pod_labels = dict(labels, **({localcluster.NEVER_READY_LABEL: "true"} if never_ready else {}))
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": pod_labels},
                                  "spec": {"containers": [{"name": "main", "image": "registry.example/app:1"}]}}}}


class Clock:
    """Watches one kind in a namespace and remembers when the last object turned ``done``."""

    def __init__(self, cluster, namespace, api_version, kind, done):
        self.cluster, self.namespace, self.done, self.last = cluster, namespace, done, None
        self.resource = cluster.resource(api_version, kind)
        self.seen = set()
        self.stop = threading.Event()
        self.listed = threading.Event()  # its watch sees every change made after this is set
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        version = self.cluster.list(self.resource, self.namespace)[1]
        self.listed.set()
        while not self.stop.is_set():
            for event in self.cluster.watch(self.resource, self.namespace, version, timeout_seconds=5):
                obj = event["object"]
                version = obj["metadata"].get("resourceVersion", version)
                if event["type"] != "BOOKMARK" and self.done(obj) and obj["metadata"]["name"] not in self.seen:
                    self.seen.add(obj["metadata"]["name"])
                    self.last = time.monotonic()


def pod_ready(pod):
    ready = condition(pod, "Ready")
    return bool(ready and ready.get("status") == "True")


def deployment_done(obj):
    return assess(obj)[0] == Health.HEALTHY


def namespace(cluster):
    name = "bench-hw-%s" % uuid.uuid4().hex[:6]
    cluster.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def drop(cluster, name):
    cluster.delete({"apiVersion": "v1", "kind": "Namespace", "name": name})


def run_gitops(cluster, ns, names):
    refs = [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": ns, "name": n} for n in names]
    result = wait_healthy(cluster, refs, timeout=120)
    assert result["healthy"], result["summary"]


def run_rollout_status(cluster, ns, names):
    procs = [subprocess.Popen([KUBECTL, "-n", ns, "rollout", "status", "deployment/" + n, "--timeout=120s"],
                              stdout=subprocess.DEVNULL) for n in names]
    assert all(p.wait() == 0 for p in procs)


def run_kubectl_wait(cluster, ns, names):
    subprocess.run([KUBECTL, "-n", ns, "wait", "--for=condition=Available", "--timeout=120s"]
                   + ["deployment/" + n for n in names], check=True, stdout=subprocess.DEVNULL)


def latency(cluster, waiter, deployments, replicas):
    ns = namespace(cluster)
    try:
        pods = Clock(cluster, ns, "v1", "Pod", pod_ready)
        rollouts = Clock(cluster, ns, "apps/v1", "Deployment", deployment_done)
        assert pods.listed.wait(60) and rollouts.listed.wait(60), "the clocks could not list in 60 s"
        names = ["app-%d" % i for i in range(deployments)]
        for n in names:
            cluster.apply(deployment(ns, n, replicas), "bench")
        waiter(cluster, ns, names)
        done = time.monotonic()
        pods.stop.set()
        rollouts.stop.set()
        assert len(pods.seen) == deployments * replicas, "saw %d ready pods" % len(pods.seen)
        return done - pods.last, done - rollouts.last
    finally:
        drop(cluster, ns)


def cpu_seconds(who=resource.RUSAGE_SELF):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def waiting_cost(cluster, seconds):
    """500 objects (450 ConfigMaps, 49 ready Deployments, 1 never ready), waited on for ``seconds``."""
    ns = namespace(cluster)
    try:
        objs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-%d" % i, "namespace": ns},
                 "data": {"i": str(i)}} for i in range(450)]
        objs += [deployment(ns, "app-%d" % i, 1) for i in range(49)]
        objs.append(deployment(ns, "stuck", 1, never_ready=True))
        for obj in objs:
            cluster.apply(obj, "bench")
        refs = [{"apiVersion": o["apiVersion"], "kind": o["kind"], "namespace": ns, "name": o["metadata"]["name"]}
                for o in objs]
        wait_healthy(cluster, refs[:-1], timeout=120)  # all but the stuck one are up: now measure pure waiting
        before_cpu, before_requests = cpu_seconds(), cluster.requests_made
        started = time.monotonic()
        lines = []
        result = wait_healthy(cluster, refs, timeout=seconds, progress=lines.append)  # as the module waits
        ours = (cpu_seconds() - before_cpu, cluster.requests_made - before_requests, time.monotonic() - started)
        assert not result["healthy"] and result["status"] == Health.PROGRESSING and lines
        before_children = cpu_seconds(resource.RUSAGE_CHILDREN)
        subprocess.run([KUBECTL, "-n", ns, "wait", "--for=condition=Available", "--timeout=%ds" % seconds]
                       + ["deployment/" + o["metadata"]["name"] for o in objs if o["kind"] == "Deployment"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)  # it times out, by design
        theirs = cpu_seconds(resource.RUSAGE_CHILDREN) - before_children
        return ours, theirs
    finally:
        drop(cluster, ns)


def app_objects(ns, name):
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": {"a": "b"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}, "stringData": {"t": "s"}},
            deployment(ns, name, 1)]


def refs_of(objs):
    return [{"apiVersion": o["apiVersion"], "kind": o["kind"], "namespace": o["metadata"]["namespace"],
             "name": o["metadata"]["name"]} for o in objs]


def each_alone(cluster, apps):
    return each(4, lambda refs: wait_healthy(cluster, refs, timeout=900), apps)


def through_one_hub(cluster, apps):
    with WatchHub(cluster) as hub:
        hub.expect([ref for refs in apps for ref in refs])
        return each(len(apps), lambda refs: wait_healthy(cluster, refs, timeout=900, hub=hub), apps)


def measured(cluster, waiter, apps):
    """(seconds, CPU seconds, API requests) of ``waiter`` waiting every app healthy."""
    before_cpu, before_requests, started = cpu_seconds(), cluster.requests_made, time.monotonic()
    results = waiter(cluster, apps)
    assert all(r["healthy"] for r in results), [r["summary"] for r in results if not r["healthy"]][:3]
    return time.monotonic() - started, cpu_seconds() - before_cpu, cluster.requests_made - before_requests


def fleet_round(cluster, waiter, size):
    """Apply ``size`` apps (16 applies at a time), wait with ``waiter``: its figures, the controllers'
    time until the last Deployment was available, and ``waiter`` again on the healthy apps."""
    ns = namespace(cluster)
    try:
        rollouts = Clock(cluster, ns, "apps/v1", "Deployment", deployment_done)
        assert rollouts.listed.wait(60), "the clock could not list in 60 s"
        apps = [app_objects(ns, "app-%04d" % n) for n in range(size)]
        started = time.monotonic()
        each(16, lambda obj: cluster.apply(obj, "bench"), [obj for objs in apps for obj in objs])
        applied = time.monotonic()
        first = measured(cluster, waiter, [refs_of(objs) for objs in apps])
        rollouts.stop.set()
        again = measured(cluster, waiter, [refs_of(objs) for objs in apps])
        return applied - started, first, rollouts.last - started, again
    finally:
        drop(cluster, ns)
        while cluster.get({"apiVersion": "v1", "kind": "Namespace", "name": ns}) is not None:
            time.sleep(2)  # its objects go at the controllers' pace: the next round must not share it


def fleet(cluster, size):
    print("\nA fleet: %d apps of 3 objects applied at once, then every app waited healthy" % size)
    for label, waiter in (("each app its own watches, 4 at a time", each_alone),
                          ("every app through one WatchHub", through_one_hub)):
        applying, first, controllers, again = fleet_round(cluster, waiter, size)
        print("  %-40s applied in %5.1fs, all healthy %6.1fs later (last Deployment available after %5.1fs);"
              " %.2f CPU s, %d API requests" % (label, applying, first[0], controllers - applying, first[1], first[2]))
        print("  %-40s waiting on the healthy apps: %.2fs, %.2f CPU s, %d API requests"
              % ("", again[0], again[1], again[2]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--deployments", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wait-seconds", type=int, default=10)
    parser.add_argument("--apps", type=int, default=100, help="of the fleet case (0: skip it)")
    args = parser.parse_args()
    cluster = Cluster.from_params({"kubeconfig": localcluster.KUBECONFIG}, pool_size=32)  # 16 applies at once, and watches

    print("Latency: waiter returns after the last pod turned Ready / after the last Deployment status showed the\n"
          "rollout complete (the difference is the controllers' delay) - %d Deployments x %d replicas, median of %d"
          % (args.deployments, args.replicas, args.rounds))
    medians = {}
    for label, waiter in (("gitops.k8s wait_healthy", run_gitops),
                          ("kubectl rollout status (parallel)", run_rollout_status),
                          ("kubectl wait --for=condition=Available", run_kubectl_wait)):
        samples = [latency(cluster, waiter, args.deployments, args.replicas) for round_ in range(args.rounds)]
        medians[label] = statistics.median(s[0] for s in samples)
        print("  %-40s after pod Ready %6.3fs   after Deployment status %6.3fs   (rounds: %s)" % (
            label, medians[label], statistics.median(s[1] for s in samples),
            ", ".join("%.3f/%.3f" % s for s in samples)))
    ours = medians["gitops.k8s wait_healthy"]
    for label, value in medians.items():
        if label != "gitops.k8s wait_healthy":
            print("  %s / wait_healthy = %.1fx" % (label, value / ours if ours > 0 else float("inf")))

    (cpu, requests, elapsed), kubectl_cpu = waiting_cost(cluster, args.wait_seconds)
    print("\nCost of waiting %.0fs on 500 objects (one never ready):" % elapsed)
    print("  wait_healthy: %.3f CPU s, %d API requests" % (cpu, requests))
    print("  kubectl wait on the 50 Deployments alone: %.3f CPU s" % kubectl_cpu)
    print("  kubectl / wait_healthy CPU = %.1fx" % (kubectl_cpu / cpu if cpu > 0 else float("inf")))
    if args.apps:
        fleet(cluster, args.apps)


if __name__ == "__main__":
    main()
