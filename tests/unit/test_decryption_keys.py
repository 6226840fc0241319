"""Which keys an application decrypts with (sync/policy.keys_of, render/secrets.check_decryption and
merge_decryption): its own and its project's, the play's vault secrets only by the ids they name,
and no message ever shows a key."""

import pytest
import yaml

from ansible_collections.gitops.k8s.plugins.module_utils.apps.definitions import read_folder
from ansible_collections.gitops.k8s.plugins.module_utils.apps.gitops_apps import normalize_app, order_apps
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.render.secrets import check_decryption, merge_decryption
from ansible_collections.gitops.k8s.plugins.module_utils.sync.policy import keys_of, load_projects

KEY_A = "AGE-SECRET-KEY-1TEAMAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
KEY_B = "AGE-SECRET-KEY-1TEAMBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"


class PlaySecret:  # what the action plugin hands over: ansible's VaultSecret
    bytes = b"play-vault-pa55"


def app(name, **keys):
    return dict({"name": name, "decryption": None, "project": None}, **keys)


PROJECTS = load_projects([
    {"name": "team-a", "decryption": {"age_keys": [KEY_A]}},
    {"name": "team-b", "decryption": {"age_keys": KEY_B, "vault_ids": ["prod"]}},
    {"name": "plain"},
])


def test_an_app_decrypts_with_its_own_keys_and_its_projects_and_no_other():
    assert keys_of(app("web", project="team-a"), PROJECTS) == ("project team-a", {"age_keys": [KEY_A]})
    own = keys_of(app("web", project="team-a", decryption={"age_keys": ["AGE-SECRET-KEY-1OWN"]}), PROJECTS)
    assert own == ("application web", {"age_keys": ["AGE-SECRET-KEY-1OWN", KEY_A]})
    assert keys_of(app("web", project="plain"), PROJECTS) == (None, None)
    assert keys_of(app("web"), PROJECTS) == (None, None)  # no project named, no "default" project: no key at all


def test_an_app_without_a_project_takes_the_default_projects_keys():
    projects = load_projects([{"name": "default", "decryption": {"gpg_keys": ["-----BEGIN PGP PRIVATE KEY BLOCK-----"]}}])
    assert keys_of(app("web"), projects).owner == "project default"


def test_an_app_naming_an_undefined_project_is_refused():
    with pytest.raises(GitOpsError, match="names project 'team-c', which gitops_projects does not define"):
        keys_of(app("web", project="team-c"), PROJECTS)


def test_the_plays_vault_secrets_are_given_by_the_ids_an_app_or_its_project_names():
    prod, other = PlaySecret(), PlaySecret()
    play = [("prod", prod), ("other", other)]
    keys = keys_of(app("web", project="team-b"), PROJECTS, play)
    assert keys.decryption == {"age_keys": [KEY_B], "vault": [("prod", prod)]}
    keys = keys_of(app("web", decryption={"vault": "own-pa55", "vault_ids": ["other"]}), PROJECTS, play)
    assert keys.decryption == {"vault": ["own-pa55", ("other", other)]}
    with pytest.raises(GitOpsError) as err:
        keys_of(app("web", project="team-b"), PROJECTS, [("other", other)])
    assert str(err.value).startswith("project 'team-b': decryption.vault_ids names vault id prod, and the play has "
                                     "no vault secret of that id (give it with --vault-id prod@")


@pytest.mark.parametrize("value, message", [
    ("AGE-SECRET-KEY-1SHOWN", "must be a mapping of age_keys, gpg_keys, vault, vault_ids, not a str"),
    ({"age_key": ["AGE-SECRET-KEY-1SHOWN"]}, "unknown key(s) age_key"),
    ({"age_keys": [{"key": "AGE-SECRET-KEY-1SHOWN"}]}, "decryption.age_keys must be a list of strings, not of dict"),
    ({"vault": [{"id": "prod"}]}, "got a mapping of id (the play's secrets are named in x: decryption.vault_ids)"),
    ({"vault": [{"id": "prod", "pass": "AGE-SECRET-KEY-1SHOWN"}]}, "got a mapping of id, pass"),
])
def test_a_malformed_decryption_is_refused_without_showing_a_key(value, message):
    with pytest.raises(GitOpsError) as err:
        check_decryption(value, "x: decryption", play=True)
    assert message in str(err.value)
    assert "SHOWN" not in str(err.value)


