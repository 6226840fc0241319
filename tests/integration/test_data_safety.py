"""Data safety against the real control plane: records never lost, nothing wrongly deleted, faults retried.

Faults are injected by a real forwarding proxy process (faultproxy.py) in front of the API server.
"""

import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from localcluster import wait_for

from ansible_collections.gitops.k8s.plugins.module_utils.sync.apply import Options, apply
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import Cluster
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import (INVENTORY_NAMESPACE, Inventory, current_entry,
                                                                                 new_record, object_entry, read_record,
                                                                                 record_health)
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.lease import Lease

from test_diff_apply import app_name, configmap, deployment, get, make_bundle, names

HERE = os.path.dirname(os.path.abspath(__file__))
LEASES = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % INVENTORY_NAMESPACE


@pytest.fixture
def new_app(cluster):
    apps = []

    def make():
        apps.append(app_name())
        return apps[-1]
    yield make
    for app in apps:
        Inventory(cluster).delete(app)
        cluster.delete({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "namespace": INVENTORY_NAMESPACE,
                        "name": "gitops-app-" + app})


def namespace_obj(name, **annotations):
    meta = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


@pytest.fixture
def scratch_namespaces(cluster):
    made = []
    yield made
    for name in made:
        obj = cluster.get({"apiVersion": "v1", "kind": "Namespace", "name": name})
        if obj is not None:
            cluster.delete({"apiVersion": "v1", "kind": "Namespace", "name": name})


# -- 1. one write path for the record ----------------------------------------------------------

def test_health_verdict_written_while_another_run_applies(cluster, namespace, workdir, new_app):
    app = new_app()
    first = make_bundle(workdir, [configmap(namespace, "settings", v="1")])
    apply(cluster, first, app, Options(revision=first.revision))
    expected = current_entry(read_record(cluster, app))

    # the next sync waits for its first wave to be healthy before its second: its record says
    # Running meanwhile, and the health wait of the first sync ends just then
    second = make_bundle(workdir, [configmap(namespace, "settings", v="2"), deployment(namespace, "web", replicas=1),
                                   configmap(namespace, "late", v="1")], meta={"late": {"wave": 1}})
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(
        result=_catch(apply, cluster, second, app, Options(revision=second.revision, wait_waves=True))))
    runner.start()
    wait_for("the second sync to start", lambda: read_record(cluster, app)["result"] == "Running", 60, 0.05)
    marked = record_health(cluster, app, "Healthy", expected)
    runner.join()

    assert not isinstance(outcome["result"], GitOpsError), str(outcome["result"])
    record = read_record(cluster, app)
    assert record["result"] == "Succeeded" and record["revision"] == second.revision
    assert marked is not None and record["history"][1]["health"] == "Healthy", "the verdict of the first sync is kept"


def _catch(func, *args):
    try:
        return func(*args)
    except GitOpsError as err:
        return err


# -- 4. prune guards ---------------------------------------------------------------------------

def test_namespace_prune_needs_opt_in_and_never_takes_other_apps_objects(cluster, workdir, new_app, scratch_namespaces):
    app, other = new_app(), new_app()
    plain, opted, shared = ("t-ns-%s-%s" % (kind, secrets.token_hex(3)) for kind in ("plain", "opted", "shared"))
    scratch_namespaces.extend([plain, opted, shared])
    allow = {"gitops.k8s/prune": "allow"}
    bundle = make_bundle(workdir, [namespace_obj(plain), namespace_obj(opted, **allow), namespace_obj(shared, **allow),
                                   configmap(plain, "a"), configmap(opted, "a")])
    apply(cluster, bundle, app, Options(revision=bundle.revision))
    theirs = make_bundle(workdir, [configmap(shared, "theirs")])
    apply(cluster, theirs, other, Options(revision=theirs.revision))

    empty_but_one = make_bundle(workdir, [configmap("default", "keep-%s" % app)])
    result = apply(cluster, empty_but_one, app, Options(revision=empty_but_one.revision, prune=True))
    try:
        refused = {r["name"]: r["message"] for r in result["prune_refused"]}
        assert "opts in" in refused[plain] and "app %s" % other in refused[shared], refused
        assert opted in names(result["pruned"]) and plain not in names(result["pruned"])
        assert get(cluster, "v1", "Namespace", None, plain)["metadata"].get("deletionTimestamp") is None
        assert get(cluster, "v1", "ConfigMap", shared, "theirs") is not None
        assert {plain, shared} <= set(names(read_record(cluster, app)["objects"])), "refused prunes stay recorded"
    finally:
        cluster.delete({"apiVersion": "v1", "kind": "ConfigMap", "namespace": "default", "name": "keep-%s" % app})


