"""Deployment windows: go, hold or refuse at a given time, until when, across time zones and DST."""

import os
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.sync.durations import describe, seconds
from ansible_collections.gitops.k8s.plugins.module_utils.sync.windows import parse_windows, window_verdict

UTC, BERLIN, NEW_YORK = ZoneInfo("UTC"), ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def at(zone, *fields, fold=0):
    """Epoch seconds of a wall-clock time; ``fold=1`` is the second pass of a repeated hour."""
    return datetime(*fields, fold=fold, tzinfo=zone).timestamp()


def rule(kind, schedule, duration, **more):
    return dict(kind=kind, schedule=schedule, duration=duration, **more)


def verdict(rules, now, app="shop", cluster="prod-1", **kwargs):
    return window_verdict(now, parse_windows(rules), app, cluster, **kwargs)


def held_until(rules, now, **kwargs):
    """The verdict word and its until, as wall-clock text in the zone of ``now``'s test."""
    result = verdict(rules, now, **kwargs)
    return result["verdict"], result["reason"].rsplit(" until ", 1)[-1] if " until " in result["reason"] else None


# --- the rules ---------------------------------------------------------------------------------

def test_without_windows_every_sync_goes():
    go = {"verdict": "go", "reason": "", "until": None, "windows": [], "override": None}
    assert verdict([], at(UTC, 2024, 6, 1, 12)) == go
    assert verdict(None, at(UTC, 2024, 6, 1, 12), trigger="push") == go


def test_a_deny_window_holds_from_its_start_until_its_end():
    deny = [rule("deny", "0 22 * * *", "2h")]
    assert verdict(deny, at(UTC, 2024, 6, 1, 21, 59, 59))["verdict"] == "go"
    held = verdict(deny, at(UTC, 2024, 6, 1, 22))
    assert held == {"verdict": "hold", "until": at(UTC, 2024, 6, 2, 0), "windows": ["gitops_windows[0]"],
                    "override": None,
                    "reason": 'inside deny window gitops_windows[0] ("0 22 * * *" for 2h, UTC) until 2024-06-02 00:00 UTC'}
    assert verdict(deny, at(UTC, 2024, 6, 1, 23, 59, 59))["until"] == at(UTC, 2024, 6, 2, 0)
    assert verdict(deny, at(UTC, 2024, 6, 2, 0))["verdict"] == "go"


def test_outside_every_allow_window_a_sync_is_held_until_the_next_one_opens():
    weekdays = [rule("allow", "0 2 * * 1-5", "1h"), rule("allow", "0 14 * * mon", "30m")]
    saturday = at(UTC, 2024, 6, 1, 12)
    held = verdict(weekdays, saturday)
    assert held["verdict"] == "hold" and held["until"] == at(UTC, 2024, 6, 3, 2)
    assert held["reason"] == ('outside allow windows gitops_windows[0] ("0 2 * * 1-5" for 1h, UTC), '
                              'gitops_windows[1] ("0 14 * * mon" for 30m, UTC) until 2024-06-03 02:00 UTC')
    assert verdict(weekdays, at(UTC, 2024, 6, 3, 2, 30))["verdict"] == "go"
    assert verdict(weekdays, at(UTC, 2024, 6, 3, 3))["until"] == at(UTC, 2024, 6, 3, 14)
    assert verdict(weekdays, at(UTC, 2024, 6, 3, 14, 29))["verdict"] == "go"


def test_deny_wins_over_an_open_allow_window():
    rules = [rule("allow", "0 0 * * *", "6h"), rule("deny", "0 1 * * *", "1h")]
    held = verdict(rules, at(UTC, 2024, 6, 1, 1, 30))
    assert held["verdict"] == "hold" and held["windows"] == ["gitops_windows[1]"]
    assert held["until"] == at(UTC, 2024, 6, 1, 2)  # the allow window is still open then
    assert verdict(rules, at(UTC, 2024, 6, 1, 2))["verdict"] == "go"


