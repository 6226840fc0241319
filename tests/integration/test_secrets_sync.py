"""Secrets in Git through the real push playbook on the local cluster: files encrypted in the test by
the real sops (age keys from age-keygen) and ansible-vault, keys given per application and per
project (gitops_projects) from the environment, a vaulted variable and the play's --vault-id.

A user sees the right Secret data -- of a directory app, a Kustomize secretGenerator reading an
encrypted dotenv file and a chart in Git with an encrypted values file -- a changed encrypted value
synced with a diff that says which key changed and never the value, an app refused (naming the file and
the keys it was encrypted for) when its keys do not open a file -- another project's file included, at
the very path and commit a project that holds the key renders -- with the other apps of the run going
on, and no plaintext in a -vvv --diff run's output, the report, the cache or the in-cluster records."""

import base64
import json
import os
import subprocess

import yaml
from test_push_reconcile import PUSH, GitRepo, Run, live, names

from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import INVENTORY_NAMESPACE, read_record

VALUES = {"web": "team-a-pa55-one", "web-changed": "team-a-pa55-two", "user": "web-admin-us3r",
          "vaulted": "vault-file-s3cret", "own": "own-key-s3cret", "wrong": "wrong-key-s3cret",
          "env": "kustomize-env-pa55", "env-changed": "kustomize-env-pa66", "env-user": "kustomize-us3r",
          "helm": "helm-values-pa55", "helm-changed": "helm-values-pa66", "helm-user": "helm-values-us3r"}
VAULT_PASSWORD = "prod-vault-pa55word"


def age_key(tools):
    """(recipient, identity) of a new age key."""
    out = subprocess.run([os.path.join(tools, "age-keygen")], capture_output=True, text=True, check=True).stdout
    recipient = next(line.split(": ")[1] for line in out.splitlines() if line.startswith("# public key: "))
    return recipient, next(line for line in out.splitlines() if line.startswith("AGE-SECRET-KEY-"))


def secret(name, **string_data):
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                           "stringData": string_data}, sort_keys=False)


def sops_file(tools, text, recipient, fmt, *args):
    """``text`` in format ``fmt`` encrypted by sops for ``recipient``, as a user commits it; never written in clear."""
    return subprocess.run([os.path.join(tools, "sops"), "encrypt", "--input-type", fmt, "--output-type", fmt,
                           "--age", recipient, *args, "/dev/stdin"],
                          input=text, capture_output=True, text=True, check=True).stdout


def sops_encrypted(tools, text, recipient):
    """``text`` (a Secret) with its data encrypted by sops for ``recipient``."""
    return sops_file(tools, text, recipient, "yaml", "--encrypted-regex", "^(data|stringData)$")


def ansible_vault(ansible, *args, text):
    return subprocess.run([os.path.join(os.path.dirname(ansible.env["ANSIBLE_PYTHON_INTERPRETER"]), "ansible-vault"),
                           *args], input=text, capture_output=True, text=True, check=True, env=ansible.env).stdout


class Keys:
    """Team A's and team B's age keys (from the job's environment), an app's own (a vaulted variable)
    and the play's vault password file (--vault-id prod@file)."""

    def __init__(self, tools, ansible, workdir):
        self.team_a, self.team_b, self.own = age_key(tools), age_key(tools), age_key(tools)
        self.password_file = os.path.join(workdir, "prod.vault-password")
        with open(self.password_file, "w", encoding="utf-8") as handle:
            handle.write(VAULT_PASSWORD)
        self.vault_id = "prod@" + self.password_file
        # the app's own key, in a variable encrypted as a user does it
        self.own_var = ansible_vault(ansible, "encrypt_string", "--vault-id", self.vault_id, "--name", "own_age_key",
                                     self.own[1], text="")

    @property
    def secret_strings(self):
        return [self.team_a[1], self.team_b[1], self.own[1], VAULT_PASSWORD]


