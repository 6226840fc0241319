"""Third-party libraries: the C YAML loader is used, and a missing library says what to install."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.gitops.k8s.plugins.module_utils import deps
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.render.documents import loader

# Run in a fresh interpreter where the engine's third-party libraries cannot be imported (as in
# ansible-test's import sanity test, or on a host where they were never installed).
WITHOUT_LIBRARIES = r'''
import importlib, json, os, pkgutil, sys

BLOCKED = {"yaml", "git", "jinja2", "_jsonnet", "kubernetes", "jmespath", "urllib3"}


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("No module named %r" % name)


sys.meta_path.insert(0, Blocker())
import ansible_collections.gitops.k8s.plugins.module_utils as module_utils

imported = []
for info in pkgutil.walk_packages(module_utils.__path__, module_utils.__name__ + "."):
    importlib.import_module(info.name)
    imported.append(info.name[len(module_utils.__name__) + 1:])

from ansible_collections.gitops.k8s.plugins.module_utils.bundle import Bundle
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import Cluster
from ansible_collections.gitops.k8s.plugins.module_utils.deps import MissingLibrary
from ansible_collections.gitops.k8s.plugins.module_utils.health import CustomHealth
from ansible_collections.gitops.k8s.plugins.module_utils.render import render
from ansible_collections.gitops.k8s.plugins.module_utils.sources.git import GitSession

checkout = sys.argv[1]
calls = {
    "bundle": lambda: Bundle.load(checkout),
    "cluster": lambda: Cluster.from_params({}),
    "git": lambda: GitSession("https://example.com/repo.git"),
    "directory": lambda: render(checkout, type="directory", check_mode=True),
    "jinja": lambda: render(checkout, type="jinja", check_mode=True),
    "jsonnet": lambda: render(checkout, type="jsonnet", check_mode=True),
    "custom_health": lambda: CustomHealth([{"kind": "Widget", "healthy": "status.ok"}]),
}
errors = {}
for what, call in calls.items():
    try:
        call()
    except MissingLibrary as err:
        errors[what] = {"msg": str(err), "details": err.details, "traceback": err.import_traceback}
print(json.dumps({"imported": imported, "errors": errors}))
'''


def test_the_c_yaml_loader_and_dumper_are_used():
    library = deps.require_yaml("testing")
    assert library.SafeLoader is yaml.CSafeLoader and library.SafeDumper is yaml.CSafeDumper
    assert library.load_all is yaml.load_all
    assert issubclass(loader(), yaml.CSafeLoader)


def test_import_library_returns_the_module_or_says_what_to_install():
    assert deps.import_library("json", "json", "testing") is json
    with pytest.raises(GitOpsError, match=r"^type=x requires the not-installed Python library: pip install not-installed$") as err:
        deps.import_library("gitops_k8s_no_such_module", "not-installed", "type=x")
    assert err.value.details == {"missing_library": "not-installed"}
    assert "gitops_k8s_no_such_module" in err.value.import_traceback


def test_without_third_party_libraries_everything_imports_and_each_use_names_its_library(tmp_path):
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", WITHOUT_LIBRARIES, str(tmp_path)], capture_output=True, text=True,
                          env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"bundle", "cluster.client", "sync.compare", "sync.apply", "cluster.records", "sources.git",
            "render.documents", "render.substitute", "health.watch", "health.drilldown", "tasks.health_wait_task",
            "health.custom", "sync.windows", "render.secrets"} <= set(result["imported"])
    messages = {what: error["msg"] for what, error in result["errors"].items()}
    assert messages == {
        "bundle": "reading a bundle requires the PyYAML Python library: pip install PyYAML",
        "cluster": "talking to a Kubernetes cluster requires the kubernetes Python library: pip install kubernetes",
        "git": "gitops.k8s.git_fetch requires the GitPython Python library: pip install GitPython",
        "directory": "rendering type=directory requires the PyYAML Python library: pip install PyYAML",
        "jinja": "rendering type=jinja requires the Jinja2 Python library: pip install Jinja2",
        "jsonnet": "rendering type=jsonnet requires the jsonnet Python library: pip install jsonnet",
        "custom_health": "custom_health requires the jmespath Python library: pip install jmespath",
    }
    assert all("ImportError" in error["traceback"] or "ModuleNotFoundError" in error["traceback"]
               for error in result["errors"].values())


# Each module in a fresh interpreter, as AnsiballZ starts it: which third-party libraries did the import load?
MODULE_START = r'''
import importlib, json, os, sys

import ansible_collections.gitops.k8s.plugins.modules as modules

HEAVY = {"yaml", "git", "jinja2", "_jsonnet", "kubernetes", "jmespath", "urllib3"}
name = sys.argv[1]
importlib.import_module(modules.__name__ + "." + name)
print(json.dumps(sorted(HEAVY.intersection(module.split(".")[0] for module in sys.modules))))
'''
MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "modules"))
                 if name.endswith(".py"))


@pytest.mark.parametrize("module", MODULES)
def test_starting_a_module_loads_no_third_party_library(module):
    # they cost 25 ms (PyYAML) to 250 ms (kubernetes) a process; the engine imports each when a run needs it
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", MODULE_START, module], capture_output=True, text=True, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
