#!/usr/bin/env python
"""Render a generated directory of 1,000 objects; compare with `kubectl kustomize` on the same files.

    .venv/bin/python tests/bench/bench_render.py [--objects 1000] [--runs 5]

Prints the median wall time of the render engine (what the module spends: parse, validate,
order, write the bundle) and of the peer, and their ratio. No assertion: a figure to watch.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "cluster"))
import localcluster  # noqa: E402

sys.path.insert(0, localcluster.collections_root())
from ansible_collections.gitops.k8s.plugins.module_utils.render import render  # noqa: E402

KINDS = [
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  labels: {{app: bench, n: '{i}'}}\n"
    "data:\n  config.yaml: |\n    key: value-{i}\n    other: [1, 2, 3]\n",
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\nspec:\n  selector: {{app: web-{i}}}\n"
    "  ports: [{{name: http, port: 80, targetPort: 8080}}]\n",
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{i}\n  annotations: {{argocd.argoproj.io/sync-wave: '1'}}\n"
    "spec:\n  replicas: 2\n  selector: {{matchLabels: {{app: web-{i}}}}}\n  template:\n    metadata: {{labels: {{app: web-{i}}}}}\n"
    "    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n        ports: [{{containerPort: 8080}}]\n"
    "        resources: {{requests: {{cpu: 10m, memory: 16Mi}}}}\n        env: [{{name: N, value: '{i}'}}]\n",
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s-{i}\ntype: Opaque\nstringData: {{password: 'p-{i}'}}\n",
]


def generate(folder, count, per_file=5):
    files = []
    for start in range(0, count, per_file):
        name = "objects-%04d.yaml" % (start // per_file)
        with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
            handle.write("---\n".join(KINDS[i % len(KINDS)].format(i=i) for i in range(start, min(start + per_file, count))))
        files.append(name)
    return files


def timed(call, runs):
    times = []
    for _run in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    kubectl = os.path.join(localcluster.tools_dir(), "kubectl")
    with tempfile.TemporaryDirectory(prefix="bench-render-") as root:
        os.environ["XDG_CACHE_HOME"] = os.path.join(root, "cache")
        plain = os.path.join(root, "checkout", "plain")
        kust = os.path.join(root, "checkout", "kust")
        os.makedirs(plain)
        os.makedirs(kust)
        files = generate(plain, args.objects)
        generate(kust, args.objects)
        with open(os.path.join(kust, "kustomization.yaml"), "w") as handle:
            handle.write("resources:\n" + "".join("- %s\n" % f for f in files))

        result = render(os.path.join(root, "checkout"), "plain")
        assert result["count"] == args.objects, result["count"]
        engine = timed(lambda: render(os.path.join(root, "checkout"), "plain"), args.runs)
        peer = timed(lambda: subprocess.run([kubectl, "kustomize", kust], check=True, capture_output=True), args.runs)
        ours_kustomize = timed(lambda: render(os.path.join(root, "checkout"), "kust"), args.runs)

    print("objects: %d in %d files, median of %d runs" % (args.objects, len(files), args.runs))
    print("gitops.k8s render (directory), engine time:        %.3f s" % engine)
    print("kubectl kustomize (peer, only prints the YAML):    %.3f s" % peer)
    print("gitops.k8s render (kustomize: peer + bundle):      %.3f s" % ours_kustomize)
    print("ratio render(directory) / kubectl kustomize:       %.2f" % (engine / peer))


if __name__ == "__main__":
    main()