class SecretsDeployer:
    """The push playbook with gitops_projects, a vaulted variable, the teams' keys in the environment
    and the cache in this test's folder (so that all of it can be searched)."""

    def __init__(self, ansible, kubeconfig, workdir, keys):
        self.kubeconfig, self.workdir, self.keys = kubeconfig, workdir, keys
        self.cache = os.path.join(workdir, "cache")
        env = dict(ansible.env, XDG_CACHE_HOME=self.cache, TEAM_A_AGE_KEY=keys.team_a[1], TEAM_B_AGE_KEY=keys.team_b[1])
        self.runner = type(ansible)(env, workdir)
        self.runs, self.reports = 0, []

    def push(self, apps, projects, args=(), check=False, diff=False, select=None):
        self.runs += 1
        inventory = os.path.join(self.workdir, "inventory-%d" % self.runs)
        os.makedirs(os.path.join(inventory, "group_vars", "all"))
        with open(os.path.join(inventory, "group_vars", "all", "vault.yml"), "w", encoding="utf-8") as handle:
            handle.write(self.keys.own_var)
        with open(os.path.join(inventory, "hosts.yml"), "w", encoding="utf-8") as handle:
            yaml.safe_dump({"all": {"hosts": {"localhost": {
                "ansible_connection": "local", "gitops_cluster": {"kubeconfig": self.kubeconfig},
                "gitops_apps": apps, "gitops_projects": projects}}}}, handle)
        report_dir = os.path.join(self.workdir, "report-%d" % self.runs)
        self.reports.append(report_dir)
        extra = {"gitops_report_dir": report_dir, "gitops_remove_departed": False}
        if select:
            extra["gitops_app"] = select
        proc = self.runner.playbook(PUSH, inventory=inventory, extra_vars=extra, check=check, diff=diff,
                                    args=("--vault-id", self.keys.vault_id) + tuple(args))
        return Run(proc, report_dir)


def team_project(name, team, repo, namespace):
    """Project ``name`` bounded to the test's repository and namespace, decrypting with team ``team``'s age
    key from the job's environment."""
    return {"name": name, "source_repos": [repo.url], "destinations": [namespace],
            "decryption": {"age_keys": ["{{ lookup('env', 'TEAM_%s_AGE_KEY') }}" % team]}}


def plaintexts(keys, values):
    """Every form a secret could leak in: the values in clear and base64, the keys, the vault password."""
    needles = []
    for value in values:
        needles += [value, base64.b64encode(value.encode()).decode()]
    return needles + keys.secret_strings


def assert_nothing_holds(needles, texts=(), folders=()):
    for label, text in texts:
        found = [n for n in needles if n in text]
        assert not found, "%s holds %s" % (label, found)
    for folder in folders:
        for parent, _dirs, files in os.walk(folder):
            for name in files:
                path = os.path.join(parent, name)
                if os.path.islink(path):
                    continue
                with open(path, "rb") as handle:
                    content = handle.read()
                found = [n for n in needles if n.encode() in content]
                assert not found, "%s holds %s" % (path, found)


def secret_data(cluster, namespace, name):
    obj = live(cluster, "Secret", namespace, name)
    return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}


