"""What the documentation promises is what the code has: the options of an application
(``gitops_apps``) in every place that documents them, the Python requirements, and the files and
tests the docs and docstrings point to."""

import glob
import os
import re

import yaml

from ansible_collections.gitops.k8s.plugins.module_utils.apps import gitops_apps as apps
from ansible_collections.gitops.k8s.plugins.module_utils.render.secrets import DECRYPTION_KEYS, PLAY_VAULT_KEY
from ansible_collections.gitops.k8s.plugins.module_utils.sources.charts import REPOSITORY_KEYS, SPEC_KEYS
from ansible_collections.gitops.k8s.plugins.module_utils.sync.ignore import IGNORE_ARGSPEC
from ansible_collections.gitops.k8s.plugins.modules import cluster_sync

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))) + [os.path.join(ROOT, "README.md")]
# Keys of an app's mappings and lists of mappings: each must be named wherever the app key is described.
NESTED = {
    "wait": tuple(apps.WAIT_KEYS),
    "credentials": apps.CREDENTIAL_KEYS,
    "managed_namespace_metadata": apps.NAMESPACE_METADATA_KEYS,
    "helm": SPEC_KEYS,
    "ignore_differences": tuple(IGNORE_ARGSPEC["ignore_differences"]["options"]),
    "decryption": DECRYPTION_KEYS + (PLAY_VAULT_KEY,),
}


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        return handle.read()


def cluster_sync_app_options():
    return yaml.safe_load(cluster_sync.DOCUMENTATION)["options"]["apps"]["suboptions"]


def applications_md_rows():
    """``{key: row text}`` of the table of application keys in docs/applications.md."""
    text = read("docs/applications.md")
    table = text[text.index("| key | default | meaning |"):].split("\n\n", 1)[0]
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \|.*$", table, re.M)}


def role_app_options():
    specs = yaml.safe_load(read("roles/sync/meta/argument_specs.yml"))["argument_specs"]
    return {entry: spec["options"]["sync_app"]["options"] for entry, spec in specs.items()
            if "sync_app" in spec["options"]}


def described(option):
    text = option.get("description")
    return " ".join(text) if isinstance(text, list) else text


def test_every_key_of_an_application_is_documented_everywhere_and_nothing_else_is():
    keys = set(apps.APP_KEYS)
    assert set(cluster_sync_app_options()) == keys, "cluster_sync DOCUMENTATION apps.suboptions"
    assert set(applications_md_rows()) == keys, "the table of docs/applications.md"
    roles = role_app_options()
    assert roles, "roles/sync/meta/argument_specs.yml documents sync_app"
    for entry, options in roles.items():
        assert set(options) == keys, "roles/sync/meta/argument_specs.yml %s sync_app" % entry


def test_every_key_of_an_applications_mappings_is_documented_everywhere():
    documented = cluster_sync_app_options()
    rows = applications_md_rows()
    for key, inner in NESTED.items():
        option = documented[key]
        if option.get("suboptions"):
            assert set(option["suboptions"]) == set(inner), "cluster_sync apps.%s suboptions" % key
        else:
            missing = [k for k in inner if "C(%s)" % k not in described(option)]
            assert not missing, "cluster_sync apps.%s does not describe %s" % (key, ", ".join(missing))
        missing = [k for k in inner if not re.search(r"\b%s\b" % k, rows[key])]
        assert not missing, "docs/applications.md row %s does not name %s" % (key, ", ".join(missing))
    repositories = documented["helm"]["suboptions"]["repositories"]["suboptions"]
    assert set(repositories) == set(REPOSITORY_KEYS), "cluster_sync apps.helm.repositories suboptions"


def requirements():
    lines = read("requirements.txt").splitlines()
    return {line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()}


def test_requirements_name_every_library_the_engine_imports():
    imported = set()
    for path in glob.glob(os.path.join(ROOT, "plugins", "**", "*.py"), recursive=True):
        with open(path, encoding="utf-8") as handle:
            imported.update(re.findall(r'import_library\(\s*"[^"]+",\s*"([^"]+)"', handle.read()))
    assert {"cryptography", "kubernetes", "GitPython", "jq"} <= imported, "the scan finds the engine's libraries"
    # ansible-core runs the modules; jsonnet is only for type=jsonnet (it needs a C++ build where no wheel exists)
    optional = {"ansible-core", "jsonnet"}
    assert sorted(imported - optional - requirements()) == []


def test_the_docs_requirement_lists_name_every_requirement():
    lists = []
    for path in DOCS:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                # "pip install -r requirements.txt   # a b c" and "(`requirements.txt`: a, b, c)"
                match = re.search(r"requirements\.txt`?(?::|\s+#)\s*([\w][\w ,.-]*?)\s*(?:\)|$)", line)
                if match:
                    lists.append((os.path.basename(path), set(re.split(r"[\s,]+", match.group(1)))))
    assert len(lists) >= 2, "getting-started.md and awx.md list the requirements"
    for name, listed in lists:
        assert listed == requirements(), name


def test_the_files_and_tests_the_docs_name_exist():
    path = re.compile(r"(?<![\w./-])((?:tests|plugins|roles|playbooks|docs|changelogs|meta)/[\w./*-]*[\w*])")
    test = re.compile(r"`((?:[\w./-]+\.py)?)::(\w+)`")
    missing = []
    for doc in DOCS:
        with open(doc, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                where = "%s:%d" % (os.path.relpath(doc, ROOT), number)
                missing += ["%s: %s" % (where, p) for p in path.findall(line) if not glob.glob(os.path.join(ROOT, p))]
                current = None
                for named, function in test.findall(line):
                    # "file.py::test" names a test; "::test" another test of the file named before it
                    files = glob.glob(os.path.join(ROOT, named if "/" in named else "tests/**/" + named),
                                      recursive=True) if named else current
                    if not files or len(files) > 1:
                        missing.append("%s: %s (%s)" % (where, named, "no such file" if not files else "ambiguous"))
                        continue
                    current = files
                    if not re.search(r"^def %s\(" % function, read(files[0]), re.M):
                        missing.append("%s: %s::%s" % (where, named, function))
    assert missing == []


def test_the_files_docstrings_point_to_exist():
    pointer = re.compile(r"\b((?:module_utils|plugin_utils|modules|action|doc_fragments|inventory)/[\w/]+\.py)\b")
    missing = []
    for source in glob.glob(os.path.join(ROOT, "plugins", "**", "*.py"), recursive=True):
        with open(source, encoding="utf-8") as handle:
            missing += ["%s: %s" % (os.path.relpath(source, ROOT), p) for p in pointer.findall(handle.read())
                        if not os.path.exists(os.path.join(ROOT, "plugins", p))]
    assert missing == []