def test_a_hold_ends_when_no_deny_is_open_and_an_allow_window_is():
    # The deny outlasts the allow window: the next chance is the allow window of the next day.
    rules = [rule("allow", "0 0 * * *", "2h"), rule("deny", "0 1 * * *", "3h")]
    assert verdict(rules, at(UTC, 2024, 6, 1, 1, 30))["until"] == at(UTC, 2024, 6, 2, 0)
    # Back-to-back denies: the hold lasts until the second one ends.
    rules = [rule("deny", "0 22 * * *", "2h"), rule("deny", "0 0 * * *", "2h")]
    assert verdict(rules, at(UTC, 2024, 6, 1, 23))["until"] == at(UTC, 2024, 6, 2, 2)


@pytest.mark.parametrize("schedule, duration", [("0 * * * *", "90m"), ("0 0 * * *", "1d")])
def test_a_deny_window_that_never_closes_holds_without_an_end(schedule, duration):
    # each one opens before (or as) the last one closes
    held = verdict([rule("deny", schedule, duration)], at(UTC, 2024, 6, 1, 12))
    assert held["verdict"] == "hold" and held["until"] is None
    assert held["reason"].endswith("; no opening within the next 366 days")


def test_globs_choose_the_apps_and_the_clusters_a_window_holds():
    freeze = [rule("deny", "0 0 * * *", "1d", apps=["shop-*", "billing"], clusters="prod-*")]
    now = at(UTC, 2024, 6, 1, 12)
    assert verdict(freeze, now, app="shop-web", cluster="prod-eu")["verdict"] == "hold"
    assert verdict(freeze, now, app="billing", cluster="prod-us")["verdict"] == "hold"
    assert verdict(freeze, now, app="shop-web", cluster="staging")["verdict"] == "go"
    assert verdict(freeze, now, app="search", cluster="prod-eu")["verdict"] == "go"
    assert verdict(freeze, now, app="Shop-web", cluster="prod-eu")["verdict"] == "go"  # names are case-sensitive
    # An allow window of another app does not hold this one.
    assert verdict([rule("allow", "0 2 * * *", "1h", apps=["billing"])], now, app="shop")["verdict"] == "go"


# --- pushes: manual windows and overrides -------------------------------------------------------

def test_a_push_in_a_deny_window_is_refused_and_says_how_to_override():
    refused = verdict([rule("deny", "0 8 * * *", "12h")], at(UTC, 2024, 6, 1, 12), trigger="push")
    assert refused["verdict"] == "refuse" and refused["until"] == at(UTC, 2024, 6, 1, 20)
    assert refused["reason"] == ('inside deny window gitops_windows[0] ("0 8 * * *" for 12h, UTC) until 2024-06-01 '
                                 '20:00 UTC; push anyway with -e gitops_override_window="<reason>"')


def test_an_override_lets_a_refused_push_go_and_only_a_push():
    rules, now = [rule("deny", "0 0 * * *", "1d")], at(UTC, 2024, 6, 1, 12)
    pushed = verdict(rules, now, trigger="push", override="INC-42 hotfix")
    assert pushed["verdict"] == "go" and pushed["override"] == "INC-42 hotfix"
    assert pushed["windows"] == ["gitops_windows[0]"] and pushed["reason"].endswith("; overridden: INC-42 hotfix")
    pulled = verdict(rules, now, trigger="pull", override="INC-42 hotfix")
    assert pulled["verdict"] == "hold" and pulled["override"] is None


def test_manual_windows_let_pushes_through_but_not_reconciles():
    now = at(UTC, 2024, 6, 1, 12)
    deny = [rule("deny", "0 0 * * *", "1d", manual=True)]
    assert verdict(deny, now)["verdict"] == "hold"
    pushed = verdict(deny, now, trigger="push")
    assert pushed["verdict"] == "go" and pushed["reason"].endswith("; manual: true lets pushes through")
    # Every open deny window must let pushes through.
    both = deny + [rule("deny", "0 10 * * *", "4h")]
    assert verdict(both, now, trigger="push")["verdict"] == "refuse"
    # Outside allow windows: a push goes only when every allow window is manual.
    allows = [rule("allow", "0 2 * * *", "1h", manual=True)]
    assert verdict(allows, now, trigger="push")["verdict"] == "go"
    assert verdict(allows, now)["verdict"] == "hold"
    assert verdict(allows + [rule("allow", "0 3 * * *", "1h")], now, trigger="push")["verdict"] == "refuse"


