"""Repository content is untrusted: paths stay in the checkout, Jinja is sandboxed, Jsonnet imports confined."""

import os

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.render import render

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


def write(root, rel, text):
    path = os.path.join(str(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # bundles go to this test's cache
    root = tmp_path / "checkout"
    root.mkdir()
    return root


@pytest.mark.parametrize("path", ["..", "../checkout/../..", "/etc", "apps/../../x"])
def test_paths_outside_the_checkout_are_refused(checkout, path):
    write(checkout, "apps/a.yaml", CM.format(name="a"))
    with pytest.raises(GitOpsError, match="outside the checkout|absolute"):
        render(str(checkout), path)


def test_symlinks_out_of_the_checkout_are_refused(checkout, tmp_path):
    write(tmp_path, "outside/secret.yaml", CM.format(name="secret"))
    write(checkout, "apps/a.yaml", CM.format(name="a"))
    os.symlink(str(tmp_path / "outside"), str(checkout / "linked"))
    os.symlink(str(tmp_path / "outside" / "secret.yaml"), str(checkout / "apps" / "b.yaml"))
    with pytest.raises(GitOpsError, match="outside the checkout"):
        render(str(checkout), "linked")
    with pytest.raises(GitOpsError, match="apps/b.yaml is a symlink to .*outside the checkout"):
        render(str(checkout), "apps")


def test_directory_recurse_include_exclude(checkout):
    write(checkout, "app/a.yaml", CM.format(name="a"))
    write(checkout, "app/b.json", '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}')
    write(checkout, "app/notes.txt", "not a manifest")
    write(checkout, "app/config/settings.yaml", "log_level: debug\n")
    write(checkout, "app/more/c.yml", CM.format(name="c"))

    def names(result):
        return sorted(e["name"] for e in result["objects"])

    assert names(render(str(checkout), "app")) == ["a", "b"]
    with pytest.raises(GitOpsError, match="app/config/settings.yaml: an object has no apiVersion, kind, metadata"):
        render(str(checkout), "app", recurse=True)
    assert names(render(str(checkout), "app", recurse=True, exclude=["config"])) == ["a", "b", "c"]
    assert names(render(str(checkout), "app", recurse=True, include=["*.yml", "a.yaml"])) == ["a", "c"]


def test_empty_render_is_an_error_unless_allowed(checkout):
    write(checkout, "empty/a.yaml", "---\n# nothing yet\n")
    with pytest.raises(GitOpsError, match="produced no objects"):
        render(str(checkout), "empty")
    assert render(str(checkout), "empty", allow_empty=True)["count"] == 0


def test_jinja_renders_with_vars_and_strict_undefined(checkout):
    write(checkout, "t/cm.yaml.j2", CM.format(name="{{ name }}") + "data:\n{% for k in keys %}  {{ k }}: \"{{ k | upper }}\"\n{% endfor %}")
    result = render(str(checkout), "t", type="jinja", vars={"name": "web", "keys": ["a", "b"]})
    assert result["objects"][0]["name"] == "web" and result["objects"][0]["source"] == "t/cm.yaml.j2"
    with pytest.raises(GitOpsError, match=r"t/cm.yaml.j2:6: template error: UndefinedError: 'keys' is undefined"):
        render(str(checkout), "t", type="jinja", vars={"name": "web"})


@pytest.mark.parametrize("expression", [
    "lookup('pipe', 'touch {marker}')",
    "query('pipe', 'touch {marker}')",
    "''.__class__.__mro__[1].__subclasses__()",
    "cycler.__init__.__globals__.os.system('touch {marker}')",
    "'touch {marker}' | ansible.builtin.pipe",
    "self._TemplateReference__context.environment",
])
def test_jinja_sandbox_refuses_code_execution(checkout, tmp_path, expression):
    marker = tmp_path / "executed"
    write(checkout, "t/cm.yaml.j2", CM.format(name="x") + "data:\n  out: \"{{ %s }}\"\n" % expression.format(marker=marker))
    with pytest.raises(GitOpsError, match="t/cm.yaml.j2.*template"):
        render(str(checkout), "t", type="jinja", vars={})
    assert not marker.exists()


def test_jinja_includes_stay_in_the_checkout(checkout, tmp_path):
    write(tmp_path, "outside.j2", "leaked: true\n")
    write(checkout, "t/cm.yaml.j2", CM.format(name="x") + "{% include '../outside.j2' %}\n")
    with pytest.raises(GitOpsError, match="TemplateNotFound"):
        render(str(checkout), "t", type="jinja", vars={})


def test_jsonnet_with_ext_vars_tla_and_confined_imports(checkout, tmp_path):
    write(checkout, "lib/cm.libsonnet", "{ cm(name, data):: {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: name}, data: data} }")
    write(checkout, "j/main.jsonnet", "local lib = import 'cm.libsonnet';\n"
          "function(replicas=1) [lib.cm(std.extVar('env'), {replicas: std.toString(replicas)}), lib.cm('cfg', std.extVar('cfg'))]")
    result = render(str(checkout), "j", type="jsonnet", jsonnet_libs=["lib"], ext_vars={"env": "prod", "cfg": {"a": "1"}},
                    tla={"replicas": 3})
    assert sorted(e["name"] for e in result["objects"]) == ["cfg", "prod"]
    write(tmp_path, "secret.libsonnet", "{ leaked: true }")
    write(checkout, "k/main.jsonnet", "(import '../../secret.libsonnet') + {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'x'}}")
    with pytest.raises(GitOpsError, match="k/main.jsonnet: jsonnet error: .*outside the checkout"):
        render(str(checkout), "k", type="jsonnet")
