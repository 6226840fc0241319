"""Every health rule, from the YAML fixtures in tests/unit/health/ (one file per kind)."""

import glob
import os

import pytest
import yaml

from ansible_collections.gitops.k8s.plugins.module_utils.health import RULES, Health, assess, worst

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "health")


def _cases():
    for path in sorted(glob.glob(os.path.join(FIXTURES, "*.yaml"))):
        with open(path, encoding="utf-8") as handle:
            for case in yaml.safe_load(handle):
                yield pytest.param(case, id="%s: %s" % (os.path.basename(path)[:-5], case["case"]))


@pytest.mark.parametrize("case", list(_cases()))
def test_rule_gives_the_expected_verdict(case):
    status, message = assess(case["object"])
    assert status == case["status"], message
    assert case.get("message", "") in message
    assert message, "every verdict explains itself"


# Kinds whose nature rules out one of the three states (the fixture file says why).
NO_PROGRESSING = {"CronJob"}
NO_DEGRADED = {"Service", "Ingress", "APIService", "Namespace", "StatefulSet", "DaemonSet"}


@pytest.mark.parametrize("group,kind", sorted(RULES))
def test_every_rule_has_healthy_progressing_and_degraded_fixtures(group, kind):
    path = os.path.join(FIXTURES, "%s.yaml" % kind.lower())
    with open(path, encoding="utf-8") as handle:
        seen = {case["status"] for case in yaml.safe_load(handle)}
    wanted = {Health.HEALTHY, Health.PROGRESSING, Health.DEGRADED}
    wanted -= {Health.PROGRESSING} if kind in NO_PROGRESSING else set()
    wanted -= {Health.DEGRADED} if kind in NO_DEGRADED else set()
    assert wanted <= seen, "%s lacks fixtures for %s" % (path, wanted - seen)


def test_missing_object():
    assert assess(None) == (Health.MISSING, "not found")


def test_rule_chosen_by_group_not_just_kind():
    # a CRD may reuse a built-in kind name; it gets the generic rules, not Deployment's
    obj = {"apiVersion": "example.com/v1", "kind": "Deployment", "metadata": {"name": "x", "generation": 1},
           "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert assess(obj)[0] == Health.HEALTHY


def test_worst_follows_the_documented_order():
    order = ["Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown"]
    for i, status in enumerate(order):
        assert worst(order[: i + 1]) == status
        assert worst(list(reversed(order[: i + 1]))) == status
    assert worst([]) == Health.HEALTHY