def test_keys_per_app_and_project_decrypt_only_their_files_and_leave_no_plaintext_anywhere(
        ansible, kubeconfig, cluster, namespace, workdir, tools):
    keys = Keys(tools, ansible, workdir)
    os.makedirs(os.path.join(workdir, "git"))
    repo = GitRepo(os.path.join(workdir, "git"))
    plain = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\ndata: {kept: plain}\n"
    repo.commit({
        "web/secret.yaml": sops_encrypted(tools, secret("web-db", password=VALUES["web"], user=VALUES["user"]),
                                          keys.team_a[0]),
        "web/config.yaml": plain % "web-plain",
        "vaulted/secret.yaml": ansible_vault(ansible, "encrypt", "--vault-id", keys.vault_id, "--output", "-", "-",
                                             text=secret("vaulted-db", token=VALUES["vaulted"])),
        "own/secret.yaml": sops_encrypted(tools, secret("own-db", token=VALUES["own"]), keys.own[0]),
        "wrong/secret.yaml": sops_encrypted(tools, secret("wrong-db", token=VALUES["wrong"]), keys.own[0]),
        "wrong/config.yaml": plain % "wrong-plain",
    }, "Encrypted secrets")
    web, thief, vaulted, own, wrong = names(namespace, "web", "thief", "vaulted", "own", "wrong")
    team_key = "{{ lookup('env', 'TEAM_%s_AGE_KEY') }}"
    projects = [team_project("team-a", "A", repo, namespace), team_project("team-b", "B", repo, namespace)]
    common = {"repo": repo.url, "namespace": namespace, "wait": {"timeout": 60}}
    apps = [
        dict(common, name=web, path="web", project="team-a"),
        # team B's app at the very commit, path and namespace of team A's: it never shares A's render
        dict(common, name=thief, path="web", project="team-b"),
        dict(common, name=vaulted, path="vaulted", decryption={"vault_ids": ["prod"]}),
        dict(common, name=own, path="own", decryption={"age_keys": ["{{ own_age_key }}"]}),
        dict(common, name=wrong, path="wrong", decryption={"age_keys": [team_key % "B"]}),
    ]
    deploy = SecretsDeployer(ansible, kubeconfig, workdir, keys)

    pushed = deploy.push(apps, projects, args=("-vvv",), diff=True)

    assert pushed.rc != 0, pushed.out  # two apps failed: the run says so at the end
    assert secret_data(cluster, namespace, "web-db") == {"password": VALUES["web"], "user": VALUES["user"]}
    assert secret_data(cluster, namespace, "vaulted-db") == {"token": VALUES["vaulted"]}
    assert secret_data(cluster, namespace, "own-db") == {"token": VALUES["own"]}
    for app in (web, vaulted, own):
        assert pushed.row(app)["outcome"] == "synced", pushed.row(app)
    refused = {thief: "web/secret.yaml: cannot decrypt: none of the keys given to this app opens it; it is "
                      "encrypted for age %s" % keys.team_a[0],
               wrong: "wrong/secret.yaml: cannot decrypt: none of the keys given to this app opens it; it is "
                      "encrypted for age %s" % keys.own[0]}
    for app, message in refused.items():
        row = pushed.row(app)
        assert (row["failed_step"], row["message"]) == ("render", message), row
        assert message in pushed.out
        assert read_record(cluster, app) is None  # nothing of it was applied
    assert cluster.get({"apiVersion": "v1", "kind": "ConfigMap", "namespace": namespace, "name": "wrong-plain"}) is None

    # a new encrypted value: --check --diff says the key changed, not what it changed to
    repo.commit({"web/secret.yaml": sops_encrypted(
        tools, secret("web-db", password=VALUES["web-changed"], user=VALUES["user"]), keys.team_a[0])},
        "Rotate the web password")
    checked = deploy.push(apps, projects, check=True, diff=True, select=web)
    assert checked.rc == 0, checked.out
    assert secret_data(cluster, namespace, "web-db")["password"] == VALUES["web"]
    shown = checked.out[checked.out.index("Secret %s/web-db" % namespace):]
    assert "password: '*** (old value)'" in shown and "password: '*** (new value)'" in shown, checked.out
    assert "user: '*** (unchanged)'" in shown, checked.out

    synced = deploy.push(apps, projects, args=("-vvv",), diff=True, select=web)
    assert synced.rc == 0, synced.out
    assert secret_data(cluster, namespace, "web-db") == {"password": VALUES["web-changed"], "user": VALUES["user"]}
    assert "password: '*** (new value)'" in synced.out

    records = [json.dumps(cluster.get({"apiVersion": "v1", "kind": "ConfigMap", "namespace": INVENTORY_NAMESPACE,
                                       "name": "gitops-app-%s" % app})) for app in (web, vaulted, own)]
    assert_nothing_holds(plaintexts(keys, VALUES.values()),
                         texts=[("the -vvv --diff push", pushed.out), ("the --check --diff push", checked.out),
                                ("the second -vvv --diff push", synced.out)] +
                         [("the record of %s" % app, text) for app, text in zip((web, vaulted, own), records)],
                         folders=deploy.reports + [deploy.cache])


