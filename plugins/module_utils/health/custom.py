# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""User-described health: JMESPath expressions per group/kind (``custom_health``).

A rule is ``{kind, group?, degraded?, suspended?, healthy?, progressing?, message?}``; each
status key holds an expression evaluated over the whole object, and the first one whose result
is truthy (in JMESPath terms: not null, false, empty) decides, in the order degraded,
suspended, healthy, progressing. When none matches the object is Progressing, or Unknown when
the rule has a ``progressing`` expression of its own (the user said what progressing looks
like, so anything else is unexpected). ``message`` is an expression for the message.
"""

from __future__ import annotations

from ..deps import import_library
from ..errors import GitOpsError
from .status import Health

STATUS_KEYS = (
    ("degraded", Health.DEGRADED),
    ("suspended", Health.SUSPENDED),
    ("healthy", Health.HEALTHY),
    ("progressing", Health.PROGRESSING),
)
STATUS_EXPRESSIONS = tuple(key for key, status in STATUS_KEYS)
RULE_KEYS = {"kind", "group", "message"} | set(STATUS_EXPRESSIONS)


def _jmespath():
    return import_library("jmespath", "jmespath", "custom_health")


class CustomHealth:
    """Compiled ``custom_health`` rules; ``rule_for(group, kind)`` finds the one that applies."""

    def __init__(self, rules):
        jmespath = _jmespath()
        self._rules = {}
        for number, rule in enumerate(rules or [], 1):
            where = "custom_health rule %d" % number
            if not isinstance(rule, dict) or not rule.get("kind"):
                raise GitOpsError("%s needs a kind" % where, rule=rule)
            unknown = set(rule) - RULE_KEYS
            if unknown:
                raise GitOpsError("%s has unknown keys %s (allowed: %s)"
                                  % (where, ", ".join(sorted(unknown)), ", ".join(sorted(RULE_KEYS))), rule=rule)
            compiled = {}
            for key in STATUS_EXPRESSIONS + ("message",):
                if rule.get(key) is None:
                    continue
                try:
                    compiled[key] = (rule[key], jmespath.compile(rule[key]))
                except jmespath.exceptions.JMESPathError as err:
                    raise GitOpsError("%s (%s): %s is not a valid JMESPath expression: %s"
                                      % (where, rule["kind"], key, err), rule=rule)
            if not any(key in compiled for key in STATUS_EXPRESSIONS):
                raise GitOpsError("%s (%s) has no healthy/degraded/progressing/suspended expression"
                                  % (where, rule["kind"]), rule=rule)
            self._rules[(rule.get("group"), rule["kind"])] = compiled

    def __bool__(self):
        return bool(self._rules)

    def rule_for(self, group, kind):
        return self._rules.get((group, kind)) or self._rules.get((None, kind))

    @staticmethod
    def evaluate(rule, obj):
        """(status, message) of ``obj`` under a compiled rule."""
        jmespath = _jmespath()
        try:
            decided = None
            for key, status in STATUS_KEYS:
                if key in rule and _truthy(rule[key][1].search(obj)):
                    decided = status, "custom rule %s: %s" % (key, rule[key][0])
                    break
            if decided is None:
                if "progressing" in rule:
                    return Health.UNKNOWN, "no custom_health expression matched"
                decided = Health.PROGRESSING, "waiting for custom rule healthy: %s" % rule["healthy"][0] \
                    if "healthy" in rule else "no custom_health expression matched"
            if "message" in rule:
                text = rule["message"][1].search(obj)
                if text not in (None, ""):
                    decided = decided[0], str(text)
            return decided
        except jmespath.exceptions.JMESPathError as err:
            return Health.UNKNOWN, "custom_health expression failed: %s" % err


def _truthy(value):
    return value not in (None, False, "", [], {})
