# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Secrets kept encrypted in Git, decrypted while rendering: SOPS files and Ansible Vault.

A file is recognised by its content, not its name: SOPS values (``ENC[AES256_GCM,...]``) with SOPS
metadata (a ``sops`` key in YAML and JSON, ``sops_*`` lines in dotenv, a ``[sops]`` section in
INI), a whole file encrypted by ``ansible-vault`` (``$ANSIBLE_VAULT;``), or, in Helm values files,
values tagged ``!vault``.

SOPS files are decrypted by the real ``sops``, which verifies their MAC, with only the keys of
the render's ``decryption`` option: age keys through ``SOPS_AGE_KEY``, PGP keys imported into a
private ``GNUPGHOME``; the controller's own keys (``~/.config/sops``, ``~/.ssh``, ``~/.gnupg``, the
``SOPS_*`` variables, cloud credentials) are out of its reach, so an app decrypts with its own keys
or not at all. The plaintext comes back through a pipe and stays in memory; where a tool reads only
files (kustomize reads its tree, helm several values files) it goes to a ``plaintext_folder``: a
0700 folder on a memory file system, removed as soon as the tool is done. Ansible Vault is opened
by ansible-core's VaultLib, imported only when a vault file is met.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections import namedtuple

from ..cli import find_tool, run_command
from ..concurrency import each
from ..deps import import_library, require_yaml
from ..errors import GitOpsError
from .documents import loader
from .tools import OFFLINE_ENV, private_home

SOPS_MARK = b"ENC[AES256_GCM,"
VAULT_HEADER = b"$ANSIBLE_VAULT;"
VAULT_TAG = re.compile(rb"!vault\s*\|")
# the fields that name each kind of SOPS master key (sops' stores/stores.go)
KEY_FIELDS = {"age": ("recipient",), "pgp": ("fp",), "kms": ("arn",), "gcp_kms": ("resource_id",), "hckms": ("key_id",),
              "azure_kv": ("vault_url", "name"), "hc_vault": ("vault_address", "engine_path", "key_name")}
DECRYPTION_KEYS = ("age_keys", "gpg_keys", "vault")
# What an app or a project may also name: vault ids of the play's own vault secrets (--vault-id)
PLAY_VAULT_KEY = "vault_ids"
# Variables through which sops (or the cloud SDKs in it) would find keys of the controller
# rather than the app's: removed from its environment.
FOREIGN_KEYS = ("SOPS_", "GNUPGHOME", "AWS_", "GOOGLE_", "CLOUDSDK_", "AZURE_", "VAULT_", "HUAWEICLOUD_")
# sops exit codes (cmd/sops/codes): no key opens the data key; the file was changed after encryption
SOPS_NO_KEY = (128,)
SOPS_TAMPERED = (24, 25, 51, 52)
# sops processes run side by side for the files of one render
CONCURRENCY = min(8, os.cpu_count() or 1)
# Memory file systems for plaintext that a tool must read as a file, in order of preference.
MEMORY_FOLDERS = ("/dev/shm", "XDG_RUNTIME_DIR")

Encrypted = namedtuple("Encrypted", "kind format recipients vault_id")
Encrypted.__doc__ = """What ``sniff`` found: ``kind`` sops, vault (a whole file) or vault-tags (``!vault`` values);
``format`` (SOPS) yaml, json, dotenv, ini or binary; ``recipients`` [(key type, key id)]; ``vault_id``."""


def looks_encrypted(text):
    """Whether the text might be encrypted (``sniff`` tells): the quick test for every file read."""
    return "ENC[AES256_GCM," in text or "$ANSIBLE_VAULT;" in text


def sniff(name, data):
    """What ``data`` (bytes of file ``name``) is encrypted with, or None when it is not.

    Raises GitOpsError when it holds SOPS values without valid SOPS metadata."""
    if data.lstrip().startswith(VAULT_HEADER):
        return Encrypted("vault", None, [], vault_id(data))
    if SOPS_MARK in data:
        fmt, meta = sops_metadata(name, data)
        return Encrypted("sops", fmt, recipients(meta), None)
    if VAULT_TAG.search(data):
        return Encrypted("vault-tags", None, [], None)
    return None


def vault_id(data):
    """The vault id a vault text (bytes) names in its header (format 1.2), or None."""
    header = data.lstrip().split(b"\n", 1)[0].decode("ascii", "replace").strip().split(";")
    return header[3] if len(header) > 3 else None