def test_a_push_is_refused_until_the_windows_let_pushes_through():
    rules = [rule("deny", "0 0 * * *", "2h"), rule("deny", "0 0 * * *", "4h", manual=True)]
    now = at(UTC, 2024, 6, 1, 1)
    assert verdict(rules, now, trigger="push")["until"] == at(UTC, 2024, 6, 1, 2)
    assert verdict(rules, now)["until"] == at(UTC, 2024, 6, 1, 4)


# --- time zones and DST -------------------------------------------------------------------------

def test_the_schedule_is_read_in_the_window_timezone():
    rules = [rule("deny", "0 9 * * *", "8h", timezone="America/New_York")]
    assert verdict(rules, at(UTC, 2024, 6, 1, 12))["verdict"] == "go"  # 08:00 in New York (EDT)
    assert held_until(rules, at(UTC, 2024, 6, 1, 13)) == ("hold", "2024-06-01 17:00 EDT")
    assert held_until(rules, at(UTC, 2024, 1, 15, 14)) == ("hold", "2024-01-15 17:00 EST")


def test_berlin_spring_forward_a_window_ends_when_the_clock_reads_its_end():
    # 2024-03-31: 02:00 CET becomes 03:00 CEST. 01:00 for 2h is 01:00-03:00 on the wall: one real hour.
    rules = [rule("deny", "0 1 * * *", "2h", timezone="Europe/Berlin")]
    assert held_until(rules, at(BERLIN, 2024, 3, 31, 1, 30)) == ("hold", "2024-03-31 03:00 CEST")
    assert verdict(rules, at(BERLIN, 2024, 3, 31, 3))["verdict"] == "go"


def test_berlin_spring_forward_a_start_in_the_skipped_hour_happens_right_after_it():
    rules = [rule("deny", "30 2 * * *", "1h", timezone="Europe/Berlin")]
    assert verdict(rules, at(BERLIN, 2024, 3, 31, 1, 59))["verdict"] == "go"
    assert held_until(rules, at(BERLIN, 2024, 3, 31, 3)) == ("hold", "2024-03-31 04:00 CEST")
    assert verdict(rules, at(BERLIN, 2024, 3, 31, 4))["verdict"] == "go"
    assert held_until(rules, at(BERLIN, 2024, 4, 1, 2, 30)) == ("hold", "2024-04-01 03:30 CEST")


def test_berlin_weekend_freeze_ends_monday_morning_local_time_across_both_changes():
    freeze = [rule("deny", "0 18 * * fri", "2d12h", timezone="Europe/Berlin")]
    spring = verdict(freeze, at(BERLIN, 2024, 3, 30, 12))
    assert spring["reason"].endswith("until 2024-04-01 06:00 CEST")
    assert spring["until"] - at(BERLIN, 2024, 3, 29, 18) == 59 * 3600
    autumn = verdict(freeze, at(BERLIN, 2024, 10, 26, 12))
    assert autumn["reason"].endswith("until 2024-10-28 06:00 CET")
    assert autumn["until"] - at(BERLIN, 2024, 10, 25, 18) == 61 * 3600
    assert verdict(freeze, at(BERLIN, 2024, 10, 28, 5, 59))["verdict"] == "hold"
    assert verdict(freeze, at(BERLIN, 2024, 10, 28, 6))["verdict"] == "go"


def test_berlin_fall_back_a_window_over_the_repeated_hour_ends_when_the_clock_reads_its_end():
    # 2024-10-27: 03:00 CEST becomes 02:00 CET. 01:00 for 2h closes at 03:00 CET: three real hours.
    rules = [rule("deny", "0 1 * * *", "2h", timezone="Europe/Berlin")]
    assert held_until(rules, at(BERLIN, 2024, 10, 27, 2, 30, fold=0)) == ("hold", "2024-10-27 03:00 CET")
    assert held_until(rules, at(BERLIN, 2024, 10, 27, 2, 30, fold=1)) == ("hold", "2024-10-27 03:00 CET")
    assert verdict(rules, at(BERLIN, 2024, 10, 27, 3))["verdict"] == "go"