def test_the_inventory_namespace_is_never_pruned(cluster, workdir, scratch_namespaces):
    app, inventory = app_name(), "t-inv-%s" % secrets.token_hex(3)  # a private inventory namespace
    scratch_namespaces.append(inventory)
    where = dict(inventory_namespace=inventory)
    bundle = make_bundle(workdir, [namespace_obj(inventory, **{"gitops.k8s/prune": "allow"}),
                                   configmap("default", "k-%s" % app)])
    apply(cluster, bundle, app, Options(revision=bundle.revision, adopt=True, **where))
    smaller = make_bundle(workdir, [configmap("default", "k-%s" % app)])
    try:
        result = apply(cluster, smaller, app, Options(revision=smaller.revision, prune=True, **where))
        assert [r["name"] for r in result["prune_refused"]] == [inventory]
        assert "inventory namespace" in result["prune_refused"][0]["message"]
        ns = get(cluster, "v1", "Namespace", None, inventory)
        assert ns is not None and not ns["metadata"].get("deletionTimestamp")
        assert read_record(cluster, app, inventory)["result"] == "Succeeded"
    finally:
        cluster.delete({"apiVersion": "v1", "kind": "ConfigMap", "namespace": "default", "name": "k-%s" % app})


def test_object_recreated_by_someone_else_is_not_pruned(cluster, namespace, workdir, new_app):
    app = new_app()
    bundle = make_bundle(workdir, [configmap(namespace, "mine"), configmap(namespace, "stays")])
    apply(cluster, bundle, app, Options(revision=bundle.revision))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "namespace": namespace, "name": "mine"}
    cluster.delete(ref)
    cluster.request("POST", "/api/v1/namespaces/%s/configmaps" % namespace,
                    body=dict(configmap(namespace, "mine", owner="someone-else")))

    smaller = make_bundle(workdir, [configmap(namespace, "stays")])
    result = apply(cluster, smaller, app, Options(revision=smaller.revision, prune=True))
    assert result["pruned"] == []
    assert [r["name"] for r in result["prune_refused"]] == ["mine"]
    assert "recreated" in result["prune_refused"][0]["message"]
    assert get(cluster, "v1", "ConfigMap", namespace, "mine")["data"] == {"owner": "someone-else"}
    assert names(read_record(cluster, app)["objects"]) == ["stays"], "not ours any more: dropped from the record"


def test_a_finalizer_holding_a_deletion_keeps_it_recorded(cluster, namespace, workdir, new_app):
    app = new_app()
    held = configmap(namespace, "held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    bundle = make_bundle(workdir, [held, configmap(namespace, "stays")])
    apply(cluster, bundle, app, Options(revision=bundle.revision))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "namespace": namespace, "name": "held"}
    smaller = make_bundle(workdir, [configmap(namespace, "stays")])
    try:
        with pytest.raises(GitOpsError, match="ConfigMap %s/held: deletion is held by finalizer.s. example.com/hold" % namespace) as err:
            apply(cluster, smaller, app, Options(revision=smaller.revision, prune=True))
        assert [r["name"] for r in err.value.details["prune_failed"]] == ["held"]
        record = read_record(cluster, app)
        assert record["result"] == "Failed" and "held" in names(record["objects"])
    finally:
        live = cluster.get(ref)
        live["metadata"]["finalizers"] = []
        cluster.request("PUT", "/api/v1/namespaces/%s/configmaps/held" % namespace, body=live)
    again = apply(cluster, smaller, app, Options(revision=smaller.revision, prune=True))
    assert again["prune_failed"] == [] and names(read_record(cluster, app)["objects"]) == ["stays"]
    assert read_record(cluster, app)["result"] == "Succeeded"


