"""Secrets in Git decrypted at render (render/secrets.py), with files encrypted in the test by the real
sops (age keys from age-keygen, a PGP key from gpg) and the real ansible-vault: the rendered Secret
data is right, errors name the file and its recipients, and no plaintext is left in the bundle, the
cache, the checkout or /dev/shm."""

import base64
import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.gitops.k8s.plugins.module_utils.bundle import Bundle
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.render import memo, render_bundle

SECRETS = ("db-pa55word", "api-t0ken", "tls-k3y-material", "helm-s3cret", "vault-pa55", "vaulted-us3r", "gpg-s3cret",
           "comment-s3cret", "regex-s3cret")


@pytest.fixture(name="env")
def env_fixture(tools, monkeypatch, workdir):
    """The project's sops, age-keygen, helm and kubectl first on PATH; the cache in this test's folder;
    the checkout in ``checkout``."""
    monkeypatch.setenv("PATH", os.pathsep.join([tools, os.path.dirname(sys.executable), os.environ["PATH"]]))
    monkeypatch.setenv("XDG_CACHE_HOME", os.path.join(workdir, "cache"))
    os.makedirs(os.path.join(workdir, "checkout"))
    return workdir


def age_key(tools):
    """(recipient, identity) of a new age key."""
    out = subprocess.run([os.path.join(tools, "age-keygen")], capture_output=True, text=True, check=True).stdout
    recipient = next(line.split(": ")[1] for line in out.splitlines() if line.startswith("# public key: "))
    return recipient, next(line for line in out.splitlines() if line.startswith("AGE-SECRET-KEY-"))


@pytest.fixture(name="keys", scope="module")
def keys_fixture(tools):
    return {"right": age_key(tools), "wrong": age_key(tools)}


def sops(root, rel, text, fmt, *args, config=None):
    """Encrypt ``text`` (never written in clear) with sops into ``rel`` of the checkout ``root``; ``config``:
    a .sops.yaml to read (the only way to give encrypted_comment_regex)."""
    path = os.path.join(root, "checkout", rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    argv = ["sops"] + (["--config", config] if config else []) + ["encrypt", "--input-type", fmt, "--output-type", fmt]
    out = subprocess.run(argv + list(args) + ["/dev/stdin"], input=text, capture_output=True, text=True, check=True,
                         cwd=root).stdout
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(out)
    return path


def write(root, rel, text):
    path = os.path.join(root, "checkout", rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def secret(name, **string_data):
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": string_data},
                          sort_keys=False)


def data_of(bundle, name):
    obj = next(o for o in bundle.objects if o["kind"] == "Secret" and o["metadata"]["name"] == name)
    decoded = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    return dict(decoded, **(obj.get("stringData") or {}))


def assert_no_plaintext(*folders):
    """No secret value of this module, in clear or base64, in any file under ``folders``."""
    needles = [s.encode() for s in SECRETS] + [base64.b64encode(s.encode()) for s in SECRETS]
    for folder in folders:
        for parent, _dirs, files in os.walk(folder):
            for name in files:
                path = os.path.join(parent, name)
                if os.path.islink(path):
                    continue
                with open(path, "rb") as handle:
                    content = handle.read()
                found = [n.decode() for n in needles if n in content]
                assert not found, "%s holds %s" % (path, found)


def shm_entries():
    return {name for name in os.listdir("/dev/shm") if name.startswith("gitops-k8s-")}


def test_a_directory_app_decrypts_every_sops_layout_and_stores_no_plaintext(env, keys):
    recipient, identity = keys["right"]
    age = ["--age", recipient]
    sops(env, "app/regex.yaml", secret("regex", password="regex-s3cret"), "yaml", *age,
         "--encrypted-regex", "^(data|stringData)$")
    sops(env, "app/suffix.yaml", secret("suffix", password="db-pa55word"), "yaml", *age, "--encrypted-suffix", "Data")
    sops(env, "app/unencrypted.yaml", secret("unencrypted", token="api-t0ken"), "yaml", *age,
         "--unencrypted-regex", "^(apiVersion|kind|metadata)$")
    with open(os.path.join(env, "sops.yaml"), "w", encoding="utf-8") as handle:  # comment rules: config only
        handle.write("creation_rules:\n- age: %s\n  encrypted_comment_regex: 'sops:enc'\n" % recipient)
    sops(env, "app/comment.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: comment\nstringData:\n"
         "  # sops:enc\n  password: comment-s3cret\n  user: plain-user\n", "yaml",
         config=os.path.join(env, "sops.yaml"))
    sops(env, "app/whole.json", json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "whole"},
                                            "stringData": {"key": "tls-k3y-material"}}), "json", *age)
    write(env, "app/plain.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\ndata: {a: b}\n")
    with open(os.path.join(env, "checkout", "app", "comment.yaml"), encoding="utf-8") as handle:
        assert "user: plain-user" in handle.read()  # only the marked value was encrypted
    before = shm_entries()

    result, bundle = render_bundle(os.path.join(env, "checkout"), path="app", namespace="shop",
                                   decryption={"age_keys": [identity]})

    assert result["renderer"]["decrypted"] == ["app/comment.yaml", "app/regex.yaml", "app/suffix.yaml",
                                               "app/unencrypted.yaml", "app/whole.json"]
    assert data_of(bundle, "regex") == {"password": "regex-s3cret"}
    assert data_of(bundle, "suffix") == {"password": "db-pa55word"}
    assert data_of(bundle, "unencrypted") == {"token": "api-t0ken"}
    assert data_of(bundle, "comment") == {"password": "comment-s3cret", "user": "plain-user"}
    assert data_of(bundle, "whole") == {"key": "tls-k3y-material"}
    assert all("sops" not in obj for obj in bundle.objects)
    assert Bundle.load(result["bundle"]).objects == bundle.objects  # the sealed bundle opens again
    # every object is sealed, the ConfigMap too: a decrypted render may put plaintext anywhere
    with open(os.path.join(result["bundle"], "objects.json"), encoding="utf-8") as handle:
        assert all("gitops.k8s/sealed" in doc for doc in json.load(handle))
    assert_no_plaintext(os.path.join(env, "cache"), os.path.join(env, "checkout"))
    assert shm_entries() == before