def sops_metadata(name, data):
    """(format, the ``sops`` metadata as a dict) of the SOPS file ``name``."""
    text = data.decode("utf-8", "replace")
    fmt, meta, problem = None, None, "it has no SOPS metadata"
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        # sops stores any other file (binary) as JSON {"data": ..., "sops": ...}; a .json file is JSON
        binary = set(doc) == {"data", "sops"} and not name.endswith(".json")
        fmt, meta = "binary" if binary else "json", doc.get("sops")
    elif re.search(r"^sops_mac=", text, re.M):
        fmt = "dotenv"
        meta = unflatten({k[len("sops_"):]: v for k, v in _pairs(text, "=") if k.startswith("sops_")})
    elif re.search(r"^\[sops\]\s*$", text, re.M):
        fmt = "ini"
        section = text[re.search(r"^\[sops\]\s*$", text, re.M).end():].split("\n[", 1)[0]
        meta = unflatten(dict(_pairs(section, "=")))
    else:
        fmt = "yaml"
        yaml = require_yaml("reading SOPS files")
        try:
            docs = list(yaml.load_all(text, Loader=loader()))
        except Exception as err:  # yaml.YAMLError, a duplicate key: not the YAML sops writes
            docs, problem = [], "it is not valid YAML (%s)" % (getattr(err, "problem", None) or type(err).__name__)
        meta = next((doc["sops"] for doc in docs if isinstance(doc, dict) and "sops" in doc), None)
    if not isinstance(meta, dict) or not isinstance(meta.get("mac"), str):
        if meta is not None:
            problem = "its SOPS metadata has no MAC"
        raise GitOpsError("%s looks SOPS-encrypted (it holds ENC[AES256_GCM,...] values) but is not a valid SOPS file: %s"
                          % (name, problem), file=name)
    return fmt, meta


def _pairs(text, separator):
    """``key<separator>value`` lines of ``text`` as (key, value), stripped; other lines skipped."""
    for line in text.splitlines():
        key, sep, value = line.partition(separator)
        if sep and not line.lstrip().startswith(("#", ";")):
            yield key.strip(), value.strip()


def unflatten(flat):
    """sops' flattened metadata keys (``age__list_0__map_recipient``) -> nested dicts and lists
    (lists hold dicts only, as in SOPS metadata)."""
    root = {}
    for path, value in flat.items():
        tokens = re.split(r"__(map|list)_", path)
        node, key = root, tokens[0]
        for kind, token in zip(tokens[1::2], tokens[2::2]):
            child = node.setdefault(key, [] if kind == "list" else {}) if isinstance(node, dict) else node[key]
            if kind == "list":
                child.extend({} for _missing in range(int(token) + 1 - len(child)))
            node, key = child, int(token) if kind == "list" else token
        node[key] = value
    return root


def recipients(meta):
    """[(key type, key id)] of the SOPS metadata ``meta``, key groups included, in its order."""
    found = []
    for group in [meta] + [g for g in meta.get("key_groups") or [] if isinstance(g, dict)]:
        for kind, fields in KEY_FIELDS.items():
            for key in group.get(kind) or []:
                if isinstance(key, dict):
                    found.append((kind, "/".join(str(key.get(field, "")) for field in fields)))
    return found


def describe_recipients(found):
    return ", ".join("%s %s" % pair for pair in found) or "no recipient"


def refuse_undecrypted(source, obj):
    """A rendered object that still carries SOPS metadata was never decrypted: refuse it."""
    if isinstance(obj, dict) and isinstance(obj.get("sops"), dict) and "mac" in obj["sops"]:
        raise GitOpsError("%s is SOPS-encrypted and was not decrypted (only directory, jinja, kustomize and helm values "
                          "files are): it would be applied encrypted" % source, file=source)


