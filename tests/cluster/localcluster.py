"""The project's local Kubernetes control plane: build, start, stop, describe.

Used by tests/cluster/{up,down,env} and by the pytest fixtures. Everything listens on
127.0.0.1. Binaries are built from the Go module proxy only and cached by version under
~/.cache/gitops-k8s/bin, so a warm start never rebuilds.

  etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
      one multi-call binary built from ./go.mod (k8s.io/kubernetes + etcd server)
  kwok      go install sigs.k8s.io/kwok/cmd/kwok, simulating the nodes and their pods
  helm      go install helm.sh/helm/v3/cmd/helm
  sops      go install github.com/getsops/sops/v3/cmd/sops (SOPS-encrypted files at render)
  age-keygen  go install filippo.io/age/cmd/age-keygen (the age keys of the secrets tests)
  registry  go install github.com/distribution/distribution/v3/cmd/registry (OCI tests only)
"""

import contextlib
import datetime
import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gitops-k8s")
STATE = os.environ.get("GITOPS_K8S_CLUSTER_DIR") or os.path.join(CACHE, "cluster")
KUBECONFIG = os.path.join(STATE, "admin.kubeconfig")

KUBERNETES_VERSION = "v1.36.3"


def tool_versions():
    """HELM_VERSION, KWOK_VERSION, KUSTOMIZE_VERSION, SOPS_VERSION, AGE_VERSION from tool-versions.env
    (the EE reads it too)."""
    with open(os.path.join(REPO, "tool-versions.env"), encoding="utf-8") as handle:
        pairs = (line.strip().split("=", 1) for line in handle if "=" in line and not line.startswith("#"))
        return {key: value for key, value in pairs}


KWOK_VERSION = tool_versions()["KWOK_VERSION"]
HELM_VERSION = tool_versions()["HELM_VERSION"]
SOPS_VERSION = tool_versions()["SOPS_VERSION"]
AGE_VERSION = tool_versions()["AGE_VERSION"]
# the OCI registry of tests/servers (tests only, not in the EE)
REGISTRY_VERSION = "v3.1.2"
NODES = 3
# Simulated nodes cost nothing but their objects: together they hold a 5,000-app benchmark (one
# Deployment of one replica per app) beside a test run.
PODS_PER_NODE = 2000
# A default kubeadm cluster's range: benchmarks create hundreds of Services.
SERVICE_CIDR = "10.96.0.0/12"
# Pods carrying this label never become ready (tests of unhealthy rollouts use it).
NEVER_READY_LABEL = "gitops.k8s.test/never-ready"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
PORTS = ("etcd", "etcd_peer", "apiserver", "controller_manager", "scheduler", "kwok")
# Every request the API server answers, one JSON line each (metadata only: no bodies), so that
# benchmarks can count any client's requests (tests/bench/audit.py). Rotated at 100 MB, two old
# files kept: at most 300 MB.
AUDIT_LOG = os.path.join(STATE, "audit.log")
AUDIT_LOG_MAX_MB, AUDIT_LOG_BACKUPS = 100, 2
AUDIT_POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
                "rules": [{"level": "Metadata"}]}
# The kwok module's Stage definitions the nodes and pods follow (see kwok_stages).
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
    # opt-in failure: pods labelled pod-container-running-failed.stage.kwok.x-k8s.io=true crash
    "pod/chaos/pod-container-running-failed.yaml",
)
# Set to 1, `up` restarts a cluster started with an older configuration even while test sessions use it.
RESTART_ENV = "GITOPS_K8S_CLUSTER_RESTART"


@contextlib.contextmanager
def locked():
    """One up/down/build at a time per machine (pytest-xdist workers and parallel shells share a cluster)."""
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, "cluster.lock"), "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _users_lock():
    return os.path.join(CACHE, "in-use-%s.lock" % hashlib.sha256(STATE.encode()).hexdigest()[:12])


