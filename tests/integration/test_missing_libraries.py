"""A module run where a Python library is missing fails the Ansible way, naming what to install."""

import stat

from conftest import VENV_PYTHON, PlaybookRunner

BLOCK_YAML = '''
import sys


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "yaml":
            raise ImportError("No module named %r" % name)


sys.meta_path.insert(0, Blocker())
'''


def test_render_without_pyyaml_fails_with_missing_required_lib(ansible, tmp_path):
    # an interpreter whose site setup makes PyYAML unimportable, as on a host where it is not installed
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCK_YAML)
    python = tmp_path / "python"
    python.write_text('#!/bin/sh\nPYTHONPATH="%s" exec "%s" "$@"\n' % (tmp_path / "site", VENV_PYTHON))
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    runner = PlaybookRunner(dict(ansible.env, ANSIBLE_PYTHON_INTERPRETER=str(python)), ansible.workdir)

    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n")

    # render has no action plugin: it runs as a module process with the host's interpreter (the
    # cluster-facing modules run in the controller's Python when the connection is local)
    proc, result = runner.module("gitops.k8s.render", {"source": str(tmp_path / "repo"), "path": "."})

    assert result["failed"], proc.stdout
    assert result["msg"].startswith("Failed to import the required Python library (PyYAML) on ")
    assert "This is required for rendering type=directory." in result["msg"], result["msg"]
    assert result["missing_library"] == "PyYAML"