def test_a_project_checks_its_decryption_and_never_shows_it():
    with pytest.raises(GitOpsError, match="project 'team-a': decryption: unknown key"):
        load_projects([{"name": "team-a", "decryption": {"age": KEY_A}}])
    assert KEY_A not in repr(PROJECTS) and KEY_A not in repr(keys_of(app("web", project="team-a"), PROJECTS))


def test_vault_ids_are_for_apps_and_projects_only():
    with pytest.raises(GitOpsError, match="unknown key"):
        check_decryption({"vault_ids": ["prod"]})
    assert merge_decryption([("a", None), ("b", {})]) is None


def test_gitops_apps_take_decryption_and_project_and_never_show_the_keys():
    listed = {"name": "web", "repo": "https://git.example.com/web.git", "project": "team-a",
              "decryption": {"age_keys": [KEY_A], "vault_ids": ["prod"]}}
    planned = order_apps([listed])
    assert planned["apps"][0]["decryption"] == ["age_keys", "vault_ids"]
    assert planned["apps"][0]["project"] == "team-a"
    assert KEY_A not in repr(planned)
    assert normalize_app(listed, 0)["decryption"] == listed["decryption"]
    for wrong in (KEY_A, [KEY_A], {"age_keys": {"key": KEY_A}}):
        with pytest.raises(GitOpsError) as err:
            normalize_app(dict(listed, decryption=wrong), 0)
        assert str(err.value).startswith("application 'web': decryption") and KEY_A not in str(err.value)


def flux(folder, decryption):
    """read_folder of a GitRepository and a Kustomization whose spec.decryption is ``decryption``."""
    docs = [{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "metadata": {"name": "fleet"},
             "spec": {"url": "https://git.example.com/fleet.git", "ref": {"branch": "main"}}},
            {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "shop"},
             "spec": {"path": "./shop", "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                      "decryption": decryption}}]
    with open(folder / "flux.yaml", "w", encoding="utf-8") as handle:
        yaml.safe_dump_all(docs, handle)
    return read_folder(str(folder), decryption={"sops-age": {"age_keys": ["{{ lookup('env', 'SOPS_AGE_KEY') }}"]},
                                                "team-b": {"vault_ids": ["prod"]}})


def test_a_flux_kustomization_decrypts_with_the_entry_its_secret_ref_names(tmp_path):
    found = flux(tmp_path, {"provider": "sops", "secretRef": {"name": "sops-age"}})
    assert not found.errors and not found.notes
    [(_cluster, app, rel)] = found.apps
    assert app["decryption"] == {"age_keys": ["{{ lookup('env', 'SOPS_AGE_KEY') }}"]} and rel == "flux.yaml"


@pytest.mark.parametrize("decryption, message", [
    ({"provider": "sops", "secretRef": {"name": "sops-gpg"}},
     "flux.yaml: Kustomization shop: spec.decryption.secretRef sops-gpg names no decryption entry of the inventory "
     "configuration (defined: sops-age, team-b)"),
    ({"provider": "sops"}, "flux.yaml: Kustomization shop: spec.decryption has no secretRef"),
    ({"provider": "vault", "secretRef": {"name": "sops-age"}},
     "flux.yaml: Kustomization shop: spec.decryption.provider vault is not supported"),
])
def test_a_flux_decryption_without_keys_of_its_own_is_a_mapping_error(tmp_path, decryption, message):
    found = flux(tmp_path, decryption)
    assert not found.apps
    [error] = found.errors
    assert error["file"] == "flux.yaml" and error["message"].startswith(message)