CHART_SECRET = """apiVersion: v1
kind: Secret
metadata: {name: chart-db}
data:
  password: {{ .Values.db.password | b64enc }}
  user: {{ .Values.db.user | b64enc }}
"""


def generator_and_chart_files(tools, recipient, env_password, helm_password):
    """A Kustomize secretGenerator reading a SOPS-encrypted dotenv file and a chart whose SOPS-encrypted values
    file feeds its Secret template."""
    return {
        "kustomize/db.env": sops_file(tools, "PASSWORD=%s\nUSER=%s\n" % (env_password, VALUES["env-user"]),
                                      recipient, "dotenv"),
        "kustomize/kustomization.yaml": "secretGenerator:\n- name: kustomize-db\n  envs: [db.env]\n"
                                        "generatorOptions: {disableNameSuffixHash: true}\n",
        "chart/Chart.yaml": "apiVersion: v2\nname: db\nversion: 0.1.0\n",
        "chart/values.yaml": "db: {password: unset, user: unset}\n",
        "chart/templates/secret.yaml": CHART_SECRET,
        "chart/secrets.yaml": sops_file(tools, yaml.safe_dump({"db": {"password": helm_password,
                                                                      "user": VALUES["helm-user"]}}),
                                        recipient, "yaml"),
    }


def test_a_secret_generator_and_a_chart_with_encrypted_values_sync_a_changed_value_showing_only_its_key(
        ansible, kubeconfig, cluster, namespace, workdir, tools):
    keys = Keys(tools, ansible, workdir)
    os.makedirs(os.path.join(workdir, "git"))
    repo = GitRepo(os.path.join(workdir, "git"))
    repo.commit(generator_and_chart_files(tools, keys.team_a[0], VALUES["env"], VALUES["helm"]), "Encrypted secrets")
    kustomized, charted = names(namespace, "kustomized", "charted")
    projects = [team_project("team-a", "A", repo, namespace)]
    common = {"repo": repo.url, "namespace": namespace, "project": "team-a", "wait": {"timeout": 60}}
    apps = [dict(common, name=kustomized, path="kustomize"),
            dict(common, name=charted, path="chart", render={"values_files": ["secrets.yaml"]})]
    deploy = SecretsDeployer(ansible, kubeconfig, workdir, keys)

    pushed = deploy.push(apps, projects, diff=True)

    assert pushed.rc == 0, pushed.out
    assert secret_data(cluster, namespace, "kustomize-db") == {"PASSWORD": VALUES["env"], "USER": VALUES["env-user"]}
    assert secret_data(cluster, namespace, "chart-db") == {"password": VALUES["helm"], "user": VALUES["helm-user"]}

    # one encrypted value changed in each: --check --diff names the key and masks both sides
    repo.commit(generator_and_chart_files(tools, keys.team_a[0], VALUES["env-changed"], VALUES["helm-changed"]),
                "Rotate both passwords")
    checked = deploy.push(apps, projects, check=True, diff=True)
    assert checked.rc == 0, checked.out
    assert secret_data(cluster, namespace, "kustomize-db")["PASSWORD"] == VALUES["env"]
    assert secret_data(cluster, namespace, "chart-db")["password"] == VALUES["helm"]
    for name, changed, kept in (("kustomize-db", "PASSWORD", "USER"), ("chart-db", "password", "user")):
        shown = checked.out[checked.out.index("Secret %s/%s" % (namespace, name)):]
        assert "%s: '*** (old value)'" % changed in shown and "%s: '*** (new value)'" % changed in shown, checked.out
        assert "%s: '*** (unchanged)'" % kept in shown, checked.out

    synced = deploy.push(apps, projects, args=("-vvv",), diff=True)
    assert synced.rc == 0, synced.out
    assert secret_data(cluster, namespace, "kustomize-db") == {"PASSWORD": VALUES["env-changed"],
                                                               "USER": VALUES["env-user"]}
    assert secret_data(cluster, namespace, "chart-db") == {"password": VALUES["helm-changed"],
                                                           "user": VALUES["helm-user"]}
    for app in (kustomized, charted):
        assert synced.row(app)["outcome"] == "synced", synced.row(app)

    assert_nothing_holds(plaintexts(keys, [VALUES[k] for k in ("env", "env-changed", "env-user", "helm",
                                                               "helm-changed", "helm-user")]),
                         texts=[("the --diff push", pushed.out), ("the --check --diff push", checked.out),
                                ("the -vvv --diff push", synced.out)])