def test_a_kustomize_secret_generator_reads_encrypted_dotenv_ini_and_binary_files(env, keys):
    recipient, identity = keys["right"]
    age = ["--age", recipient]
    write(env, "base/kustomization.yaml", "resources: [config.yaml]\n")
    write(env, "base/config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\ndata: {a: b}\n")
    sops(env, "overlay/db.env", "PASSWORD=db-pa55word\nUSER=admin\n", "dotenv", *age)
    sops(env, "overlay/api.ini", "[api]\ntoken = api-t0ken\n", "ini", *age)
    sops(env, "overlay/tls.key", "tls-k3y-material\n", "binary", *age)
    sops(env, "overlay/extra.yaml", secret("extra", password="regex-s3cret"), "yaml", *age)
    write(env, "overlay/kustomization.yaml",
          "resources: [../base, extra.yaml]\n"
          "secretGenerator:\n- name: db\n  envs: [db.env]\n  files: [api.ini, tls.key=tls.key]\n"
          "configMapGenerator:\n- name: settings\n  literals: [mode=production]\n"
          "generatorOptions: {disableNameSuffixHash: true}\n")
    before = shm_entries()

    result, bundle = render_bundle(os.path.join(env, "checkout"), path="overlay", decryption={"age_keys": [identity]})

    assert result["renderer"]["decrypted"] == ["overlay/api.ini", "overlay/db.env", "overlay/extra.yaml", "overlay/tls.key"]
    assert data_of(bundle, "db") == {"PASSWORD": "db-pa55word", "USER": "admin", "api.ini": "[api]\ntoken = api-t0ken\n",
                                     "tls.key": "tls-k3y-material\n"}
    assert data_of(bundle, "extra") == {"password": "regex-s3cret"}
    assert {o["metadata"]["name"] for o in bundle.objects} == {"base", "db", "extra", "settings"}
    assert_no_plaintext(os.path.join(env, "cache"), os.path.join(env, "checkout"))
    assert shm_entries() == before  # the copy kustomize built from is gone


