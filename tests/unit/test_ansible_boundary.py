"""The module/action boundary: what it makes of an engine call's result and of its errors."""

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.ansible_module import Call, failure, shape_result, trivial_values
from ansible_collections.gitops.k8s.plugins.module_utils.deps import MissingLibrary
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError

DIFF = [{"before": "a: 1\n", "after": "a: 2\n"}]


def test_ansible_diff_is_shown_in_diff_mode_only():
    assert shape_result(Call({}, diff_mode=True), {"changed": True, "ansible_diff": DIFF}) == {"changed": True, "diff": DIFF}
    assert shape_result(Call({}, diff_mode=False), {"changed": True, "ansible_diff": DIFF}) == {"changed": True}


def test_a_gitops_error_keeps_its_details():
    err = GitOpsError("f.yaml: ConfigMap shop/web has no metadata.name", file="f.yaml", missing=["metadata.name"])
    assert failure(err) == {"msg": "f.yaml: ConfigMap shop/web has no metadata.name", "file": "f.yaml",
                            "missing": ["metadata.name"]}


def test_a_missing_library_reads_as_ansibles_standard_failure():
    shaped = failure(MissingLibrary("PyYAML", "reading a bundle", "Traceback ...ImportError"))
    assert shaped["msg"].startswith("Failed to import the required Python library (PyYAML) on ")
    assert "This is required for reading a bundle." in shaped["msg"]
    assert shaped["missing_library"] == "PyYAML" and shaped["exception"] == "Traceback ...ImportError"


def test_masked_options_leave_only_trivial_values_unmasked():
    values = {"password": "hunter2", "replicas": 3, "nested": {"on": "yes", "token": "abcdef"}, "list": [1, "long-one"]}
    assert sorted(trivial_values(values)) == ["1", "3", "yes"]
    assert list(trivial_values(None)) == []


def test_hide_collects_values_and_skips_empty_ones():
    hidden = set()
    call = Call({}, hide=hidden.add)
    call.hide("s3cr3t")
    call.hide(None)
    assert hidden == {"s3cr3t"}