def test_berlin_fall_back_a_start_in_the_repeated_hour_happens_once():
    rules = [rule("deny", "30 2 * * *", "10m", timezone="Europe/Berlin")]
    assert held_until(rules, at(BERLIN, 2024, 10, 27, 2, 35, fold=0)) == ("hold", "2024-10-27 02:40 CEST")
    assert verdict(rules, at(BERLIN, 2024, 10, 27, 2, 35, fold=1))["verdict"] == "go"
    # Seen from the second pass, before 02:30 comes round again: the window of the first pass is over.
    assert verdict(rules, at(BERLIN, 2024, 10, 27, 2, 15, fold=1))["verdict"] == "go"
    # A start in the first pass covers the second pass when the window reaches past it.
    longer = [rule("deny", "30 2 * * *", "1h", timezone="Europe/Berlin")]
    assert held_until(longer, at(BERLIN, 2024, 10, 27, 2, 15, fold=1)) == ("hold", "2024-10-27 03:30 CET")


def test_berlin_fall_back_an_hourly_window_opens_in_both_passes():
    rules = [rule("deny", "0 * * * *", "10m", timezone="Europe/Berlin")]
    assert held_until(rules, at(BERLIN, 2024, 10, 27, 2, 5, fold=0)) == ("hold", "2024-10-27 02:10 CEST")
    assert held_until(rules, at(BERLIN, 2024, 10, 27, 2, 5, fold=1)) == ("hold", "2024-10-27 02:10 CET")


def test_new_york_spring_forward():
    # 2024-03-10: 02:00 EST becomes 03:00 EDT.
    allow = [rule("allow", "0 1 * * *", "2h", timezone="America/New_York")]
    assert verdict(allow, at(NEW_YORK, 2024, 3, 10, 1, 30))["verdict"] == "go"
    assert held_until(allow, at(NEW_YORK, 2024, 3, 10, 3)) == ("hold", "2024-03-11 01:00 EDT")
    deny = [rule("deny", "30 2 * * sun", "1h", timezone="America/New_York")]
    assert held_until(deny, at(NEW_YORK, 2024, 3, 10, 3, 30)) == ("hold", "2024-03-10 04:00 EDT")


def test_new_york_fall_back():
    # 2024-11-03: 02:00 EDT becomes 01:00 EST; 01:00-01:59 comes twice.
    deny = [rule("deny", "0 0 * * *", "90m", timezone="America/New_York")]
    assert held_until(deny, at(NEW_YORK, 2024, 11, 3, 1, 15, fold=0)) == ("hold", "2024-11-03 01:30 EDT")
    assert verdict(deny, at(NEW_YORK, 2024, 11, 3, 1, 45, fold=0))["verdict"] == "go"
    assert verdict(deny, at(NEW_YORK, 2024, 11, 3, 1, 15, fold=1))["verdict"] == "go"  # closed at the first 01:30
    allow = [rule("allow", "30 1 * * *", "30m", timezone="America/New_York")]
    assert verdict(allow, at(NEW_YORK, 2024, 11, 3, 1, 45, fold=0))["verdict"] == "go"
    assert verdict(allow, at(NEW_YORK, 2024, 11, 3, 1, 45, fold=1))["verdict"] == "go"  # the clock is before 02:00
    assert held_until(allow, at(NEW_YORK, 2024, 11, 3, 2)) == ("hold", "2024-11-04 01:30 EST")


# --- rules as written -----------------------------------------------------------------------------

def test_cron_descriptors_and_names_work():
    daily = [rule("deny", "@daily", "1h")]
    assert held_until(daily, at(UTC, 2024, 6, 1, 0, 30)) == ("hold", "2024-06-01 01:00 UTC")
    assert parse_windows([rule("deny", "  0  22 * *   FRI ", "1h")])[0].schedule == "0 22 * * FRI"