def test_a_helm_chart_takes_sops_and_vault_values_files_in_order(env, keys):
    recipient, identity = keys["right"]
    write(env, "chart/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n")
    write(env, "chart/values.yaml", "db: {user: default-user, password: default}\napi: none\n")
    write(env, "chart/templates/secret.yaml",
          "apiVersion: v1\nkind: Secret\nmetadata: {name: app}\nstringData:\n"
          "  password: {{ .Values.db.password | quote }}\n  user: {{ .Values.db.user | quote }}\n"
          "  api: {{ .Values.api | quote }}\n")
    sops(env, "chart/secrets.yaml", "db:\n  password: helm-s3cret\n  user: overridden-later\n", "yaml",
         "--age", recipient, "--encrypted-regex", "^password$")
    password_file = os.path.join(env, "vault-password")
    with open(password_file, "w", encoding="utf-8") as handle:
        handle.write("vault-pa55")
    vault = os.path.join(os.path.dirname(sys.executable), "ansible-vault")
    tagged = subprocess.run([vault, "encrypt_string", "--vault-id", "prod@" + password_file, "--stdin-name", "api"],
                            input="api-t0ken", capture_output=True, text=True, check=True).stdout
    write(env, "chart/tagged.yaml", "# a value tagged !vault\n" + tagged)
    subprocess.run([vault, "encrypt", "--vault-id", "prod@" + password_file, "--output",
                    os.path.join(env, "checkout", "chart", "whole.yaml"), "-"],
                   input="db:\n  user: vaulted-us3r\n", capture_output=True, text=True, check=True)

    result, bundle = render_bundle(os.path.join(env, "checkout"), path="chart",
                                   values_files=["secrets.yaml", "tagged.yaml", "whole.yaml"],
                                   decryption={"age_keys": [identity], "vault": [{"id": "prod", "password": "vault-pa55"}]})

    assert result["renderer"]["decrypted"] == ["chart/secrets.yaml", "chart/tagged.yaml", "chart/whole.yaml"]
    assert data_of(bundle, "app") == {"password": "helm-s3cret", "user": "vaulted-us3r", "api": "api-t0ken"}
    assert_no_plaintext(os.path.join(env, "cache"), os.path.join(env, "checkout"))

    with pytest.raises(GitOpsError) as err:
        render_bundle(os.path.join(env, "checkout"), path="chart", values_files=["whole.yaml"],
                      decryption={"vault": "not-the-password"})
    assert str(err.value).startswith("chart/whole.yaml: cannot decrypt with the vault secrets given to this app "
                                     "(it names vault id prod)")