@contextlib.contextmanager
def in_use():
    """Hold (shared) while using the cluster: `up` restarts an outdated cluster only when nobody does."""
    os.makedirs(CACHE, exist_ok=True)
    with open(_users_lock(), "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        yield


def _used_by_others():
    os.makedirs(CACHE, exist_ok=True)
    with open(_users_lock(), "a", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def wait_for(what, check, timeout=120, interval=0.25):
    """Call ``check`` until it returns something true and return that; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def log(msg):
    print("[cluster] %s" % msg, file=sys.stderr, flush=True)


def sh(argv, **kw):
    kw.setdefault("check", True)
    return subprocess.run(argv, **kw)


# -- binaries ------------------------------------------------------------------------------

def go_env():
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod")
    env.setdefault("GOTOOLCHAIN", "local")
    return env


def _control_plane_dir():
    """Where the multi-call binary of this version and source lives (built or not)."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        with open(os.path.join(HERE, name), "rb") as handle:
            digest.update(handle.read())
    return os.path.join(CACHE, "bin", "k8s-%s-%s" % (KUBERNETES_VERSION, digest.hexdigest()[:12]))


def control_plane_bin():
    """Build (once per version and source) the multi-call binary; return its directory."""
    bindir = _control_plane_dir()
    binary = os.path.join(bindir, "k8s-local")
    if not os.path.exists(binary):
        log("building the control plane %s from the Go module proxy (cold: several minutes)..." % KUBERNETES_VERSION)
        started = time.time()
        major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
        pkg = "k8s.io/component-base/version"
        ldflags = " ".join([
            "-s -w",
            "-X %s.gitVersion=%s" % (pkg, KUBERNETES_VERSION),
            "-X %s.gitMajor=%s" % (pkg, major),
            "-X %s.gitMinor=%s" % (pkg, minor),
            "-X %s.gitTreeState=clean" % pkg,
            "-X %s.buildDate=%s" % (pkg, "1970-01-01T00:00:00Z"),
        ])
        os.makedirs(bindir, exist_ok=True)
        sh(["go", "build", "-trimpath", "-ldflags", ldflags, "-o", binary + ".tmp", "."], cwd=HERE, env=go_env())
        os.replace(binary + ".tmp", binary)
        log("built in %.0fs" % (time.time() - started))
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"):
        link = os.path.join(bindir, name)
        if not os.path.islink(link):
            os.symlink("k8s-local", link)
    return bindir


def go_install(module, version, name):
    bindir = os.path.join(CACHE, "bin", "%s-%s" % (name, version))
    binary = os.path.join(bindir, name)
    if not os.path.exists(binary):
        log("go install %s@%s..." % (module, version))
        started = time.time()
        sh(["go", "install", "-trimpath", "-ldflags", "-s -w", "%s@%s" % (module, version)],
           env=dict(go_env(), GOBIN=bindir, GOFLAGS=""))
        log("installed %s in %.0fs" % (name, time.time() - started))
    return binary


def registry_binary():
    """The CNCF distribution registry, for the OCI chart tests (tests/servers)."""
    return go_install("github.com/distribution/distribution/v3/cmd/registry", REGISTRY_VERSION, "registry")


def kwok_stages():
    """The Stage definitions shipped in the kwok module, as one YAML stream."""
    out = sh(["go", "mod", "download", "-json", "sigs.k8s.io/kwok@%s" % KWOK_VERSION],
             env=dict(go_env(), GOFLAGS=""), capture_output=True, text=True, cwd=HERE).stdout
    stage_dir = os.path.join(json.loads(out)["Dir"], "kustomize", "stage")
    docs = []
    for rel in KWOK_STAGES:
        with open(os.path.join(stage_dir, rel), encoding="utf-8") as handle:
            text = handle.read()
        if rel == "pod/fast/pod-ready.yaml":
            # Let tests keep chosen pods unready: they stay Pending/not Ready forever.
            marker = "    matchExpressions:\n"
            extra = "    - key: '.metadata.labels[\"%s\"]'\n      operator: 'DoesNotExist'\n" % NEVER_READY_LABEL
            assert marker in text, "unexpected layout of %s" % rel
            text = text.replace(marker, marker + extra, 1)
        docs.append(text.strip())
    return "\n---\n".join(docs) + "\n"


def tools_dir():
    """A directory with kubectl, helm, kwok, sops and age-keygen, for PATH."""
    bindir = control_plane_bin()
    tools = os.path.join(CACHE, "tools")
    os.makedirs(tools, exist_ok=True)
    wanted = {
        "kubectl": os.path.join(bindir, "k8s-local"),
        "helm": go_install("helm.sh/helm/v3/cmd/helm", HELM_VERSION, "helm"),
        "kwok": go_install("sigs.k8s.io/kwok/cmd/kwok", KWOK_VERSION, "kwok"),
        "sops": go_install("github.com/getsops/sops/v3/cmd/sops", SOPS_VERSION, "sops"),
        "age-keygen": go_install("filippo.io/age/cmd/age-keygen", AGE_VERSION, "age-keygen"),
    }
    for name, target in wanted.items():
        link = os.path.join(tools, name)
        if os.path.realpath(link) != os.path.realpath(target):
            if os.path.lexists(link):
                os.remove(link)
            os.symlink(target, link)
    # `kubectl kustomize` is kustomize; a wrapper gives the standalone name too.
    wrapper = (
        '#!/bin/sh\nk="$(dirname "$0")/kubectl"\ncase "$1" in\n'
        '  build) shift ;;\n'
        "  version) \"$k\" version --client | sed -n 's/^Kustomize Version: //p'; exit ;;\n"
        'esac\nexec "$k" kustomize "$@"\n'
    )
    path = os.path.join(tools, "kustomize")
    current = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            current = handle.read()
    if current != wrapper:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(wrapper)
        os.chmod(path, 0o755)
    return tools


def collections_root():
    """An ANSIBLE_COLLECTIONS_PATH entry in which gitops.k8s is this checkout."""
    tag = hashlib.sha256(REPO.encode()).hexdigest()[:12]
    root = os.path.join(CACHE, "collections", tag)
    link = os.path.join(root, "ansible_collections", "gitops", "k8s")
    if os.path.realpath(link) != REPO:
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(REPO, link)
    return root


# -- certificates --------------------------------------------------------------------------

def _pki(state):
    """CA, serving and client certificates, and the service-account key pair."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def write_key(name, k):
        with open(os.path.join(state, name), "wb") as handle:
            handle.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        os.chmod(os.path.join(state, name), 0o600)

    def write_cert(name, cert):
        with open(os.path.join(state, name), "wb") as handle:
            handle.write(cert.public_bytes(serialization.Encoding.PEM))

    def name_of(cn, org=None):
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    ca_key = key()
    ca = (x509.CertificateBuilder().subject_name(name_of("gitops-k8s-local-ca")).issuer_name(name_of("gitops-k8s-local-ca"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    write_key("ca.key", ca_key)
    write_cert("ca.crt", ca)

    def issue(name, cn, org=None, server=False):
        k = key()
        builder = (x509.CertificateBuilder().subject_name(name_of(cn, org)).issuer_name(ca.subject)
                   .public_key(k.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=365))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        if server:
            sans = [x509.DNSName(n) for n in ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                                              "kubernetes.default.svc.cluster.local")]
            sans += [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(_kubernetes_service_ip())]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        write_key(name + ".key", k)
        write_cert(name + ".crt", builder.sign(ca_key, hashes.SHA256()))

    issue("apiserver", "kube-apiserver", server=True)
    issue("admin", "admin", "system:masters")
    issue("controller-manager", "system:kube-controller-manager")
    issue("scheduler", "system:kube-scheduler")
    sa = key()
    write_key("sa.key", sa)
    with open(os.path.join(state, "sa.pub"), "wb") as handle:
        handle.write(sa.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))


def _kubernetes_service_ip():
    """The first address of the service range: the ``kubernetes`` Service's."""
    return next(ipaddress.ip_network(SERVICE_CIDR).hosts())


def _kubeconfig(state, name, port):
    path = os.path.join(state, name + ".kubeconfig")
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "gitops-k8s-local", "preferences": {},
        "clusters": [{"name": "gitops-k8s-local", "cluster": {
            "server": "https://127.0.0.1:%d" % port, "certificate-authority": os.path.join(state, "ca.crt")}}],
        "users": [{"name": name, "user": {
            "client-certificate": os.path.join(state, name + ".crt"), "client-key": os.path.join(state, name + ".key")}}],
        "contexts": [{"name": "gitops-k8s-local", "context": {"cluster": "gitops-k8s-local", "user": name}}],
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=1)  # JSON is YAML: every client reads it
    os.chmod(path, 0o600)
    return path


# -- processes -----------------------------------------------------------------------------

# Each start-up wait ends as soon as its condition holds or a component exits; the limit only
# bounds a hang, and a machine running several test sessions can be very slow.
START_SECONDS = 600


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid, binary):
    """Whether ``pid`` runs ``binary`` (a recycled pid running something else is not ours).

    Judged by the executable, not the command line: right after exec the kernel has not set up
    the new command line yet and it reads empty, for longer on a loaded machine.
    """
    try:
        exe = os.readlink("/proc/%d/exe" % pid)
    except OSError:  # gone, or a zombie
        return False
    return exe.removesuffix(" (deleted)") == os.path.realpath(binary)


