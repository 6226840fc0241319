"""Recognising encrypted files (render/secrets.py): SOPS in its four formats and binary, Ansible Vault
files and !vault values; recipients read from the metadata; what looks encrypted but is not valid SOPS.

The texts are laid out as sops 3.13 and ansible-vault write them (shortened ciphertexts: detection
reads the layout, never the cryptography, which the integration tests exercise with the real tools)."""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.render.secrets import (
    Decryptor, describe_recipients, looks_encrypted, refuse_undecrypted, sniff, unflatten, vault_secrets)

AGE = "age1sx9zgrh7us39mjm0wlpysa20rlzc087qxhqchuqvfur9twxwps8sezphqt"
FP = "9A0F9888006AB927A90DE2C3B3BCAB750AEE5521"
ENC = "ENC[AES256_GCM,data:+BV/xX9e1OQ=,iv:NNfx,tag:zoLg,type:str]"
MAC = "ENC[AES256_GCM,data:EUNCiMTd,iv:TWic,tag:CxdX,type:str]"

YAML = """apiVersion: v1
kind: Secret
metadata:
    name: db
stringData:
    password: %(enc)s
sops:
    age:
        - enc: |
            -----BEGIN AGE ENCRYPTED FILE-----
            YWdl
            -----END AGE ENCRYPTED FILE-----
          recipient: %(age)s
    pgp:
        - created_at: "2026-12-02T16:52:01Z"
          enc: |-
            -----BEGIN PGP MESSAGE-----
            hF4D
            -----END PGP MESSAGE-----
          fp: %(fp)s
    encrypted_regex: ^(data|stringData)$
    lastmodified: "2026-12-02T16:51:44Z"
    mac: %(mac)s
    version: 3.13.3
""" % {"enc": ENC, "age": AGE, "fp": FP, "mac": MAC}

DOTENV = """FOO=%(enc)s
sops_age__list_0__map_enc=-----BEGIN AGE ENCRYPTED FILE-----\\nYWdl\\n-----END AGE ENCRYPTED FILE-----\\n
sops_age__list_0__map_recipient=%(age)s
sops_lastmodified=2026-12-02T16:51:44Z
sops_mac=%(mac)s
sops_unencrypted_suffix=_unencrypted
sops_version=3.13.3
""" % {"enc": ENC, "age": AGE, "mac": MAC}

INI = """[db]
user = %(enc)s

[sops]
age__list_0__map_enc       = -----BEGIN AGE ENCRYPTED FILE-----\\nYWdl\\n-----END AGE ENCRYPTED FILE-----\\n
age__list_0__map_recipient = %(age)s
lastmodified               = 2026-12-02T16:51:44Z
mac                        = %(mac)s
version                    = 3.13.3
""" % {"enc": ENC, "age": AGE, "mac": MAC}

BINARY = '{\n\t"data": "%s",\n\t"sops": {\n\t\t"age": [{"enc": "x", "recipient": "%s"}],\n\t\t"mac": "%s"\n\t}\n}\n' % (
    ENC, AGE, MAC)

VAULT = "$ANSIBLE_VAULT;1.2;AES256;prod\n6162636465\n"
VAULT_TAGS = "image: nginx\ndb:\n  password: !vault |\n    $ANSIBLE_VAULT;1.1;AES256\n    6162636465\n"


@pytest.mark.parametrize("name, text, fmt", [
    ("secret.enc.yaml", YAML, "yaml"),
    ("app.env", DOTENV, "dotenv"),
    ("db.ini", INI, "ini"),
    ("cert.pem", BINARY, "binary"),  # any other file: sops keeps it as JSON {data, sops}
    ("config.json", BINARY, "json"),  # the same layout in a .json file is a JSON document
    ("secret.txt", YAML, "yaml"),  # recognised by content, whatever the name
])
def test_sops_files_are_recognised_with_their_format_and_recipients(name, text, fmt):
    found = sniff(name, text.encode())
    assert (found.kind, found.format) == ("sops", fmt)
    assert ("age", AGE) in found.recipients


def test_every_recipient_is_named_key_groups_included():
    found = sniff("s.yaml", YAML.encode())
    assert found.recipients == [("age", AGE), ("pgp", FP)]
    assert describe_recipients(found.recipients) == "age %s, pgp %s" % (AGE, FP)
    flat = {"key_groups__list_0__map_age__list_0__map_recipient": AGE,
            "key_groups__list_1__map_pgp__list_0__map_fp": FP,
            "key_groups__list_1__map_kms__list_0__map_arn": "arn:aws:kms:eu-west-1:1:key/k", "mac": MAC}
    text = "".join("sops_%s=%s\n" % pair for pair in flat.items())
    assert sniff("groups.env", text.encode()).recipients == [
        ("age", AGE), ("pgp", FP), ("kms", "arn:aws:kms:eu-west-1:1:key/k")]


