"""Promotion gates: a revision goes on only after it was recorded healthy long enough on another cluster."""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.sync.promotion import parse_gate, promotion_verdict

A = "a" * 40
B = "b0c1d2e3" + "f" * 32
C = "c" * 40
HOUR_ON_STAGING = parse_gate({"cluster": "staging", "healthy_for": "1h"})


def entry(revision, time, result="Succeeded", health="Healthy", health_time=None, **more):
    """A history entry as apply and health_wait record it; the verdict comes 30 s after the sync."""
    recorded = {"revision": revision, "digest": "d-" + revision[:4], "time": time, "result": result,
                "trigger": "pull", "rollback": False, **more}
    if health:
        recorded.update(health=health, health_time=health_time if health_time is not None else time + 30)
    return recorded


def gate(history, now, revision=B, gate_spec=None):
    return promotion_verdict(gate_spec or HOUR_ON_STAGING, revision, history, now)


def test_the_gate_holds_while_the_revision_has_been_healthy_for_less_than_required():
    history = [entry(B, 1000), entry(A, 100)]
    held = gate(history, now=1030 + 12 * 60 + 30)
    assert held == {"open": False, "message": "waiting for staging: healthy for 12 of 60 minutes",
                    "healthy_for": 750, "required": 3600, "opens_at": 1030 + 3600}


def test_the_gate_opens_once_the_revision_was_healthy_long_enough():
    opened = gate([entry(B, 1000), entry(A, 100)], now=1030 + 3600)
    assert opened == {"open": True, "message": "b0c1d2e was healthy on staging for 1h (1h required)",
                      "healthy_for": 3600, "required": 3600, "opens_at": None}


@pytest.mark.parametrize("history, why", [
    (None, "b0c1d2e is not deployed there yet"),
    ([], "b0c1d2e is not deployed there yet"),
    ([entry(A, 100)], "b0c1d2e is not deployed there yet"),
    ([entry(B, 1000, health=None), entry(A, 100)], "b0c1d2e is synced there, its health not recorded yet"),
    ([entry(B, 1000, health="Degraded"), entry(A, 100)], "b0c1d2e is Degraded there"),
    ([entry(B, 1000, health="Progressing")], "b0c1d2e is Progressing there"),
    ([entry(B, 1000, result="Failed", health=None), entry(A, 100)], "the sync of b0c1d2e failed there"),
])
def test_the_gate_says_why_the_revision_has_not_started_counting(history, why):
    held = gate(history, now=100000)
    assert held == {"open": False, "message": "waiting for staging: " + why, "healthy_for": 0, "required": 3600,
                    "opens_at": None}


def test_a_revision_replaced_before_it_proved_itself_keeps_the_gate_closed():
    held = gate([entry(C, 1930), entry(B, 1000), entry(A, 100)], now=100000)
    assert held == {"open": False, "healthy_for": 900, "required": 3600, "opens_at": None,
                    "message": "waiting for staging: b0c1d2e was replaced there after being healthy for 15 of 60 minutes"}


def test_a_revision_replaced_after_it_proved_itself_opens_the_gate():
    opened = gate([entry(C, 1030 + 7200), entry(B, 1000)], now=100000)
    assert opened["open"] and opened["healthy_for"] == 7200
    assert opened["message"] == "b0c1d2e was healthy on staging for 2h (1h required)"


def test_re_syncs_of_the_revision_do_not_restart_the_clock():
    history = [entry(B, 3000, health=None), entry(B, 2000), entry(B, 1000), entry(A, 100)]
    assert gate(history, now=1030 + 3600)["open"]


def test_an_unhealthy_verdict_restarts_the_clock_after_it():
    history = [entry(B, 3000), entry(B, 2000, health="Degraded"), entry(B, 1000)]
    held = gate(history, now=3030 + 600)
    assert not held["open"] and held["healthy_for"] == 600 and held["opens_at"] == 3030 + 3600


def test_the_newest_run_of_the_revision_counts():
    # B was deployed, replaced by C, and rolled back to: its clock starts at the rollback.
    history = [entry(B, 5000, rollback=True, rollback_of=C), entry(C, 4000, health="Degraded"), entry(B, 1000)]
    held = gate(history, now=5030 + 60)
    assert held["message"] == "waiting for staging: healthy for 1 of 60 minutes"


def test_suspended_counts_as_healthy_and_chart_revisions_read_whole():
    chart = "podinfo@6.5.0+0123456789ab"
    held = gate([entry(chart, 1000, health="Suspended")], now=1030 + 60, revision=chart)
    assert held["healthy_for"] == 60
    assert gate([entry(chart, 1000, health=None)], now=2000, revision=chart)["message"] == \
        "waiting for staging: podinfo@6.5.0+0123456789ab is synced there, its health not recorded yet"


def test_a_gate_without_a_time_opens_at_the_first_healthy_verdict():
    spec = parse_gate({"cluster": "staging"})
    assert spec == {"cluster": "staging", "healthy_for": 0}
    assert gate([entry(B, 1000)], now=1030, gate_spec=spec)["open"]
    assert not gate([entry(B, 1000, health=None)], now=1030, gate_spec=spec)["open"]


def test_a_requirement_short_of_whole_minutes_is_counted_in_seconds():
    spec = parse_gate({"cluster": "qa", "healthy_for": 90})
    assert gate([entry(B, 1000)], now=1030 + 45, gate_spec=spec)["message"] == "waiting for qa: healthy for 45 of 90 seconds"


@pytest.mark.parametrize("written, message", [
    ("staging", r"^promote_after: expected \{cluster: <cluster host>, healthy_for: <duration>\}, got 'staging'$"),
    ({"healthy_for": 60}, r"^promote_after: expected \{cluster"),
    ({"cluster": "", "healthy_for": 60}, r"^promote_after: expected \{cluster"),
    ({"cluster": "staging", "healthy": 60}, r"^promote_after: unknown key healthy \(known: cluster, healthy_for\)$"),
    ({"cluster": "staging", "healthy_for": "an hour"}, r"^promote_after healthy_for: 'an hour' is not a duration"),
])
def test_a_wrong_gate_is_refused(written, message):
    with pytest.raises(GitOpsError, match=message):
        parse_gate(written)
