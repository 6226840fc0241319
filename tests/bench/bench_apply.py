"""Benchmark: apply and diff of 1,000 objects, gitops.k8s vs kubectl --server-side.

Run with `make bench` (or `.venv/bin/python tests/bench/bench_apply.py [COUNT]`) against the local
control plane. Prints wall time and API requests for:

  initial apply   gitops.k8s.apply engine (validated: dry-run of everything, then apply)
                  vs  kubectl apply --server-side -f
  no-op diff      gitops.k8s.diff engine (fast path) vs kubectl diff --server-side -f
  no-op apply     gitops.k8s.apply engine vs kubectl apply --server-side -f (again)

and the same no-op diff through ansible-playbook (the module, process start-up included). Half
the objects are ConfigMaps, half Deployments with 0 replicas (the controllers still write their
status: the fast path must see through that). kubectl's requests are counted from its -v=6 log.
kubernetes.core is not measured: it is not installable here without Galaxy access.
Figures, not assertions.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "cluster"))
import localcluster  # noqa: E402

sys.path.insert(0, localcluster.collections_root())
from ansible_collections.gitops.k8s.plugins.module_utils.apply import Options, apply  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.bundle import Bundle, write_bundle  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.cluster import Cluster  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.diff import diff  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.inventory import read_record  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.refs import ref_of  # noqa: E402

# kubectl -v=6 logs one line per response: ... "Response" verb="GET" url="https://..." status="200 OK"
RESPONSE_LINE = re.compile(r'"Response" verb="[A-Z]+" url=')


def objects(ns, count):
    out = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}]
    for n in range(count // 2):
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-%04d" % n, "namespace": ns},
                    "data": {"index": str(n), "payload": "x" * 200}})
    for n in range(count - count // 2):
        name = "web-%04d" % n
        out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
                    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                             "template": {"metadata": {"labels": {"app": name}},
                                          "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
    return out


def make_bundle(path, objs):
    entries = [dict(ref_of(o), wave=0, hook=None, hook_delete_policy=[], source="bench.yaml") for o in objs]
    write_bundle(path, objs, entries, revision="bench")
    return Bundle.load(path)


def timed(func):
    started = time.perf_counter()
    out = func()
    return time.perf_counter() - started, out


def ours(cluster, what, func):
    before = cluster.requests_made
    seconds, out = timed(func)
    return {"what": what, "seconds": seconds, "requests": cluster.requests_made - before, "out": out}


def kubectl(tools, what, args, manifest):
    argv = [os.path.join(tools, "kubectl"), "--kubeconfig", localcluster.KUBECONFIG, "-v=6"] + args + ["-f", manifest]
    seconds, proc = timed(lambda: subprocess.run(argv, capture_output=True, text=True, check=False))
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and "diff" not in args):
        raise SystemExit("%s failed: %s" % (" ".join(argv), proc.stderr[-2000:]))
    requests = len(RESPONSE_LINE.findall(proc.stderr))
    return {"what": what, "seconds": seconds, "requests": requests}


def module_noop_diff(bundle_path, app):
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"gitops.k8s.diff": {"bundle": bundle_path, "app": app}, "register": "d"},
        {"ansible.builtin.assert": {"that": ["not d.changed"]}},
    ]}]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        json.dump(play, handle)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=localcluster.collections_root(), KUBECONFIG=localcluster.KUBECONFIG,
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), handle.name, "-i", "localhost,",
            "-c", "local"]
    seconds, proc = timed(lambda: subprocess.run(argv, capture_output=True, text=True, env=env, check=False))
    os.unlink(handle.name)
    if proc.returncode:
        raise SystemExit("module run failed:\n%s" % proc.stdout[-3000:])
    return seconds


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    kubeconfig = subprocess.run([os.path.join(REPO, "tests", "cluster", "up")], stdout=subprocess.PIPE, text=True,
                                check=True).stdout.strip().splitlines()[-1]
    tools = localcluster.tools_dir()
    cluster = Cluster.from_params({"kubeconfig": kubeconfig}, pool_size=16)
    tag = uuid.uuid4().hex[:6]
    ns_ours, ns_kubectl, app = "bench-ours-%s" % tag, "bench-kubectl-%s" % tag, "bench-%s" % tag
    work = tempfile.mkdtemp(prefix="bench-apply-")
    bundle = make_bundle(os.path.join(work, "bundle"), objects(ns_ours, count))
    manifest = os.path.join(work, "kubectl.yaml")
    make_bundle(os.path.join(work, "k"), objects(ns_kubectl, count))
    os.replace(os.path.join(work, "k", "manifest.yaml"), manifest)
    options = Options(revision="bench", concurrency=16, wait_waves=False)
    rows = []
    try:
        rows.append((ours(cluster, "initial apply", lambda: apply(cluster, bundle, app, options)),
                     kubectl(tools, "initial apply", ["apply", "--server-side", "--field-manager", "bench"], manifest)))
        time.sleep(2)  # let the deployment controller write every status first (both sides alike)
        noop_diff = ours(cluster, "no-op diff", lambda: diff(cluster, bundle, read_record(cluster, app), concurrency=16))
        assert not noop_diff["out"][0]["changed"], noop_diff["out"][0]["summary"]
        rows.append((noop_diff, kubectl(tools, "no-op diff", ["diff", "--server-side", "--field-manager", "bench"], manifest)))
        noop_apply = ours(cluster, "no-op apply", lambda: apply(cluster, bundle, app, options))
        assert not noop_apply["out"]["changed"]
        rows.append((noop_apply, kubectl(tools, "no-op apply", ["apply", "--server-side", "--field-manager", "bench"], manifest)))
        module_seconds = module_noop_diff(bundle.path, app)
    finally:
        for ns in (ns_ours, ns_kubectl):
            cluster.delete({"apiVersion": "v1", "kind": "Namespace", "name": ns})
        for api, kind in (("v1", "ConfigMap"), ("coordination.k8s.io/v1", "Lease")):
            cluster.delete({"apiVersion": api, "kind": kind, "namespace": "gitops-system", "name": "gitops-app-" + app})

    print("%d objects (%d ConfigMaps, %d Deployments), concurrency 16" % (count, count // 2, count - count // 2))
    print("%-14s %12s %10s %12s %10s %10s %10s" % ("step", "gitops.k8s s", "requests", "kubectl s", "requests",
                                                   "time ratio", "req ratio"))
    for mine, theirs in rows:
        print("%-14s %12.2f %10d %12.2f %10d %9.2fx %9.2fx" % (
            mine["what"], mine["seconds"], mine["requests"], theirs["seconds"], theirs["requests"],
            theirs["seconds"] / mine["seconds"], theirs["requests"] / max(1, mine["requests"])))
    print("ratios are kubectl / gitops.k8s: above 1 means gitops.k8s is faster or makes fewer requests")
    print("no-op diff through ansible-playbook (module, process start-up included): %.2fs" % module_seconds)
    print("initial apply detail: %s" % json.dumps(rows[0][0]["out"]["summary"]))


if __name__ == "__main__":
    main()
