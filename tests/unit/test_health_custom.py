"""custom_health: JMESPath rules per group/kind."""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.health import CustomHealth, Health, assess

RULES = [{
    "group": "db.example.com", "kind": "Database",
    "healthy": "status.phase == 'Running'",
    "degraded": "status.phase == 'Failed' || length(status.errors[?fatal] || `[]`) > `0`",
    "suspended": "spec.paused",
    "message": "join(': ', [status.phase, status.detail || ''])",
}]


def database(status=None, spec=None):
    return {"apiVersion": "db.example.com/v1", "kind": "Database", "metadata": {"name": "main"},
            "spec": spec or {}, "status": status or {}}


@pytest.mark.parametrize("status,spec,expected,message", [
    ({"phase": "Running", "detail": "3 replicas"}, None, Health.HEALTHY, "Running: 3 replicas"),
    ({"phase": "Failed", "detail": "disk full"}, None, Health.DEGRADED, "Failed: disk full"),
    ({"phase": "Running", "errors": [{"fatal": True}]}, None, Health.DEGRADED, "Running: "),
    ({"phase": "Creating"}, None, Health.PROGRESSING, "Creating: "),
    ({"phase": "Running"}, {"paused": True}, Health.SUSPENDED, "Running: "),
])
def test_rule_decides(status, spec, expected, message):
    assert assess(database(status, spec), RULES) == (expected, message)


def test_rule_overrides_the_builtin_rule_and_matches_group():
    rules = [{"group": "apps", "kind": "Deployment", "healthy": "metadata.annotations.ok"}]
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w", "annotations": {"ok": "y"}},
              "spec": {"replicas": 3}, "status": {}}
    assert assess(deploy, rules)[0] == Health.HEALTHY
    other_group = dict(deploy, apiVersion="example.com/v1")
    assert assess(other_group, rules)[0] == Health.HEALTHY  # generic rules: status empty
    assert "custom rule" not in assess(other_group, rules)[1]


def test_rule_without_group_matches_any_group():
    rules = [{"kind": "Widget", "healthy": "status.ok"}]
    assert assess({"apiVersion": "a.io/v1", "kind": "Widget", "status": {"ok": True}}, rules)[0] == Health.HEALTHY


def test_unmatched_with_progressing_expression_is_unknown():
    rules = [{"kind": "Widget", "healthy": "status.ok", "progressing": "status.working"}]
    obj = {"apiVersion": "a.io/v1", "kind": "Widget", "status": {"ok": False, "working": False}}
    assert assess(obj, rules) == (Health.UNKNOWN, "no custom_health expression matched")
    obj["status"]["working"] = True
    assert assess(obj, rules)[0] == Health.PROGRESSING


def test_expression_error_at_runtime_is_unknown():
    rules = [{"kind": "Widget", "healthy": "length(status.count) > `1`"}]
    status, message = assess({"apiVersion": "a.io/v1", "kind": "Widget", "status": {"count": 3}}, rules)
    assert status == Health.UNKNOWN
    assert "custom_health expression failed" in message


@pytest.mark.parametrize("rule,words", [
    ({"kind": "Widget", "healthy": "status.["}, "not a valid JMESPath expression"),
    ({"healthy": "status.ok"}, "needs a kind"),
    ({"kind": "Widget"}, "has no healthy"),
    ({"kind": "Widget", "healthy": "a", "helthy": "b"}, "unknown keys helthy"),
])
def test_bad_rules_are_refused_with_the_reason(rule, words):
    with pytest.raises(GitOpsError) as err:
        CustomHealth([rule])
    assert words in str(err.value)