def test_two_apps_declaring_one_namespace_at_once_cannot_both_own_it(cluster, workdir, new_app, scratch_namespaces):
    shared = "t-claim-%s" % secrets.token_hex(3)
    scratch_namespaces.append(shared)
    apps = [new_app() for _number in range(4)]
    bundles = {app: make_bundle(workdir, [namespace_obj(shared), configmap(shared, app)]) for app in apps}
    outcome = {}

    def run(app):
        outcome[app] = _catch(apply, cluster, bundles[app], app, Options(revision=bundles[app].revision))

    threads = [threading.Thread(target=run, args=(a,)) for a in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [a for a in apps if not isinstance(outcome[a], GitOpsError)]
    assert len(winners) == 1, {a: str(o)[:200] for a, o in outcome.items()}
    owners = [a for a in apps if shared in names((read_record(cluster, a) or new_record(a))["objects"])]
    assert owners == winners
    for app in apps:
        if app not in winners:
            assert "would take over" in str(outcome[app])


# -- 5. the record scales ----------------------------------------------------------------------

def test_a_record_of_20000_objects_with_random_digests(cluster, new_app):
    app = new_app()
    store = Inventory(cluster)
    objects = [object_entry({"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns-%03d" % (i % 200),
                             "name": "cm-%05d" % i}, secrets.token_hex(32), str(10_000_000 + i), secrets.token_hex(32),
                            secrets.token_hex(18)) for i in range(20_000)]
    store.update(app, lambda record: dict(record, objects=objects, result="Succeeded"))
    assert read_record(cluster, app)["objects"] == objects
    objects[7]["digest"] = secrets.token_hex(32)
    store.update(app, lambda record: dict(record, objects=objects))
    assert read_record(cluster, app)["objects"] == objects
    assert any(r["app"] == app and len(r["objects"]) == 20_000 for r in store.read_all())
    store.delete(app)
    assert read_record(cluster, app) is None
    leftover, _rv = cluster.list(cluster.resource("v1", "ConfigMap"), namespace=INVENTORY_NAMESPACE,
                                 label_selector="gitops.k8s/record-of=%s" % app)
    assert leftover == [], "deleting a record deletes its shards"


# -- 6. retries --------------------------------------------------------------------------------

@pytest.fixture
def fault_proxy(kubeconfig, tmp_path):
    portfile = str(tmp_path / "port")
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "faultproxy.py"), kubeconfig, portfile])
    try:
        def started():
            assert proc.poll() is None, "faultproxy exited"
            return os.path.exists(portfile)

        wait_for("faultproxy to start", started, 30, 0.05)
        with open(portfile, encoding="utf-8") as handle:
            yield "http://127.0.0.1:%s" % handle.read()
    finally:
        proc.terminate()
        proc.wait(10)