def _start(name, argv):
    with open(os.path.join(STATE, name + ".log"), "ab") as logfile:
        return subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=STATE)


def _log_tail(name, lines=20):
    try:
        with open(os.path.join(STATE, name + ".log"), "rb") as handle:
            return b"".join(handle.readlines()[-lines:]).decode(errors="replace")
    except OSError as err:
        return str(err)


def _read_state():
    try:
        with open(os.path.join(STATE, "cluster.json"), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _write_json(path, doc):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=1)  # JSON is YAML: every reader of the YAML files takes it


def _write_state(info):
    _write_json(os.path.join(STATE, "cluster.json"), info)


def _ssl_context():
    ctx = ssl.create_default_context(cafile=os.path.join(STATE, "ca.crt"))
    ctx.load_cert_chain(os.path.join(STATE, "admin.crt"), os.path.join(STATE, "admin.key"))
    return ctx


def _get(port, path, timeout=5):
    with urllib.request.urlopen("https://127.0.0.1:%d%s" % (port, path), context=_ssl_context(), timeout=timeout) as resp:
        return resp.read()


def healthy(info=None, patience=300):
    info = info or _read_state()
    if not info:
        return False
    if not all(_alive(info["pids"].get(c, -1), info["binaries"][c]) for c in COMPONENTS):
        return False
    # Every process is there: a slow /readyz means a busy apiserver (a benchmark, a test run),
    # not a broken one, and restarting would pull the cluster from under its other users.
    deadline = time.monotonic() + patience
    while True:
        try:
            return _get(info["ports"]["apiserver"], "/readyz", timeout=10) == b"ok"
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(1)


