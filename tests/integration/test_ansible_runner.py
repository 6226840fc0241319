"""The playbooks run the way AWX runs them: ansible-runner, a private data dir, an injected credential.

The private data directory is laid out as AWX lays it out for a job: ``project/`` (one-line
playbooks importing gitops.k8s.push / gitops.k8s.reconcile), ``inventory/hosts`` (one host per
cluster, no gitops_cluster: the credential decides), ``env/extravars`` and ``env/envvars`` with
K8S_AUTH_HOST, K8S_AUTH_API_KEY, K8S_AUTH_SSL_CA_CERT and K8S_AUTH_VERIFY_SSL as AWX's
Kubernetes credential injects them (or K8S_AUTH_CERT_FILE / K8S_AUTH_KEY_FILE, as a custom
credential type would). The token is a ServiceAccount's, bound to the RBAC that
docs/awx.md documents (read from that page, so the page and the test cannot disagree). The
checks are what AWX shows: the job status, the job events (each application's line findable)
and the set_stats data in the artifacts.
"""

import datetime
import glob
import json
import os
import re
import subprocess
import uuid

import pytest
import yaml

from conftest import COLLECTIONS, REPO, VENV_PYTHON
from test_push_reconcile import GitRepo, app_files, live, names

AWX_DOC = os.path.join(REPO, "docs", "awx.md")
RECORDS_NAMESPACE = "gitops-system"


def documented_rbac():
    """The YAML block of docs/awx.md that starts with '# gitops.k8s RBAC'."""
    with open(AWX_DOC, encoding="utf-8") as handle:
        text = handle.read()
    blocks = re.findall(r"```yaml\n(# gitops.k8s RBAC\n.*?)```", text, re.S)
    assert len(blocks) == 1, "docs/awx.md must hold exactly one '# gitops.k8s RBAC' YAML block"
    return [doc for doc in yaml.safe_load_all(blocks[0]) if doc]


def rename(docs, tag, app_namespace):
    """The documented objects with names of this test: shared cluster, parallel tests."""
    for doc in docs:
        meta = doc["metadata"]
        meta["name"] += "-" + tag
        if meta.get("namespace") == "shop":
            meta["namespace"] = app_namespace
        if "roleRef" in doc:
            doc["roleRef"]["name"] += "-" + tag
        for subject in doc.get("subjects", []):
            subject["name"] += "-" + tag
    return docs


def kubectl(env, *args, stdin=None):
    proc = subprocess.run(["kubectl", *args], env=env, input=stdin, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, "kubectl %s: %s" % (" ".join(args), proc.stderr)
    return proc.stdout


@pytest.fixture
def awx_identity(ansible_env, kubeconfig, namespace):
    """A ServiceAccount token bound to the documented RBAC; yields a function that re-binds with changes."""
    tag = uuid.uuid4().hex[:6]
    env = dict(ansible_env, KUBECONFIG=kubeconfig)
    # An administrator's step (docs/awx.md); it may exist already.
    subprocess.run(["kubectl", "create", "namespace", RECORDS_NAMESPACE], env=env, capture_output=True, check=False)
    docs = rename(documented_rbac(), tag, namespace)
    kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    account = [d for d in docs if d["kind"] == "ServiceAccount"][0]["metadata"]
    token = kubectl(env, "create", "token", account["name"], "-n", account["namespace"], "--duration", "1h").strip()
    with open(kubeconfig, encoding="utf-8") as handle:
        server = yaml.safe_load(handle)["clusters"][0]["cluster"]
    with open(server["certificate-authority"], encoding="utf-8") as handle:
        ca = handle.read()
    # A client certificate for a user bound to the same roles (a custom credential type's cert/key).
    user = "gitops-k8s-cert-" + tag
    cert, key = client_certificate(os.path.dirname(kubeconfig), user)
    user_bindings = [dict(d, metadata=dict(d["metadata"], name=d["metadata"]["name"] + "-user"),
                          subjects=[{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}])
                     for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump_all(user_bindings))
    common = {"K8S_AUTH_HOST": server["server"], "K8S_AUTH_SSL_CA_CERT": ca, "K8S_AUTH_VERIFY_SSL": "True"}
    identity = {"token": dict(common, K8S_AUTH_API_KEY=token),
                "cert": dict(common, K8S_AUTH_CERT_FILE=cert, K8S_AUTH_KEY_FILE=key),
                "docs": docs, "apply": lambda changed: kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump_all(changed))}
    yield identity
    for doc in docs + user_bindings:
        if doc["metadata"].get("namespace") != namespace:  # the test namespace goes with its contents
            subprocess.run(["kubectl", "delete", doc["kind"], doc["metadata"]["name"], "--ignore-not-found",
                            *(["-n", doc["metadata"]["namespace"]] if doc["metadata"].get("namespace") else [])],
                           env=env, capture_output=True, check=False)


