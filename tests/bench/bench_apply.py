"""Benchmark: apply and diff of 1,000 objects, gitops.k8s vs kubectl --server-side and kubernetes.core.

Run with `make bench` (or `.venv/bin/python tests/bench/bench_apply.py [COUNT] [--core-objects N]`)
against the local control plane. Prints wall time and API requests for:

  initial apply   gitops.k8s.apply engine (validated: dry-run of everything, then apply)
                  vs  kubectl apply --server-side -f
  no-op diff      gitops.k8s.diff engine (fast path) vs kubectl diff --server-side -f
  no-op apply     gitops.k8s.apply engine vs kubectl apply --server-side -f (again)

and the same no-op diff and no-op apply through ansible-playbook (the modules, process start-up
included). Then the whole process as users run it: `ansible-playbook gitops.k8s.push` of one app
whose Git repository holds the objects as COUNT files (fetch, render, compare, apply; its health
wait off, as kubectl does not wait), initial and no-op, against `kubectl apply --server-side -f`
of a directory of the same files, with two floors measured beside them: ansible-playbook running no
task, and the same writes alone (server-side applies, 16 at a time). Half the objects are
ConfigMaps, half Deployments with 0 replicas (the controllers still write their status: the fast
path must see through that). kubectl's requests are counted from its -v=6 log.

kubernetes.core (from the `ansible` package, in its own cached venv: see peers.py) runs
`kubernetes.core.k8s` the two ways its users feed it manifests: one multi-document `src:` file
(one process, still a GET and an apply per object) over the same COUNT objects, and a `loop` over
the documents (one module process per object). A loop over 1,000 objects takes many minutes, so it
gets fewer objects (--core-objects) and that comparison is per object. Each runs an initial apply,
a no-op apply and `--check --diff`. Its requests are not counted here yet; the local control
plane's audit log has them (tests/bench/audit.py counts them by client).
Figures, not assertions.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "cluster"))
import localcluster  # noqa: E402

sys.path.insert(0, localcluster.collections_root())
from ansible_collections.gitops.k8s.plugins.module_utils.sync.apply import Options, apply  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.bundle import Bundle, write_bundle  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import Cluster  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.sync.compare import diff  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.health import Health, assess  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import read_record  # noqa: E402
from ansible_collections.gitops.k8s.plugins.module_utils.refs import ref_of  # noqa: E402
import peers  # noqa: E402
from bench_fleet import Playbooks, git  # noqa: E402

# Goals of the whole-process rows: gitops.k8s's wall time / kubectl's.
WHOLE_PROCESS_GOALS = {"initial apply": 0.5, "no-op apply": 0.25}

# kubectl -v=6 logs one line per response: ... "Response" verb="GET" url="https://..." status="200 OK"
RESPONSE_LINE = re.compile(r'"Response" verb="[A-Z]+" url=')


def rolled_out(cluster, namespaces):
    deployments = cluster.resource("apps/v1", "Deployment")
    return all(assess(obj)[0] == Health.HEALTHY for ns in namespaces for obj in cluster.list(deployments, ns)[0])


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


def write_files(folder, objs):
    """One file per object, as a repository or a kubectl -f directory holds them."""
    os.makedirs(folder)
    for obj in objs:
        # kubectl applies a directory's files in name order: the Namespace must come first
        first = "00-" if obj["kind"] == "Namespace" else ""
        with open(os.path.join(folder, "%s%s-%s.yaml" % (first, obj["kind"].lower(), obj["metadata"]["name"])), "w",
                  encoding="utf-8") as handle:
            json.dump(obj, handle)  # JSON is YAML: no serialiser advantage for either side


def whole_process(tools, kubeconfig, work, count, tag):
    """[(step, gitops.k8s push seconds, kubectl seconds)] for an initial apply and a no-op, whole
    processes both (main's cleanup deletes what they made, named after ``tag``)."""
    ns_push, ns_kubectl, app = "bench-push-%s" % tag, "bench-kubectl-files-%s" % tag, "bench-push-%s" % tag
    repo, folder = os.path.join(work, "repo"), os.path.join(work, "kubectl-files")
    write_files(repo, objects(ns_push, count))
    write_files(folder, objects(ns_kubectl, count))
    git(work, "init", "-q", "-b", "main", repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "%d objects" % count)
    host = "bench-apply-" + tag
    os.makedirs(os.path.join(work, "inventory", "host_vars"))
    with open(os.path.join(work, "inventory", "host_vars", host + ".json"), "w", encoding="utf-8") as handle:
        json.dump({"ansible_connection": "local", "gitops_cluster": {"kubeconfig": kubeconfig},
                   "gitops_apps": [{"name": app, "repo": "file://" + repo, "path": ".", "wait": {"enabled": False}}]},
                  handle)
    inventory = os.path.join(work, "inventory", "hosts.yml")
    with open(inventory, "w", encoding="utf-8") as handle:
        json.dump({"all": {"hosts": {host: {}}}}, handle)
    playbooks = Playbooks(localcluster.collections_root(), "gitops.k8s")
    rows = []
    for step in ("initial apply", "no-op apply"):
        ours_s = playbooks.run("push", inventory)["wall"]
        theirs = kubectl(tools, step, ["apply", "--server-side", "--field-manager", "bench"], folder)
        rows.append((step, ours_s, theirs["seconds"]))
    return rows


def floors(cluster, work, count, tag):
    """What no tool driven this way can go below on this machine: ansible-playbook running no task,
    and ``count`` server-side applies alone (16 at a time, no validation, no Ansible, no render)."""
    play = os.path.join(work, "no-task.yml")
    with open(play, "w", encoding="utf-8") as handle:
        json.dump([{"hosts": "localhost", "gather_facts": False, "tasks": []}], handle)
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), play, "-i", "localhost,", "-c", "local"]
    no_task = None
    for _attempt in range(3):  # a floor: the quickest of three
        seconds, proc = timed(lambda: subprocess.run(argv, capture_output=True, text=True, check=False))
        if proc.returncode:
            raise SystemExit("ansible-playbook with no task failed:\n%s" % proc.stdout[-2000:])
        no_task = min(seconds, no_task or seconds)
    objs = objects("bench-floor-" + tag, count)
    cluster.apply(objs[0], "bench-floor")
    with ThreadPoolExecutor(16) as pool:
        writes, _out = timed(lambda: list(pool.map(lambda obj: cluster.apply(obj, "bench-floor"), objs[1:])))
    return {"no task": no_task, "writes": writes}


