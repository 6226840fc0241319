#!/usr/bin/env python
"""Render a directory of 200 SOPS-encrypted Secrets (age), beside the same 200 Secrets in clear.

    .venv/bin/python tests/bench/bench_secrets.py [--secrets 200] [--runs 3]

Prints the median wall time of each render and its time per file: the cost of decryption is one
sops process per file (run side by side, secrets.CONCURRENCY at a time). No assertion: a figure to watch.
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
from ansible_collections.gitops.k8s.plugins.module_utils.render.secrets import CONCURRENCY  # noqa: E402

SECRET = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s-{i}\n  labels: {{app: bench}}\ntype: Opaque\n"
          "stringData:\n  password: p-{i}-{pad}\n  user: user-{i}\n")


def timed(call, runs):
    times = []
    for _run in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--secrets", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tools = localcluster.tools_dir()
    os.environ["PATH"] = tools + os.pathsep + os.environ["PATH"]
    out = subprocess.run(["age-keygen"], capture_output=True, text=True, check=True).stdout
    recipient = next(line.split(": ")[1] for line in out.splitlines() if line.startswith("# public key: "))
    identity = next(line for line in out.splitlines() if line.startswith("AGE-SECRET-KEY-"))
    with tempfile.TemporaryDirectory(prefix="bench-secrets-") as root:
        os.environ["XDG_CACHE_HOME"] = os.path.join(root, "cache")
        checkout = os.path.join(root, "checkout")
        for folder in ("plain", "sops"):
            os.makedirs(os.path.join(checkout, folder))
        for i in range(args.secrets):
            text = SECRET.format(i=i, pad="x" * 24)
            with open(os.path.join(checkout, "plain", "secret-%03d.yaml" % i), "w", encoding="utf-8") as handle:
                handle.write(text)
            encrypted = subprocess.run(["sops", "encrypt", "--age", recipient, "--encrypted-regex", "^(data|stringData)$",
                                        "--input-type", "yaml", "--output-type", "yaml", "/dev/stdin"],
                                       input=text, capture_output=True, text=True, check=True).stdout
            with open(os.path.join(checkout, "sops", "secret-%03d.yaml" % i), "w", encoding="utf-8") as handle:
                handle.write(encrypted)
        decryption = {"age_keys": [identity]}
        result = render(checkout, "sops", decryption=decryption)
        assert result["count"] == args.secrets and len(result["renderer"]["decrypted"]) == args.secrets, result["count"]
        # every run renders anew: the plain render's bundle exists after the first run, as in a reconcile
        plain = timed(lambda: render(checkout, "plain"), args.runs)
        sops = timed(lambda: render(checkout, "sops", decryption=decryption), args.runs)

    print("%d Secrets, one file each, median of %d runs; sops %s at a time" % (args.secrets, args.runs, CONCURRENCY))
    print("  plain render:          %7.3f s  %6.2f ms/file" % (plain, plain * 1000 / args.secrets))
    print("  SOPS-encrypted render: %7.3f s  %6.2f ms/file  (x%.1f)" % (sops, sops * 1000 / args.secrets, sops / plain))


if __name__ == "__main__":
    main()