def flux_definitions(repo_url, namespace, tag, secret_ref):
    """A Flux GitRepository and a Kustomization that decrypts with the keys of ``secret_ref``."""
    return [{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
             "metadata": {"name": "deploy", "namespace": "flux-system"},
             "spec": {"interval": "5m", "url": repo_url, "ref": {"branch": "main"}}},
            {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
             "metadata": {"name": "sealed-" + tag, "namespace": "flux-system"},
             "spec": {"interval": "5m", "path": "./sealed", "prune": True, "targetNamespace": namespace,
                      "sourceRef": {"kind": "GitRepository", "name": "deploy"},
                      "decryption": {"provider": "sops", "secretRef": {"name": secret_ref}}}}]


def test_a_flux_kustomization_decrypts_with_the_keys_its_secret_ref_names_in_the_inventory(
        ansible, kubeconfig, cluster, namespace, workdir, tools):
    recipient, identity = age_key(tools)
    os.makedirs(os.path.join(workdir, "git"))
    repo = GitRepo(os.path.join(workdir, "git"))
    repo.commit({"sealed/secret.yaml": sops_encrypted(tools, secret("sealed", token=VALUES["own"]), recipient)},
                "A Flux app's encrypted Secret")
    tag = namespace[-5:]
    defs = os.path.join(workdir, "defs")
    os.makedirs(defs)

    def inventory(secret_ref):
        with open(os.path.join(defs, "flux.yaml"), "w", encoding="utf-8") as handle:
            yaml.safe_dump_all(flux_definitions(repo.url, namespace, tag, secret_ref), handle)
        config = os.path.join(workdir, "fleet.gitops.yml")
        with open(config, "w", encoding="utf-8") as handle:
            yaml.safe_dump({"plugin": "gitops.k8s.apps", "source": "defs", "default_cluster": "sops-cluster",
                            "clusters": {"sops-cluster": {"vars": {"gitops_cluster": {"kubeconfig": kubeconfig}}}},
                            "decryption": {"sops-age": {"age_keys": ["{{ lookup('env', 'FLUX_AGE_KEY') }}"]}}},
                           handle)
        return config

    runner = type(ansible)(dict(ansible.env, FLUX_AGE_KEY=identity), workdir)
    listed = subprocess.run(["ansible-inventory", "-i", inventory("sops-age"), "--list"], env=runner.env,
                            capture_output=True, text=True, cwd=workdir, check=False)
    assert listed.returncode == 0, listed.stderr
    assert identity not in listed.stdout  # the inventory keeps the template; the task resolves it
    report = os.path.join(workdir, "report")
    pushed = Run(runner.playbook(PUSH, inventory=inventory("sops-age"), extra_vars={
        "gitops_report_dir": report, "gitops_remove_departed": False}), report)
    assert pushed.rc == 0, pushed.out
    assert secret_data(cluster, namespace, "sealed") == {"token": VALUES["own"]}
    assert identity not in pushed.out and VALUES["own"] not in pushed.out

    # a secretRef the configuration has no keys for: the run fails before anything, naming the file
    refused = runner.playbook(PUSH, inventory=inventory("sops-gpg"), extra_vars={
        "gitops_report_dir": report + "-2", "gitops_remove_departed": False})
    assert refused.returncode != 0
    assert ("flux.yaml: Kustomization sealed-%s: spec.decryption.secretRef sops-gpg names no decryption entry of the "
            "inventory configuration (defined: sops-age)" % tag) in refused.stdout + refused.stderr