def client_certificate(state, user):
    """(certificate PEM, key PEM) for ``user``, signed by the local cluster's CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    with open(os.path.join(state, "ca.key"), "rb") as handle:
        ca_key = serialization.load_pem_private_key(handle.read(), None)
    with open(os.path.join(state, "ca.crt"), "rb") as handle:
        ca = x509.load_pem_x509_certificate(handle.read())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
            .sign(ca_key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


class Job:
    """One ansible-runner job: status, rc, events and the set_stats artifact."""

    def __init__(self, data_dir, ident):
        artifacts = os.path.join(data_dir, "artifacts", ident)

        def read(*path):
            with open(os.path.join(artifacts, *path), encoding="utf-8") as handle:
                return handle.read()

        self.status, self.rc, self.stdout = read("status").strip(), int(read("rc")), read("stdout")
        self.events = sorted((json.loads(read("job_events", os.path.basename(p)))
                              for p in glob.glob(os.path.join(artifacts, "job_events", "*.json"))),
                             key=lambda e: e["counter"])

    def stats(self):
        [stats] = [e for e in self.events if e["event"] == "playbook_on_stats"]
        return stats["event_data"].get("artifact_data") or {}

    def events_mentioning(self, text):
        return [e for e in self.events if any(text in value for value in strings(e))]


def strings(obj):
    """Every string in a JSON document (event data nests results in results)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from strings(value)