class ComponentExited(SystemExit):
    """A component this `up` started exited during start-up; ``log`` is the end of its log."""

    def __init__(self, name, code, what):
        self.log = _log_tail(name)
        super().__init__("%s exited (code %s) while waiting for %s; the end of %s:\n%s" % (
            name, code, what, os.path.join(STATE, name + ".log"), self.log))


def _wait(what, check, procs, timeout=START_SECONDS):
    """Wait until ``check()`` holds while the components this `up` started keep running.

    ``procs`` are their process handles: `up` is their parent, so an exit is seen at once and
    a process that is still starting is never taken for a dead one.
    """
    def ready():
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise ComponentExited(name, proc.returncode, what)
        try:
            return check()
        except (OSError, ValueError, SystemExit):  # not serving yet
            return False

    try:
        return wait_for(what, ready, timeout, interval=0.3)
    except TimeoutError as err:
        raise SystemExit("%s; logs are in %s" % (err, STATE)) from None


def kubectl(info, *args, check=True, **kw):
    proc = sh([os.path.join(info["bindir"], "kubectl"), "--kubeconfig", KUBECONFIG, "--request-timeout=60s"] + list(args),
              capture_output=True, text=True, check=False, **kw)
    if check and proc.returncode:
        raise SystemExit("kubectl %s failed: %s" % (" ".join(args), proc.stderr.strip()))
    return proc