def module_noop(module, bundle_path, app):
    """Seconds of a gitops.k8s.<module> run through ansible-playbook that must change nothing."""
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"gitops.k8s." + module: {"bundle": bundle_path, "app": app}, "register": "d"},
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


def core_playbook(manifest, loop):
    """kubernetes.core.k8s as its users write it: `apply: true` with `server_side_apply` (the same
    server-side apply as the other columns), fed by a loop over the documents or by `src:`."""
    task = {"kubernetes.core.k8s": {"apply": True, "server_side_apply": {"field_manager": "bench-core"}}}
    if loop:
        task["kubernetes.core.k8s"]["definition"] = "{{ item }}"
        task["loop"] = "{{ lookup('ansible.builtin.file', %r) | ansible.builtin.from_yaml_all | list }}" % manifest
        task["loop_control"] = {"label": "{{ item.kind }} {{ item.metadata.name }}"}
    else:
        task["kubernetes.core.k8s"]["src"] = manifest
    return [{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]


def changed_items(task_result):
    """"changed/all" objects as kubernetes.core reported them, from the json callback's task result."""
    items = task_result.get("results") or task_result.get("result", {}).get("results") or [task_result]
    return "%d/%d" % (sum(1 for item in items if item.get("changed")), len(items))


def core_run(peer, what, play, check=False):
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        json.dump(play, handle)
    env = dict(peer.env(localcluster.KUBECONFIG), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    argv = [peer.ansible_playbook, handle.name, "-i", "localhost,", "-c", "local"] + (["--check", "--diff"] if check else [])
    seconds, proc = timed(lambda: subprocess.run(argv, capture_output=True, text=True, env=env, check=False))
    os.unlink(handle.name)
    if proc.returncode:
        raise SystemExit("kubernetes.core %s failed:\n%s\n%s" % (what, proc.stdout[-3000:], proc.stderr[-2000:]))
    tasks = json.loads(proc.stdout)["plays"][0]["tasks"]
    changed = changed_items(tasks[0]["hosts"]["localhost"]) if tasks else ""
    return {"what": what, "seconds": seconds, "changed": changed}


def kubernetes_core(peer, manifest, loop):
    play = core_playbook(manifest, loop)
    return [core_run(peer, "initial apply", play), core_run(peer, "no-op apply", play),
            core_run(peer, "no-op diff", play, check=True)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("count", nargs="?", type=int, default=1000, help="objects for gitops.k8s and kubectl")
    # 50: the loop costs ~0.6 s per object and runs three times; make bench stays near 5 minutes.
    parser.add_argument("--core-objects", type=int, default=50,
                        help="objects for kubernetes.core (a loop forks one process per object)")
    args = parser.parse_args()
    count, core_count = args.count, args.core_objects
    peer = peers.kubernetes_core()
    kubeconfig = subprocess.run([os.path.join(REPO, "tests", "cluster", "up")], stdout=subprocess.PIPE, text=True,
                                check=True).stdout.strip().splitlines()[-1]
    tools = localcluster.tools_dir()
    cluster = Cluster.from_params({"kubeconfig": kubeconfig}, pool_size=16)
    tag = uuid.uuid4().hex[:6]
    ns_ours, ns_kubectl, app = "bench-ours-%s" % tag, "bench-kubectl-%s" % tag, "bench-%s" % tag
    ns_core = {"loop": "bench-core-loop-%s" % tag, "src": "bench-core-src-%s" % tag}
    work = tempfile.mkdtemp(prefix="bench-apply-")
    bundle = make_bundle(os.path.join(work, "bundle"), objects(ns_ours, count))
    manifest = os.path.join(work, "kubectl.yaml")
    make_bundle(os.path.join(work, "k"), objects(ns_kubectl, count))
    os.replace(os.path.join(work, "k", "manifest.yaml"), manifest)
    core_manifests = {}
    for way, ns in ns_core.items():
        make_bundle(os.path.join(work, way), objects(ns, core_count if way == "loop" else count))
        core_manifests[way] = os.path.join(work, way, "manifest.yaml")
    options = Options(revision="bench", concurrency=16, wait_waves=False)
    rows = []
    try:
        rows.append((ours(cluster, "initial apply", lambda: apply(cluster, bundle, app, options)),
                     kubectl(tools, "initial apply", ["apply", "--server-side", "--field-manager", "bench"], manifest)))
        # the deployment controller writes every status first (both sides alike)
        localcluster.wait_for("every Deployment rolled out", lambda: rolled_out(cluster, (ns_ours, ns_kubectl)), 600)
        noop_diff = ours(cluster, "no-op diff", lambda: diff(cluster, bundle, read_record(cluster, app), concurrency=16))
        assert not noop_diff["out"]["changed"], noop_diff["out"]["summary"]
        rows.append((noop_diff, kubectl(tools, "no-op diff", ["diff", "--server-side", "--field-manager", "bench"], manifest)))
        noop_apply = ours(cluster, "no-op apply", lambda: apply(cluster, bundle, app, options))
        assert not noop_apply["out"]["changed"]
        rows.append((noop_apply, kubectl(tools, "no-op apply", ["apply", "--server-side", "--field-manager", "bench"], manifest)))
        module_seconds = {name: module_noop(name, bundle.path, app) for name in ("diff", "apply")}
        whole = whole_process(tools, kubeconfig, work, count, tag)
        floor = floors(cluster, work, count, tag)
        core_startup = core_run(peer, "start-up", [{"hosts": "localhost", "gather_facts": False, "tasks": []}])
        core = {way: kubernetes_core(peer, core_manifests[way], way == "loop") for way in ("loop", "src")}
    finally:
        for ns in (ns_ours, ns_kubectl, "bench-push-" + tag, "bench-kubectl-files-" + tag, "bench-floor-" + tag) \
                + tuple(ns_core.values()):
            cluster.delete({"apiVersion": "v1", "kind": "Namespace", "name": ns})
        for name in (app, "bench-push-" + tag):
            for api, kind in (("v1", "ConfigMap"), ("coordination.k8s.io/v1", "Lease")):
                cluster.delete({"apiVersion": api, "kind": kind, "namespace": "gitops-system", "name": "gitops-app-" + name})

    print("%d objects (%d ConfigMaps, %d Deployments), concurrency 16" % (count, count // 2, count - count // 2))
    print("%-14s %12s %10s %12s %10s %10s %10s" % ("step", "gitops.k8s s", "requests", "kubectl s", "requests",
                                                   "time ratio", "req ratio"))
    for mine, theirs in rows:
        print("%-14s %12.2f %10d %12.2f %10d %9.2fx %9.2fx" % (
            mine["what"], mine["seconds"], mine["requests"], theirs["seconds"], theirs["requests"],
            theirs["seconds"] / mine["seconds"], theirs["requests"] / max(1, mine["requests"])))
    print("ratios are kubectl / gitops.k8s: above 1 means gitops.k8s is faster or makes fewer requests")
    print("through ansible-playbook (module, process start-up included): no-op diff %.2fs, no-op apply %.2fs" % (
        module_seconds["diff"], module_seconds["apply"]))
    print("initial apply detail: %s" % json.dumps(rows[0][0]["out"]["summary"]))
    print()
    print("whole process: ansible-playbook gitops.k8s.push (a Git repo of %d files, health wait off) vs kubectl apply"
          " --server-side -f <directory of the same %d files>" % (count, count))
    print("%-14s %12s %12s %12s  %s" % ("step", "push s", "kubectl s", "push/kubectl", "goal"))
    for step, ours_s, theirs_s in whole:
        goal = WHOLE_PROCESS_GOALS[step]
        verdict = "met" if ours_s / theirs_s <= goal else "MISSED"
        print("%-14s %12.2f %12.2f %11.2fx  <= %.2fx %s" % (step, ours_s, theirs_s, ours_s / theirs_s, goal, verdict))
    kubectl_s = {step: theirs_s for step, _ours_s, theirs_s in whole}
    print("floors on this machine: ansible-playbook running no task %.2fs (%.2fx kubectl's no-op); %d server-side"
          " applies alone, 16 at a time, no validation, no Ansible: %.2fs (%.2fx kubectl's initial apply)" % (
              floor["no task"], floor["no task"] / kubectl_s["no-op apply"], count, floor["writes"],
              floor["writes"] / kubectl_s["initial apply"]))

    # Like the peer, gitops.k8s's no-op rows run the module through ansible-playbook; its initial
    # apply is the engine's (no process start-up, which the peer's figure includes).
    steps = ("initial apply", "no-op apply", "no-op diff")
    mine = dict(zip(steps, (rows[0][0]["seconds"], module_seconds["apply"], module_seconds["diff"])))
    print()
    print("kubernetes.core %s: kubernetes.core.k8s with apply: true + server_side_apply; requests not counted"
          % peer.version)
    print("src: one multi-document file, %d objects" % count)
    print("%-14s %12s %12s %9s %10s" % ("step", "gitops.k8s s", "core src s", "changed", "time ratio"))
    for what, src in zip(steps, core["src"]):
        print("%-14s %12.2f %12.2f %9s %9.1fx" % (what, mine[what], src["seconds"], src["changed"],
                                                  src["seconds"] / mine[what]))
    print("loop: one task item per object, %d objects; PER OBJECT (seconds / objects of each side, in ms)" % core_count)
    print("%-14s %12s %12s %9s %10s" % ("step", "gitops.k8s", "core loop", "changed", "time ratio"))
    for what, loop in zip(steps, core["loop"]):
        ours_ms, theirs_ms = 1000 * mine[what] / count, 1000 * loop["seconds"] / core_count
        print("%-14s %10.2fms %10.1fms %9s %9.0fx" % (what, ours_ms, theirs_ms, loop["changed"], theirs_ms / ours_ms))
    print("ratios are kubernetes.core / gitops.k8s: above 1 means gitops.k8s is faster")
    print("changed: objects kubernetes.core reported changed / objects it was given (the Namespace included)")
    print("no-op rows run both through ansible-playbook (kubernetes.core's diff is --check --diff); gitops.k8s's"
          " initial apply is the engine alone. Loop wall times: %s; ansible-playbook start-up with no task: %.2fs" % (
              ", ".join("%.1fs" % r["seconds"] for r in core["loop"]), core_startup["seconds"]))


if __name__ == "__main__":
    main()