def test_the_render_module_masks_keys_and_values_in_a_verbose_run(env, keys, ansible):
    recipient, identity = keys["right"]
    sops(env, "app/secret.yaml", secret("db", password="db-pa55word"), "yaml", "--age", recipient)
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"gitops.k8s.render": {"source": os.path.join(env, "checkout"), "path": "app",
                               "decryption": {"age_keys": [identity]}}, "register": "rendered"},
        {"ansible.builtin.debug": {"var": "rendered"}}]}]
    proc = ansible.playbook(play, args=("-vvv",), diff=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "app/secret.yaml" in proc.stdout  # renderer.decrypted names the file
    for text in (proc.stdout, proc.stderr):
        assert identity not in text and "db-pa55word" not in text
    assert_no_plaintext(os.path.join(env, "cache"))


@pytest.mark.parametrize("damage, message", [
    # an unencrypted value edited by hand: the MAC covers it
    (lambda text: text.replace("name: db", "name: db2"),
     "app/secret.yaml: cannot decrypt: it fails its MAC check: it was changed after it was encrypted"),
    # a ciphertext edited by hand
    (lambda text: text.replace("password: ENC[AES256_GCM,data:", "password: ENC[AES256_GCM,data:AA"),
     "app/secret.yaml: cannot decrypt: it fails its MAC check"),
    # the metadata dropped
    (lambda text: text[:text.index("sops:")],
     "app/secret.yaml looks SOPS-encrypted (it holds ENC[AES256_GCM,...] values) but is not a valid SOPS file: "
     "it has no SOPS metadata"),
])
def test_a_damaged_file_is_refused_with_its_reason(env, keys, damage, message):
    recipient, identity = keys["right"]
    path = sops(env, "app/secret.yaml", secret("db", password="db-pa55word"), "yaml", "--age", recipient,
                "--encrypted-regex", "^stringData$")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(damage(text))
    with pytest.raises(GitOpsError) as err:
        render_bundle(os.path.join(env, "checkout"), path="app", decryption={"age_keys": [identity]})
    assert str(err.value).startswith(message)
    assert err.value.details["file"] == "app/secret.yaml"
    assert not os.path.exists(os.path.join(env, "cache", "gitops-k8s", "bundles"))  # no bundle


def test_only_the_apps_own_keys_decrypt(env, keys, monkeypatch):
    recipient, identity = keys["right"]
    sops(env, "app/secret.yaml", secret("db", password="db-pa55word"), "yaml", "--age", recipient)
    checkout = os.path.join(env, "checkout")
    with pytest.raises(GitOpsError) as err:  # another key: the message names the file and its recipient
        render_bundle(checkout, path="app", decryption={"age_keys": [keys["wrong"][1]]})
    assert str(err.value) == ("app/secret.yaml: cannot decrypt: none of the keys given to this app opens it; it is "
                              "encrypted for age %s" % recipient)
    assert err.value.details["recipients"] == [("age", recipient)]
    # the controller's own keys (sops' environment variables, ~/.config/sops) are never used
    key_file = os.path.join(env, "home", ".config", "sops", "age", "keys.txt")
    os.makedirs(os.path.dirname(key_file))
    with open(key_file, "w", encoding="utf-8") as handle:
        handle.write(identity + "\n")
    monkeypatch.setenv("HOME", os.path.join(env, "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", os.path.join(env, "home", ".config"))
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", key_file)
    monkeypatch.setenv("SOPS_AGE_KEY", identity)
    with pytest.raises(GitOpsError, match="none of the keys given to this app opens it"):
        render_bundle(checkout, path="app", decryption={"age_keys": [keys["wrong"][1]]})
    with pytest.raises(GitOpsError, match="no age key is given to this app"):
        render_bundle(checkout, path="app")


def test_a_pgp_key_decrypts_in_a_private_gnupghome_removed_at_once(env, workdir):
    gnupg = os.path.join(workdir, "gnupg-of-the-author")
    os.makedirs(gnupg, mode=0o700)
    subprocess.run(["gpg", "--homedir", gnupg, "--batch", "--passphrase", "", "--quick-gen-key", "author <a@example.com>",
                    "default", "default", "never"], capture_output=True, check=True)
    listing = subprocess.run(["gpg", "--homedir", gnupg, "--with-colons", "--list-keys"], capture_output=True, text=True,
                             check=True).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    private_key = subprocess.run(["gpg", "--homedir", gnupg, "--batch", "--armor", "--export-secret-keys", fingerprint],
                                 capture_output=True, text=True, check=True).stdout
    os.environ["GNUPGHOME"] = gnupg
    try:
        sops(env, "app/secret.yaml", secret("db", password="gpg-s3cret"), "yaml", "--pgp", fingerprint)
    finally:
        del os.environ["GNUPGHOME"]
        subprocess.run(["gpgconf", "--homedir", gnupg, "--kill", "all"], check=True)
    before = shm_entries()

    result, bundle = render_bundle(os.path.join(env, "checkout"), path="app", decryption={"gpg_keys": [private_key]})

    assert result["renderer"]["decrypted"] == ["app/secret.yaml"]
    assert data_of(bundle, "db") == {"password": "gpg-s3cret"}
    assert shm_entries() == before  # the GNUPGHOME holding the private key is gone, its agent stopped
    with pytest.raises(GitOpsError) as err:
        render_bundle(os.path.join(env, "checkout"), path="app")
    assert str(err.value) == ("app/secret.yaml is SOPS-encrypted for pgp %s, and no pgp key is given to this app "
                              "(decryption.age_keys, decryption.gpg_keys)" % fingerprint)


def test_a_render_that_decrypted_is_never_remembered(env, keys):
    recipient, identity = keys["right"]
    sops(env, "app/secret.yaml", secret("db", password="db-pa55word"), "yaml", "--age", recipient)
    params = {"path": "app", "namespace": None, "options": {"decryption": {"age_keys": [identity]}}}
    assert memo.key("a" * 40, params) is None  # the keys never enter a memo key
    _result, bundle = render_bundle(os.path.join(env, "checkout"), path="app", revision="a" * 40,
                                    decryption={"age_keys": [identity]})
    remembered = memo.key("a" * 40, {"path": "app", "namespace": None, "options": {}})
    memo.remember(remembered, bundle)  # a caller passing the keys outside the options
    assert memo.recall(remembered) is None