@pytest.mark.parametrize("rules, message", [
    ({"kind": "deny"}, r"^gitops_windows: expected a list of window rules, got dict$"),
    (["deny"], r"^gitops_windows\[0\]: expected a mapping, got 'deny'$"),
    ([rule("deny", "0 1 * * *", "1h", cluster=["prod"])],
     r"^gitops_windows\[0\]: unknown key cluster \(known: kind, schedule, duration, timezone, apps, clusters, manual\)$"),
    ([{"kind": "deny", "schedule": "0 1 * * *"}], r"^gitops_windows\[0\]: duration required$"),
    ([rule("block", "0 1 * * *", "1h")], r"^gitops_windows\[0\]: kind must be allow or deny, not 'block'$"),
    ([rule("deny", "61 * * * *", "1h")], r'^gitops_windows\[0\]: schedule "61 \* \* \* \*": Bad minute$'),
    ([rule("deny", "0 0 1 * * *", "1h")], r"schedule \"0 0 1 \* \* \*\": expected five fields"),
    ([rule("deny", "0 0 31 2 *", "1h")], r"Bad day-of-month"),
    ([rule("deny", "0 1 * * *", "1x")],
     r'^gitops_windows\[0\]\.duration: \'1x\' is not a positive duration \(like 300, "90s", "30m", "2h30m", "1d"\)$'),
    ([rule("deny", "0 1 * * *", 0)], r"is not a positive duration"),
    ([rule("deny", "0 1 * * *", True)], r"is not a positive duration"),
    ([rule("deny", "0 1 * * *", "1h", timezone="Europe/Berln")], r"unknown timezone 'Europe/Berln'"),
    ([rule("deny", "0 1 * * *", "1h", timezone="../etc/passwd")], r"unknown timezone"),
    ([rule("deny", "0 1 * * *", "1h", manual="yes")], r"manual must be true or false, not 'yes'"),
    ([rule("deny", "0 1 * * *", "1h", apps=[])], r"apps must be a non-empty list of globs"),
    ([rule("deny", "0 1 * * *", "1h", clusters=[3])], r"clusters must be a non-empty list of globs"),
])
def test_a_wrong_rule_is_refused_with_its_place(rules, message):
    with pytest.raises(GitOpsError, match=message):
        parse_windows(rules)


def test_errors_and_verdicts_say_which_list_the_rule_is_in():
    with pytest.raises(GitOpsError, match=r"^host prod-1 gitops_windows\[1\]: kind"):
        parse_windows([rule("deny", "0 1 * * *", "1h"), rule("x", "0 1 * * *", "1h")], where="host prod-1 gitops_windows")
    windows = parse_windows([rule("deny", "0 0 * * *", "1d")], where="app shop windows")
    assert window_verdict(at(UTC, 2024, 6, 1, 12), windows, "shop", "prod-1")["windows"] == ["app shop windows[0]"]


WITHOUT_CRONSIM = r'''
import sys


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "cronsim":
            raise ImportError("No module named %r" % name)


sys.meta_path.insert(0, Blocker())
from ansible_collections.gitops.k8s.plugins.module_utils.sync.windows import parse_windows

parse_windows([{"kind": "deny", "schedule": "0 1 * * *", "duration": "1h"}])
'''


def test_without_cronsim_the_module_imports_and_windows_say_what_to_install():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", WITHOUT_CRONSIM], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "MissingLibrary: gitops_windows requires the cronsim Python library: pip install cronsim")


@pytest.mark.parametrize("written, expected", [
    (300, 300), (1.5, 1.5), ("300", 300), ("90s", 90), ("30m", 1800), ("2h30m", 9000), ("1d", 86400),
    ("1h1h", 7200), (" 1H ", 3600), ("0.5h", 1800), (0, 0),
])
def test_durations_read_as_seconds(written, expected):
    assert seconds(written, "bake") == expected


@pytest.mark.parametrize("written", ["", "h", "1 h", "-5", -5, "1w", "inf", "nan", None, [1]])
def test_what_is_no_duration_is_refused(written):
    with pytest.raises(GitOpsError, match=r"^bake: .* is not a duration"):
        seconds(written, "bake")


def test_durations_are_described_shortest():
    assert [describe(s) for s in (0, 59, 90, 3600, 9000, 86400 + 60)] == ["0s", "59s", "1m30s", "1h", "2h30m", "1d1m"]