@contextlib.contextmanager
def plaintext_folder():
    """A folder only this user can enter (0700) on a memory file system, removed on exit: the one place
    plaintext goes when a tool reads only files. /dev/shm, else $XDG_RUNTIME_DIR; none is an error."""
    for base in (os.environ.get(name) if name.isupper() else name for name in MEMORY_FOLDERS):
        if base and os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK):
            break
    else:
        raise GitOpsError("decrypted files go to a memory file system, removed at once; neither /dev/shm nor "
                          "$XDG_RUNTIME_DIR is a writable folder on this controller")
    folder = tempfile.mkdtemp(prefix="gitops-k8s-", dir=base)  # mode 0700
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_private(path, data):
    """Write ``data`` (bytes) to ``path``, readable by this user only."""
    if os.path.lexists(path):
        os.unlink(path)  # a copied file (or symlink) is replaced, never written through
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def check_decryption(value, where="decryption", play=False):
    """``value`` checked as a ``decryption`` mapping and returned (None when absent). With ``play``
    (an app's or a project's keys, for the per-cluster engine) ``vault_ids`` is known too.

    Only the shape is checked, and messages name the key and the type, never a value. A key may
    still be one of Ansible's encrypted values (the inventory plugin reads them untemplated); the
    Decryptor checks that keys are strings once the task has templated them."""
    if value is None:
        return None
    known = DECRYPTION_KEYS + ((PLAY_VAULT_KEY,) if play else ())
    if not isinstance(value, dict):
        raise GitOpsError("%s must be a mapping of %s, not a %s" % (where, ", ".join(known), type(value).__name__))
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise GitOpsError("%s: unknown key(s) %s (known: %s)" % (where, ", ".join(unknown), ", ".join(known)))
    for name in ("age_keys", "gpg_keys", PLAY_VAULT_KEY):
        for item in _items(value.get(name)):
            if not _text(item):
                raise GitOpsError("%s.%s must be a list of strings, not of %s" % (where, name, type(item).__name__))
    for item in _items(value.get("vault")):
        if isinstance(item, dict):
            if not set(item) <= {"id", "password"} or "password" not in item:
                raise GitOpsError("%s.vault: each entry is a password or {id, password}; got a mapping of %s%s"
                                  % (where, ", ".join(sorted(map(str, item))) or "nothing",
                                     " (the play's secrets are named in %s.%s)" % (where, PLAY_VAULT_KEY)
                                     if play and set(item) == {"id"} else ""))
        elif not (_text(item) or _is_pair(item)):
            raise GitOpsError("%s.vault: each entry is a password or {id, password}, not a %s" % (where, type(item).__name__))
    return value


def _items(value):
    """A key's entries: a list as given, one value as a list of it."""
    return [] if value is None else value if isinstance(value, list) else [value]


def _text(item):
    """A string, or a value Ansible templates into one (a vaulted string): no container, number or bool."""
    return item is not None and not isinstance(item, (dict, list, tuple, set, bool, int, float))


def merge_decryption(sources, play_secrets=()):
    """One ``decryption`` for the Decryptor from several (``sources``: [(where, mapping checked with
    ``play``)], an app's own and its project's), or None when none gives a key. ``vault_ids`` become
    the play's vault secrets (``play_secrets``: [(vault id, VaultSecret)]) of those ids; an id the
    play lacks is an error naming ``where``."""
    merged = {name: [] for name in DECRYPTION_KEYS}
    for where, mapping in sources:
        if not mapping:
            continue
        for name in DECRYPTION_KEYS:
            merged[name] += _items(mapping.get(name))
        for vault_id in _items(mapping.get(PLAY_VAULT_KEY)):
            given = [(i, secret) for i, secret in play_secrets or () if i == vault_id]
            if not given:
                raise GitOpsError("%s.%s names vault id %s, and the play has no vault secret of that id (give it "
                                  "with --vault-id %s@<password file or prompt>, or an AWX vault credential of that "
                                  "vault id)" % (where, PLAY_VAULT_KEY, vault_id, vault_id))
            merged["vault"] += given
    return {k: v for k, v in merged.items() if v} or None


def vault_secrets(value):
    """The ``vault`` entry of ``decryption`` as [(vault id, password or VaultSecret)]: a password, or a
    list of passwords, ``{id, password}`` dicts or (id, VaultSecret) pairs (an action's play secrets)."""
    if not value:
        return []
    found = []
    for item in value if isinstance(value, (list, tuple)) and not _is_pair(value) else [value]:
        if isinstance(item, str):
            found.append(("default", item))
        elif isinstance(item, dict) and item.get("password"):
            found.append((str(item.get("id") or "default"), item["password"]))
        elif _is_pair(item):
            found.append((str(item[0]), item[1]))
        else:
            raise GitOpsError("decryption.vault: each entry is a password, {id, password} or (id, secret); got a %s"
                              % type(item).__name__)
    return found


def _is_pair(item):
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and not isinstance(item[1], (str, dict))