def arm(proxy, rules):
    request = urllib.request.Request(proxy + "/__faults", data=json.dumps(rules).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.load(resp)


def injected(proxy):
    with urllib.request.urlopen(proxy + "/__faults", timeout=10) as resp:
        return sum(r["injected"] for r in json.load(resp))


def test_429_5xx_and_resets_mid_apply_are_retried_and_nothing_is_wrongly_pruned(
        cluster, namespace, workdir, new_app, fault_proxy):
    app = new_app()
    through = Cluster.from_params({"host": fault_proxy})
    objects = [configmap(namespace, "cm-%02d" % i, v="1") for i in range(30)]
    first = make_bundle(workdir, objects[:20])
    apply(through, first, app, Options(revision=first.revision, prune=True))

    arm(fault_proxy, [{"method": "PATCH", "status": 503, "times": 4}, {"method": "PATCH", "status": 429, "times": 3,
                                                                       "retry_after": 1},
                      {"method": "PATCH", "reset": True, "after": True, "times": 2},
                      {"method": "GET", "reset": True, "times": 2}, {"method": "PUT", "status": 500, "times": 1},
                      {"method": "DELETE", "status": 502, "times": 2}])
    second = make_bundle(workdir, [dict(o, data={"v": "2"}) for o in objects[5:]])
    result = apply(through, second, app, Options(revision=second.revision, prune=True))
    assert injected(fault_proxy) == 14, arm(fault_proxy, [])
    assert result["api_retries"] >= 14
    assert sorted(names(result["pruned"])) == ["cm-%02d" % i for i in range(5)]
    assert len(result["created"]) == 10 and len(result["configured"]) == 15

    again = apply(cluster, second, app, Options(revision=second.revision, prune=True))
    assert not again["changed"] and len(again["unchanged"]) == 25 and again["pruned"] == []
    assert all(get(cluster, "v1", "ConfigMap", namespace, "cm-%02d" % i)["data"] == {"v": "2"} for i in range(5, 30))


def test_a_create_is_not_retried_when_it_may_have_happened(cluster, namespace, fault_proxy):
    through = Cluster.from_params({"host": fault_proxy})
    arm(fault_proxy, [{"method": "POST", "status": 503, "times": 1}])
    job = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "once-", "namespace": namespace}}
    with pytest.raises(GitOpsError, match="503"):
        through.create(job, "gitops.k8s")
    arm(fault_proxy, [{"method": "POST", "status": 429, "times": 2, "retry_after": 0}])
    through.create(job, "gitops.k8s")
    assert through.retries_made == 2


# -- 7. lease and clocks -----------------------------------------------------------------------

def _hold(cluster, app, renew, duration=30):
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "gitops-app-" + app, "namespace": INVENTORY_NAMESPACE},
            "spec": {"holderIdentity": "skewed-holder", "leaseDurationSeconds": duration, "renewTime": renew,
                     "acquireTime": renew}}
    return cluster.request("POST", LEASES, body=body)


def test_a_live_holder_whose_clock_is_behind_keeps_its_lease(cluster, new_app):
    app = new_app()
    _hold(cluster, app, "2001-01-01T00:00:00.000000Z")
    stop = threading.Event()

    def keep_renewing():  # alive, renewing every second, but its clock says 2001
        second = 0
        while not stop.wait(1):
            second += 1
            lease = cluster.request("GET", "%s/gitops-app-%s" % (LEASES, app))
            lease["spec"]["renewTime"] = "2001-01-01T00:00:%02d.000000Z" % (second % 60)
            cluster.request("PUT", "%s/gitops-app-%s" % (LEASES, app), body=lease)

    renewer = threading.Thread(target=keep_renewing)
    renewer.start()
    try:
        with pytest.raises(GitOpsError, match="locked by skewed-holder"):
            Lease(cluster, app, INVENTORY_NAMESPACE).acquire(4)
    finally:
        stop.set()
        renewer.join()


def test_a_crashed_holder_whose_clock_was_ahead_loses_its_lease(cluster, new_app):
    app = new_app()
    _hold(cluster, app, "2999-01-01T00:00:00.000000Z", duration=2)
    lease = Lease(cluster, app, INVENTORY_NAMESPACE)
    started = time.monotonic()
    lease.acquire(15)
    try:
        assert 2 <= time.monotonic() - started < 10
    finally:
        lease.release()


# -- 8. keyed digests --------------------------------------------------------------------------

def test_secret_digests_in_the_record_are_keyed(cluster, namespace, workdir, new_app):
    app = new_app()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": namespace},
              "type": "Opaque", "stringData": {"password": "hunter2"}}
    bundle = make_bundle(workdir, [secret, configmap(namespace, "plain")])
    plain = {e["name"]: e["digest"] for e in bundle.entries}
    apply(cluster, bundle, app, Options(revision=bundle.revision))
    recorded = {o["name"]: o["digest"] for o in read_record(cluster, app)["objects"]}
    assert recorded["plain"] == plain["plain"]
    assert recorded["db"].startswith("hmac-sha256:") and plain["db"] not in recorded["db"]
    key = get(cluster, "v1", "Secret", INVENTORY_NAMESPACE, "gitops-digest-key")
    assert key is not None and key["data"]
    again = apply(cluster, bundle, app, Options(revision=bundle.revision))
    assert again["fast_path"] == 2, "keyed digests still let unchanged Secrets take the fast path"