def _age_etcd(port, procs, revisions=200):
    """Move etcd's revision past its first values before the apiserver starts.

    Every real cluster is far past revision 1, so a client holding an ancient resourceVersion gets
    410 Gone from the watch cache. A fresh etcd would let the caches start at revision ~1 and
    accept such versions, hiding the client's 410 handling from the tests.
    """
    def put(value):
        body = json.dumps({"key": "L2dpdG9wcy1rOHMtbG9jYWwvYWdl", "value": value}).encode()  # /gitops-k8s-local/age
        request = urllib.request.Request("http://127.0.0.1:%d/v3/kv/put" % port, data=body, method="POST")
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status == 200

    _wait("etcd", lambda: put("MA=="), procs)
    for _ in range(revisions):
        put("MA==")


def _node_objects():
    return [{
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "kwok-node-%d" % i, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                     "labels": {"type": "kwok", "kubernetes.io/hostname": "kwok-node-%d" % i, "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64", "topology.kubernetes.io/zone": "zone-%d" % i}},
        "spec": {},
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": str(PODS_PER_NODE)},
                   "capacity": {"cpu": "32", "memory": "256Gi", "pods": str(PODS_PER_NODE)}},
    } for i in range(NODES)]


def _ensure_nodes(info, procs):
    """Register the simulated nodes (kwok manages them) and wait until they are Ready."""
    kubectl(info, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": _node_objects()}))
    _wait("%d Ready nodes" % NODES, lambda: _ready_nodes(info) >= NODES, procs)
    # Pods can only be created once the namespace's default ServiceAccount exists.
    _wait("the default ServiceAccount", lambda: kubectl(info, "get", "serviceaccount", "default", check=False).returncode == 0,
          procs)


def _ready_nodes(info):
    doc = json.loads(kubectl(info, "get", "nodes", "-o", "json").stdout)
    return len([n for n in doc["items"] if any(c["type"] == "Ready" and c["status"] == "True"
                                               for c in n.get("status", {}).get("conditions", []))])


def _commands(s, ports, bindir, kwok):
    """Every component's command line; ``s(name)`` is a path in the state directory."""
    k8s = os.path.join(bindir, "k8s-local")
    kcm_conf, sched_conf = s("controller-manager.kubeconfig"), s("scheduler.kubeconfig")
    return {
        "etcd": [
            k8s, "etcd", "--name=gitops-k8s-local", "--data-dir=" + s("etcd-data"),
            "--listen-client-urls=http://127.0.0.1:%s" % ports["etcd"],
            "--advertise-client-urls=http://127.0.0.1:%s" % ports["etcd"],
            "--listen-peer-urls=http://127.0.0.1:%s" % ports["etcd_peer"],
            "--initial-advertise-peer-urls=http://127.0.0.1:%s" % ports["etcd_peer"],
            "--initial-cluster=gitops-k8s-local=http://127.0.0.1:%s" % ports["etcd_peer"],
            "--listen-metrics-urls=", "--unsafe-no-fsync", "--quota-backend-bytes=4294967296",
        ],
        "kube-apiserver": [
            k8s, "kube-apiserver",
            "--etcd-servers=http://127.0.0.1:%s" % ports["etcd"],
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=%s" % ports["apiserver"],
            "--cert-dir=" + s("apiserver-certs"),
            "--tls-cert-file=" + s("apiserver.crt"), "--tls-private-key-file=" + s("apiserver.key"),
            "--client-ca-file=" + s("ca.crt"),
            "--authorization-mode=RBAC",
            "--service-account-key-file=" + s("sa.pub"), "--service-account-signing-key-file=" + s("sa.key"),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=" + SERVICE_CIDR,
            # Endpoints may not point at loopback: the apiserver cannot publish itself for in-cluster clients
            # (there are none: nodes are simulated), so the reconciler is off.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true", "--profiling=false",
            "--audit-policy-file=" + s("audit-policy.yaml"), "--audit-log-path=" + s("audit.log"),
            "--audit-log-maxsize=%d" % AUDIT_LOG_MAX_MB, "--audit-log-maxbackup=%d" % AUDIT_LOG_BACKUPS,
        ],
        "kube-controller-manager": [
            k8s, "kube-controller-manager", "--kubeconfig=" + kcm_conf,
            "--authentication-kubeconfig=" + kcm_conf, "--authorization-kubeconfig=" + kcm_conf,
            "--bind-address=127.0.0.1", "--secure-port=%s" % ports["controller_manager"],
            "--cert-dir=" + s("controller-manager-certs"),
            "--service-account-private-key-file=" + s("sa.key"), "--root-ca-file=" + s("ca.crt"),
            "--use-service-account-credentials=true", "--leader-elect=false",
            "--cluster-signing-cert-file=" + s("ca.crt"), "--cluster-signing-key-file=" + s("ca.key"),
            # Sized for fleets of thousands of apps: at the default 20 requests/s the deployment and
            # replicaset controllers alone need ~220 s to roll out 1,000 Deployments, whatever deploys them.
            "--kube-api-qps=200", "--kube-api-burst=400",
            "--concurrent-deployment-syncs=20", "--concurrent-replicaset-syncs=20",
        ],
        "kube-scheduler": [
            k8s, "kube-scheduler", "--kubeconfig=" + sched_conf,
            "--authentication-kubeconfig=" + sched_conf, "--authorization-kubeconfig=" + sched_conf,
            "--bind-address=127.0.0.1", "--secure-port=%s" % ports["scheduler"],
            "--cert-dir=" + s("scheduler-certs"), "--leader-elect=false",
        ],
        "kwok": [
            kwok, "--kubeconfig=" + s("admin.kubeconfig"), "--config=" + s("kwok-stages.yaml"),
            "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--cidr=10.244.0.0/16", "--node-ip=127.0.0.1", "--node-lease-duration-seconds=40",
            "--server-address=127.0.0.1:%s" % ports["kwok"],
        ],
    }


def _config(bindir):
    """What a running cluster must have been started with to be reused as it is."""
    return json.loads(json.dumps({
        "versions": {"kubernetes": KUBERNETES_VERSION, "control plane build": os.path.basename(bindir),
                     "kwok": KWOK_VERSION},
        "commands": _commands(lambda name: "$STATE/" + name, dict.fromkeys(PORTS, "$PORT"), "$BIN", "$KWOK"),
        "kwok stages": {"files": KWOK_STAGES, "never ready label": NEVER_READY_LABEL},
        "nodes": _node_objects(),
        "audit policy": AUDIT_POLICY,
    }))


def _changes(recorded, wanted):
    if not recorded:
        return ["everything: an older tests/cluster/localcluster.py started it and recorded none"]
    changes = []
    for key, value in wanted.items():
        if key == "commands":
            changes += ["%s flags" % name for name, argv in value.items() if recorded[key].get(name) != argv]
        elif recorded.get(key) != value:
            changes.append(key)
    return changes


def up():
    """Start the cluster, or reuse the running one; return the admin kubeconfig.

    A running cluster started with another configuration (this file changed since) is restarted
    when no test session uses it (see in_use), or when RESTART_ENV=1; otherwise it is reused as
    it is, with a warning: restarting it would fail the other sessions' tests.
    """
    info = _read_state()
    config = _config(_control_plane_dir())
    if healthy(info):
        changes = _changes(info.get("config"), config)
        if not changes:
            return _reuse(info, "reusing the running cluster")
        outdated = "the running cluster was started with an older configuration (changed: %s)" % ", ".join(changes)
        if os.environ.get(RESTART_ENV) != "1" and _used_by_others():
            return _reuse(info, "WARNING: %s; a test session is using it, so it is reused as it is. To restart it "
                                "anyway: %s=1 tests/cluster/up" % (outdated, RESTART_ENV))
        log("%s: restarting it" % outdated)
    if info:
        down()
    try:
        return _start_cluster(config)
    except ComponentExited as err:
        # Ports are chosen free, then bound by the components seconds later; on a busy machine
        # another program's connection may take one meanwhile. Other ports are as good.
        if "address already in use" not in err.log:
            raise
        log("a component lost its port to another program before binding it; starting again on other ports")
        down()
        return _start_cluster(config)


def _reuse(info, message):
    if _ready_nodes(info) < NODES:  # a start interrupted before the nodes were registered
        _ensure_nodes(info, {})
    log(message)
    return KUBECONFIG


def _start_cluster(config):
    started = time.monotonic()
    bindir = control_plane_bin()
    kwok = os.path.join(tools_dir(), "kwok")
    os.makedirs(STATE, exist_ok=True)
    s = lambda name: os.path.join(STATE, name)  # noqa: E731 - a path in the state directory
    _pki(STATE)
    _write_json(s("audit-policy.yaml"), AUDIT_POLICY)
    with open(s("kwok-stages.yaml"), "w", encoding="utf-8") as handle:
        handle.write(kwok_stages())
    ports = {name: free_port() for name in PORTS}
    commands = _commands(s, ports, bindir, kwok)
    info = {"pids": {}, "ports": ports, "bindir": bindir, "kubeconfig": KUBECONFIG, "config": config,
            "binaries": dict({c: os.path.join(bindir, "k8s-local") for c in COMPONENTS}, kwok=os.path.realpath(kwok))}
    procs = {}

    def start(name):
        procs[name] = _start(name, commands[name])
        info["pids"][name] = procs[name].pid
        _write_state(info)  # at once: `down` stops whatever has started

    start("etcd")
    _age_etcd(ports["etcd"], procs)
    start("kube-apiserver")
    _wait("kube-apiserver /readyz", lambda: _get(ports["apiserver"], "/readyz") == b"ok", procs)
    for name in ("admin", "controller-manager", "scheduler"):
        _kubeconfig(STATE, name, ports["apiserver"])
    for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
        start(name)
    _ensure_nodes(info, procs)
    log("cluster up in %.1fs; logs in %s, audit log %s" % (time.monotonic() - started, STATE, AUDIT_LOG))
    return KUBECONFIG


def down():
    info = _read_state()
    if not info:
        log("no cluster state in %s; nothing to stop" % STATE)
        return
    # Reverse start order; only pids that still run our binary (never a recycled pid).
    for comp in reversed(COMPONENTS):
        pid = info["pids"].get(comp)
        if pid and _alive(pid, info["binaries"][comp]):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for comp in reversed(COMPONENTS):
        pid = info["pids"].get(comp)
        while pid and _alive(pid, info["binaries"][comp]):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
    shutil.rmtree(STATE, ignore_errors=True)
    log("stopped and removed %s" % STATE)


def env():
    """Shell export lines for a shell that works on this checkout and its cluster."""
    venv_bin = os.path.join(REPO, ".venv", "bin")
    lines = []
    if healthy(patience=0):
        lines.append("export KUBECONFIG=%s" % KUBECONFIG)
    lines.append('export PATH="%s:%s:$PATH"' % (venv_bin, tools_dir()))
    lines.append("export ANSIBLE_COLLECTIONS_PATH=%s" % collections_root())
    return "\n".join(lines)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "up":
        with locked():
            path = up()
        print(path)
    elif cmd == "down":
        with locked():
            down()
    elif cmd == "env":
        with locked():
            print(env())
    else:
        raise SystemExit("usage: localcluster.py {up|down|env}")


if __name__ == "__main__":
    main(sys.argv)