class Decryptor:
    """Decrypts the files of one render with the keys of ``decryption`` (``{age_keys, gpg_keys,
    vault}``) and no other; ``decrypted`` lists the files it opened. A context manager: what it set
    up (a private GNUPGHOME, plaintext folders) is removed on exit."""

    def __init__(self, decryption=None, sops_binary=None):
        decryption = check_decryption(decryption) or {}
        self.age_keys = [k.strip() for k in _strings(decryption, "age_keys") if k.strip()]
        self.gpg_keys = [k for k in _strings(decryption, "gpg_keys") if k.strip()]
        self.vault = vault_secrets(decryption.get("vault"))
        self.sops_binary = sops_binary
        self.decrypted = []
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self._env = None
        self._vault_lib = None
        self._folder = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stack.close()

    def plaintext_folder(self):
        """A ``plaintext_folder`` removed when this decryptor closes."""
        return self._stack.enter_context(plaintext_folder())

    def readable(self, path, rel, vault_tags=False):
        """``path``, or when it is encrypted a file of a plaintext folder holding its plaintext (for a
        tool that reads files, such as helm its values files; in the order they are asked for)."""
        plain = self.decrypt(path, rel, vault_tags=vault_tags)
        if plain is None:
            return path
        with self._lock:
            if self._folder is None:
                self._folder = self.plaintext_folder()
            copy = os.path.join(self._folder, "%d-%s" % (len(os.listdir(self._folder)), os.path.basename(path)))
            write_private(copy, plain)
        return copy

    def mirror(self, root, folders, plaintexts):
        """A copy of ``folders`` (real paths under ``root``) in a plaintext folder, each file of
        ``plaintexts`` ({path: bytes}) replaced by its plaintext; returns the copy's root."""
        copy = self.plaintext_folder()
        kept = []
        for folder in sorted(folders):
            if not any(folder.startswith(outer + os.sep) for outer in kept):  # copied with its parent
                kept.append(folder)
                shutil.copytree(folder, os.path.join(copy, os.path.relpath(folder, root)), symlinks=True,
                                dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git"))
        for path, data in plaintexts.items():
            write_private(os.path.join(copy, os.path.relpath(path, root)), data)
        return copy

    def texts(self, files):
        """[(path, rel, text)] -> [(rel, text decrypted)]; the encrypted ones side by side (a sops process each)."""
        documents = [(rel, text) for _path, rel, text in files]
        encrypted = [i for i, (_path, _rel, text) in enumerate(files) if looks_encrypted(text)]
        for i, text in zip(encrypted, each(CONCURRENCY, lambda i: self.text(*files[i]), encrypted)):
            documents[i] = (files[i][1], text)
        return documents

    def text(self, path, rel, text, vault_tags=False):
        """``text`` (of file ``path``, ``rel`` in messages) decrypted when it is encrypted."""
        if not looks_encrypted(text):
            return text  # the quick way out for the plain files of a render
        plain = self.decrypt(path, rel, text.encode("utf-8"), vault_tags)
        if plain is None:
            return text
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise GitOpsError("%s decrypts to bytes that are not UTF-8 text; a manifest or values file must be text" % rel,
                              file=rel)

    def decrypt(self, path, rel, data=None, vault_tags=False):
        """The plaintext (bytes) of file ``path`` (``rel`` in messages), or None when it is not
        encrypted. ``!vault`` values are decrypted only with ``vault_tags`` (values files)."""
        if data is None:
            with open(path, "rb") as handle:
                data = handle.read()
        found = sniff(rel, data)
        if found is None or (found.kind == "vault-tags" and not vault_tags):
            return None
        if found.kind == "sops":
            plain = self._sops(path, rel, found)
        elif found.kind == "vault":
            plain = self._open_vault(rel, data, found.vault_id)
        else:
            plain = self._vault_tags(rel, data)
        self.decrypted.append(rel)
        return plain

    def _sops(self, path, rel, found):
        kinds = {kind for kind, _id in found.recipients}
        if not ("age" in kinds and self.age_keys or "pgp" in kinds and self.gpg_keys):
            usable = [kind for kind in ("age", "pgp") if kind in kinds]
            why = ("no %s key is given to this app (decryption.age_keys, decryption.gpg_keys)" % " or ".join(usable)
                   if usable else "render decrypts with age and PGP keys only")
            raise GitOpsError("%s is SOPS-encrypted for %s, and %s" % (rel, describe_recipients(found.recipients), why),
                              file=rel, recipients=found.recipients)
        sops = find_tool(["sops"], self.sops_binary, "sops_binary")
        argv = [sops, "decrypt", "--input-type", found.format, "--output-type", found.format, path]
        env = self._environment()
        try:
            # run in the private HOME: a .sops.yaml of the checkout is not read
            return run_command(argv, cwd=env["HOME"], env=env, binary=True,
                               redact=self.age_keys + self.gpg_keys)
        except GitOpsError as err:
            rc = err.details.get("rc")
            if rc in SOPS_NO_KEY:
                msg = "none of the keys given to this app opens it; it is encrypted for %s" % describe_recipients(
                    found.recipients)
            elif rc in SOPS_TAMPERED:
                msg = "it fails its MAC check: it was changed after it was encrypted (edit it with sops, never by hand)"
            elif rc is not None:
                msg = "it looks SOPS-encrypted but is not a valid SOPS file: %s" % err.details.get("stderr")
            else:
                raise  # sops not found, or timed out
            raise GitOpsError("%s: cannot decrypt: %s" % (rel, msg), file=rel, recipients=found.recipients,
                              stderr=err.details.get("stderr")) from None

    def _environment(self):
        """sops' environment: this decryptor's keys, a private HOME, no network, no other key."""
        with self._lock:
            if self._env is None:
                home = self._stack.enter_context(private_home())
                env = {name: None for name in os.environ if name.startswith(FOREIGN_KEYS)}
                env.update(OFFLINE_ENV, HOME=home, XDG_CONFIG_HOME=home, GNUPGHOME=os.path.join(home, "gnupg"))
                if self.age_keys:
                    env["SOPS_AGE_KEY"] = "\n".join(self.age_keys)
                if self.gpg_keys:
                    gpg = find_tool(["gpg", "gpg2"], None, "decryption.gpg_keys (gpg on PATH)")
                    env.update(GNUPGHOME=self._gnupg_home(gpg), SOPS_GPG_EXEC=gpg)
                self._env = env
        return self._env

    def _gnupg_home(self, gpg):
        """A GNUPGHOME in a plaintext folder holding the gpg keys; its agent is stopped before it is removed."""
        home = os.path.join(self.plaintext_folder(), "gnupg")
        os.mkdir(home, 0o700)
        self._stack.callback(_stop_agent, find_tool(["gpgconf"], None, "decryption.gpg_keys (gpgconf on PATH)"), home)
        for index, key in enumerate(self.gpg_keys):
            try:
                run_command([gpg, "--homedir", home, "--batch", "--quiet", "--import"], stdin=key, redact=self.gpg_keys)
            except GitOpsError as err:
                raise GitOpsError("decryption.gpg_keys[%d] is not an ASCII-armored private key gpg imports: %s"
                                  % (index, err.details.get("stderr")))
        return home

    def _open_vault(self, rel, data, vault_id):
        """The plaintext of the vault text ``data``."""
        lib = self._vault()
        if lib is None:
            raise GitOpsError("%s is encrypted with Ansible Vault%s and no vault secret is given to this app "
                              "(decryption.vault)" % (rel, " (vault id %s)" % vault_id if vault_id else ""), file=rel)
        try:
            return lib.decrypt(data)
        except Exception as err:  # AnsibleError: no secret opens it, or a damaged vault text
            raise GitOpsError("%s: cannot decrypt with the vault secrets given to this app%s: %s"
                              % (rel, " (it names vault id %s)" % vault_id if vault_id else "",
                                 getattr(err, "message", None) or err), file=rel) from None

    def _vault(self):
        """ansible-core's VaultLib with this decryptor's vault secrets, or None without any."""
        if not self.vault:
            return None
        with self._lock:
            if self._vault_lib is None:
                vault = import_library("ansible.parsing.vault", "ansible-core", "decrypting Ansible Vault files")
                self._vault_lib = vault.VaultLib([
                    (vault_id, secret if hasattr(secret, "bytes") else vault.VaultSecret(str(secret).encode("utf-8")))
                    for vault_id, secret in self.vault])
        return self._vault_lib

    def _vault_tags(self, rel, data):
        """A values file with ``!vault`` values, as JSON with those values decrypted."""
        yaml = require_yaml("decrypting !vault values")
        decryptor = self

        class VaultLoader(loader()):
            pass

        def construct(load, node):
            text = load.construct_scalar(node).encode("utf-8")
            return decryptor._open_vault("%s:%d" % (rel, node.start_mark.line + 1), text, vault_id(text)).decode("utf-8")

        VaultLoader.add_constructor("!vault", construct)
        try:
            values = yaml.load(data.decode("utf-8"), Loader=VaultLoader)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            raise GitOpsError("%s:%s: invalid YAML: %s" % (rel, mark.line + 1 if mark else "?", getattr(err, "problem", err)),
                              file=rel)
        return json.dumps(values).encode("utf-8")


def _stop_agent(gpgconf, home):
    """Stop the gpg-agent of ``home``; a failure must not hide the render's own outcome."""
    try:
        run_command([gpgconf, "--homedir", home, "--kill", "all"], env={"GNUPGHOME": home})
    except GitOpsError:
        pass


def _strings(decryption, name):
    value = decryption.get(name) or []
    if isinstance(value, str):
        value = [value]
    if not all(isinstance(item, str) for item in value):
        raise GitOpsError("decryption.%s must be a list of strings" % name)
    return value