# -- 8. nothing secret printed or written ------------------------------------------------------

def test_a_vvv_diff_run_prints_and_writes_no_secret_value(ansible, kubeconfig, cluster, namespace, workdir, new_app,
                                                          tmp_path):
    import base64
    import glob

    app, password, token = new_app(), "Sup3r-s3cret-pa55word", "tok-7f1c9e0b44d2"
    repo = os.path.join(workdir, "repo")
    os.makedirs(repo)
    with open(os.path.join(repo, "secret.yaml"), "w", encoding="utf-8") as handle:
        handle.write("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: ${DB_PASSWORD}\n"
                     "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {replicas: '3'}\n")
    env_cache = str(tmp_path / "cache")
    ansible.env = dict(ansible.env, XDG_CACHE_HOME=env_cache)
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"gitops.k8s.render": {"source": repo, "namespace": namespace, "substitute": {"DB_PASSWORD": password},
                               "values": {"token": token}}, "register": "rendered"},
        {"gitops.k8s.apply": {"bundle": "{{ rendered.bundle }}", "app": app, "revision": "{{ rendered.revision }}"}},
        {"gitops.k8s.diff": {"bundle": "{{ rendered.bundle }}", "app": app}},
        {"ansible.builtin.debug": {"msg": "digest {{ rendered.digest }} count {{ rendered.count }}"}},
    ]}]
    proc = ansible.playbook(play, diff=True, args=["-vvv"])
    assert proc.returncode == 0, proc.stdout[-3000:]
    live = get(cluster, "v1", "Secret", namespace, "db")
    assert base64.b64decode(live["data"]["password"]).decode() == password, "the Secret itself was applied"

    forms = [password, token, base64.b64encode(password.encode()).decode()]
    written = [proc.stdout, proc.stderr]
    for path in glob.glob(os.path.join(env_cache, "**", "*"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                written.append(handle.read().decode("utf-8", "replace"))
    written.append(json.dumps(cluster.get({"apiVersion": "v1", "kind": "ConfigMap", "namespace": INVENTORY_NAMESPACE,
                                           "name": "gitops-app-" + app})))
    for text in written:
        for form in forms:
            assert form not in text
    assert "count 2" in proc.stdout, "short values are not masked inside other output"


def test_an_unreachable_api_server_fails_after_bounded_retries():
    closed = Cluster.from_params({"host": "http://127.0.0.1:9"})  # discard port: nothing listens
    started = time.monotonic()
    with pytest.raises(GitOpsError, match=r"cannot reach the Kubernetes API at http://127.0.0.1:9: .*\(after 7 attempts\)"):
        closed.request("GET", "/api")
    assert closed.retries_made == 6 and 5 < time.monotonic() - started < 60


def test_a_lease_that_cannot_be_renewed_is_given_up_before_it_expires(cluster, new_app, fault_proxy):
    # Renewals go through the proxy, which then refuses them all; a successor watches the Lease
    # directly and takes it over the moment it has expired. The holder must have given up by then
    # (it gives up after two thirds of the duration without renewing, a successor waits the whole
    # duration): with 6 s, 2 s of margin for a slow renewer thread on a loaded machine.
    app = new_app()
    through = Cluster.from_params({"host": fault_proxy})
    lease = Lease(through, app, INVENTORY_NAMESPACE, duration=6)
    lease.acquire(5)
    arm(fault_proxy, [{"method": "PUT", "status": 503, "times": 100}])
    successor = Lease(cluster, app, INVENTORY_NAMESPACE, duration=6, identity="successor")
    successor.acquire(60)
    try:
        assert lease.lost, "the successor took the Lease while its holder still counted on it"
        with pytest.raises(GitOpsError, match="could not be renewed .*stopping"):
            lease.check()
    finally:
        arm(fault_proxy, [])
        lease.release()
        successor.release()