def test_unflatten_rebuilds_sops_metadata():
    assert unflatten({"age__list_1__map_recipient": "b", "age__list_0__map_recipient": "a", "mac": "m"}) == {
        "age": [{"recipient": "a"}, {"recipient": "b"}], "mac": "m"}


@pytest.mark.parametrize("text", [
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n",
    "KEY=value\n",
    "[section]\nkey = value\n",
    "{\"sops\": {\"mac\": \"plain\"}}",  # a 'sops' key alone, no SOPS value: an ordinary file
])
def test_plain_files_are_not_encrypted(text):
    assert sniff("f.yaml", text.encode()) is None
    assert not looks_encrypted(text)


@pytest.mark.parametrize("text, problem", [
    ("apiVersion: v1\nkind: Secret\nstringData:\n  password: %s\n" % ENC, "it has no SOPS metadata"),
    (YAML.replace("    mac: %s\n" % MAC, ""), "its SOPS metadata has no MAC"),
    ("a: %s\nb: [unclosed\n" % ENC, "it is not valid YAML"),
    ("FOO=%s\n" % ENC, "it has no SOPS metadata"),
])
def test_what_looks_encrypted_but_is_not_valid_sops_is_refused(text, problem):
    with pytest.raises(GitOpsError) as err:
        sniff("apps/web/secret.yaml", text.encode())
    assert str(err.value).startswith("apps/web/secret.yaml looks SOPS-encrypted")
    assert problem in str(err.value)


def test_vault_files_and_vault_values():
    found = sniff("values.yaml", VAULT.encode())
    assert (found.kind, found.vault_id) == ("vault", "prod")
    assert sniff("v", b"$ANSIBLE_VAULT;1.1;AES256\n6162\n").vault_id is None
    assert sniff("values.yaml", VAULT_TAGS.encode()).kind == "vault-tags"


def test_vault_secrets_take_a_password_a_list_or_the_plays_secrets():
    class PlaySecret:  # what an action plugin holds: ansible's VaultSecret
        bytes = b"pw"

    play = PlaySecret()
    assert vault_secrets("pw") == [("default", "pw")]
    assert vault_secrets(["a", {"id": "prod", "password": "b"}]) == [("default", "a"), ("prod", "b")]
    assert vault_secrets([("prod", play)]) == [("prod", play)]
    assert vault_secrets(None) == []
    with pytest.raises(GitOpsError, match="decryption.vault"):
        vault_secrets([42])


def test_decryption_option_is_checked():
    with pytest.raises(GitOpsError, match="unknown key.*age_key"):
        Decryptor({"age_key": ["AGE-SECRET-KEY-1"]})
    with pytest.raises(GitOpsError, match="decryption.age_keys must be a list of strings"):
        Decryptor({"age_keys": [1]})


def test_a_file_without_a_usable_key_is_refused_before_sops_runs():
    with Decryptor({}) as decryptor, pytest.raises(GitOpsError) as err:
        decryptor.decrypt("/nonexistent", "apps/web/secret.yaml", YAML.encode())
    assert str(err.value) == ("apps/web/secret.yaml is SOPS-encrypted for age %s, pgp %s, and no age or pgp key is "
                              "given to this app (decryption.age_keys, decryption.gpg_keys)" % (AGE, FP))
    kms_only = YAML.replace("    age:", "    kms:\n        - arn: arn:aws:kms:k\n    x_age:").replace("pgp:", "x_pgp:")
    with Decryptor({"age_keys": ["AGE-SECRET-KEY-1X"]}) as decryptor, pytest.raises(GitOpsError) as err:
        decryptor.decrypt("/nonexistent", "s.yaml", kms_only.encode())
    assert str(err.value) == "s.yaml is SOPS-encrypted for kms arn:aws:kms:k, and render decrypts with age and PGP keys only"


def test_an_object_still_carrying_sops_metadata_is_refused():
    with pytest.raises(GitOpsError, match="templates/secret.yaml is SOPS-encrypted and was not decrypted"):
        refuse_undecrypted("templates/secret.yaml", {"kind": "Secret", "sops": {"mac": MAC}})
    refuse_undecrypted("c.yaml", {"kind": "ConfigMap", "data": {"sops": "a tool's name"}})