def run_job(root, playbook, apps, credential, extravars=None):
    """Lay out a private data dir as AWX does and run ``ansible-runner run`` on it.

    ``credential``: the K8S_AUTH_* variables; those naming files are given as file contents.
    """
    data_dir = os.path.join(root, "job-%s" % uuid.uuid4().hex[:6])
    for sub in ("project", "inventory", "env"):
        os.makedirs(os.path.join(data_dir, sub))
    with open(os.path.join(data_dir, "project", playbook + ".yml"), "w", encoding="utf-8") as handle:
        handle.write("---\n- name: %s\n  ansible.builtin.import_playbook: gitops.k8s.%s\n" % (playbook, playbook))
    with open(os.path.join(data_dir, "inventory", "hosts"), "w", encoding="utf-8") as handle:
        yaml.safe_dump({"all": {"hosts": {"awx-cluster": {"ansible_connection": "local", "gitops_apps": apps}}}}, handle)
    # AWX writes a credential's files into the private data dir and points the variables at them.
    envvars = dict(credential)
    for name in ("K8S_AUTH_SSL_CA_CERT", "K8S_AUTH_CERT_FILE", "K8S_AUTH_KEY_FILE"):
        if name in envvars:
            path = os.path.join(data_dir, "env", name.lower())
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(envvars[name])
            os.chmod(path, 0o600)
            envvars[name] = path
    with open(os.path.join(data_dir, "env", "envvars"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(envvars, handle)
    with open(os.path.join(data_dir, "env", "extravars"), "w", encoding="utf-8") as handle:
        # the two tests share the host name awx-cluster: neither's reconcile may take the other's apps for departed
        yaml.safe_dump(dict({"gitops_report_dir": os.path.join(data_dir, "report"), "gitops_remove_departed": False},
                            **(extravars or {})), handle)
    # The controller's environment: the collection and ansible-playbook, but no kubeconfig at all.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "K8S_AUTH_"))}
    env.update(PATH=os.pathsep.join([os.path.dirname(VENV_PYTHON), env.get("PATH", "")]),
               ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, HOME=os.environ.get("HOME", root), ANSIBLE_NOCOLOR="1")
    ident = uuid.uuid4().hex
    proc = subprocess.run([os.path.join(os.path.dirname(VENV_PYTHON), "ansible-runner"), "run", data_dir,
                           "-p", playbook + ".yml", "--ident", ident], env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert os.path.isdir(os.path.join(data_dir, "artifacts", ident)), proc.stdout + proc.stderr
    return Job(data_dir, ident)


def test_push_and_reconcile_through_ansible_runner_with_a_token_or_a_client_cert_and_the_documented_rbac(
        awx_identity, cluster, namespace, workdir):
    repo = GitRepo(workdir)
    # replicas 0: the same requests as a rollout with pods (health drill-down is only for failures),
    # without depending on free room on the shared cluster's simulated nodes
    first = repo.commit(app_files("web", greeting="one", replicas=0), "First")
    [app] = names(namespace, "web")
    apps = [{"name": app, "repo": repo.url, "path": "web", "namespace": namespace, "prune": True,
             "wait": {"timeout": 120}}]

    pushed = run_job(workdir, "push", apps, awx_identity["token"], {"gitops_app": app})
    assert (pushed.status, pushed.rc) == ("successful", 0), pushed.stdout
    assert live(cluster, "ConfigMap", namespace, "web-config")["data"]["greeting"] == "one"
    line = "%s@awx-cluster: SYNCED, HEALTHY, synced at %s (First)" % (app, first[:7])
    assert [e for e in pushed.events_mentioning(line) if e["event"] == "runner_on_ok"], pushed.stdout
    report = pushed.stats()["gitops_report"]
    [row] = [r for r in report["apps"] if r["app"] == app]
    assert (row["cluster"], row["sync"], row["health"], row["outcome"], row["revision"]) == \
        ("awx-cluster", "SYNCED", "HEALTHY", "synced", first)
    assert report["failures"] == [] and report["summary"]["apps"] == 1
    assert report["html"].endswith("report.html") and os.path.exists(report["html"])
    assert not pushed.events_mentioning(awx_identity["token"]["K8S_AUTH_API_KEY"])

    second = repo.commit(app_files("web", greeting="two", replicas=0), "Second")
    reconciled = run_job(workdir, "reconcile", apps, awx_identity["cert"])  # client cert/key this time
    assert (reconciled.status, reconciled.rc) == ("successful", 0), reconciled.stdout
    assert live(cluster, "ConfigMap", namespace, "web-config")["data"]["greeting"] == "two"
    [row] = reconciled.stats()["gitops_report"]["apps"]
    assert (row["outcome"], row["revision"]) == ("synced", second)
    assert reconciled.events_mentioning("%s@awx-cluster: SYNCED, HEALTHY, synced at %s" % (app, second[:7]))


def test_a_permission_missing_from_the_role_fails_with_the_verb_and_resource_named(
        awx_identity, cluster, namespace, workdir):
    no_patch = [json.loads(json.dumps(d)) for d in awx_identity["docs"]]
    for doc in no_patch:
        if doc["kind"] == "ClusterRole":
            for rule in doc["rules"]:
                if "deployments" in rule["resources"]:
                    rule["verbs"].remove("patch")
    awx_identity["apply"](no_patch)
    repo = GitRepo(workdir)
    repo.commit(app_files("web", replicas=0), "Web")
    [app] = names(namespace, "web")
    apps = [{"name": app, "repo": repo.url, "path": "web", "namespace": namespace}]

    job = run_job(workdir, "push", apps, awx_identity["token"])
    assert (job.status, job.rc) != ("successful", 0), job.stdout
    # who may not do what, where (cluster/client.denial_text)
    wanted = 'may not patch deployments.apps "web" in namespace %s' % namespace
    assert wanted in " ".join(job.stdout.split()), job.stdout  # Ansible wraps long error lines
    failed = [e for e in job.events_mentioning(wanted) if e["event"] == "runner_on_failed"]
    assert failed, "no failed task event names the missing permission"
    [row] = job.stats()["gitops_report"]["apps"]
    assert row["outcome"] == "failed"
    assert any(wanted in line for line in job.stats()["gitops_report"]["failures"])
    # Nothing half-applied: the ConfigMap of the same bundle was not written either.
    assert cluster.get({"apiVersion": "v1", "kind": "ConfigMap", "namespace": namespace, "name": "web-config"}) is None
