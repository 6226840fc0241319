"""Rollout waves: which clusters each wave takes, and whether a wave passed."""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.sync.rollout import host_waves, plan_waves, wave_verdict

FOUR = ["prod-eu-1", "prod-eu-2", "prod-us-1", "prod-us-2"]
GROUPS = {"all": FOUR, "canary": ["prod-us-1"], "eu": ["prod-eu-1", "prod-eu-2"]}


def hosts_of(plan):
    return [wave["hosts"] for wave in plan]


def test_canary_then_half_then_the_rest():
    plan = plan_waves([{"hosts": "canary", "bake": 300}, {"hosts": "50%", "bake": "2m"}, {"hosts": "100%"}],
                      FOUR, GROUPS)
    assert plan == [
        {"number": 1, "name": "wave 1 (canary)", "hosts": ["prod-us-1"], "bake": 300, "max_failures": 0},
        {"number": 2, "name": "wave 2 (50%)", "hosts": ["prod-eu-1"], "bake": 120, "max_failures": 0},
        {"number": 3, "name": "wave 3 (100%)", "hosts": ["prod-eu-2", "prod-us-2"], "bake": 0, "max_failures": 0},
    ]
    assert host_waves(plan) == {"prod-us-1": 1, "prod-eu-1": 2, "prod-eu-2": 3, "prod-us-2": 3}


def test_percentages_are_cumulative_rounded_down_in_the_run_order():
    hosts = ["c%02d" % n for n in range(10)]
    plan = plan_waves([{"hosts": p} for p in ("10%", "25%", "50%", "100%")], hosts)
    # 10% -> 1 cluster; 25% -> 2 (2.5 rounded down), 1 more; 50% -> 5, 3 more; 100% -> the other 5.
    assert hosts_of(plan) == [["c00"], ["c01"], ["c02", "c03", "c04"], ["c05", "c06", "c07", "c08", "c09"]]


def test_a_canary_counts_towards_the_percentage_after_it():
    hosts = ["c%d" % n for n in range(8)]
    plan = plan_waves([{"hosts": "c7"}, {"hosts": "25%"}, {"hosts": "100%"}], hosts)
    assert [len(wave_hosts) for wave_hosts in hosts_of(plan)] == [1, 1, 6]


def test_a_percentage_takes_at_least_one_cluster_and_a_reached_one_nothing():
    plan = plan_waves([{"hosts": "10%"}, {"hosts": "20%", "bake": 600}, {"hosts": "100%"}], ["a", "b", "c"])
    assert hosts_of(plan) == [["a"], [], ["b", "c"]]
    assert wave_verdict(plan[1], {}) == {"passed": True, "failed": [],
                                         "message": "wave 2 (20%) passed: the waves before took its clusters"}


@pytest.mark.parametrize("percent, count, expected", [("29%", 100, 29), ("12.5%", 8, 1), ("33%", 3, 1),
                                                      ("66.7%", 3, 2), ("100 %", 7, 7)])
def test_percentages_count_exactly(percent, count, expected):
    hosts = ["h%d" % n for n in range(count)]
    assert len(plan_waves([{"hosts": percent}, {"hosts": "100%"}], hosts)[0]["hosts"]) == expected


def test_a_wave_of_names_and_a_percentage_counts_the_names_towards_it():
    plan = plan_waves([{"hosts": ["canary", "50%"]}, {"hosts": "100%"}], FOUR, GROUPS)
    assert hosts_of(plan) == [["prod-eu-1", "prod-us-1"], ["prod-eu-2", "prod-us-2"]]


def test_groups_names_and_globs_in_the_run_order_each_host_in_its_first_wave():
    plan = plan_waves([{"hosts": ["prod-us-2", "eu"]}, {"hosts": "prod-*-1"}, {"hosts": "all"}], FOUR, GROUPS)
    assert hosts_of(plan) == [["prod-eu-1", "prod-eu-2", "prod-us-2"], ["prod-us-1"], []]


def test_hosts_of_the_inventory_outside_the_run_leave_their_wave_empty():
    # ansible-playbook --limit prod-eu-*: the canary group's host is not in the run
    plan = plan_waves([{"hosts": "canary"}, {"hosts": "100%"}], ["prod-eu-1", "prod-eu-2"], GROUPS)
    assert hosts_of(plan) == [[], ["prod-eu-1", "prod-eu-2"]]


def test_no_cluster_hosts_make_empty_waves():
    assert hosts_of(plan_waves([{"hosts": "25%"}, {"hosts": "100%"}], [])) == [[], []]


def test_max_unavailable_and_max_fail_percentage_round_down_over_the_wave():
    hosts = ["h%d" % n for n in range(5)]
    plan = plan_waves([{"hosts": "100%", "max_unavailable": 1}], hosts)
    assert plan[0]["max_failures"] == 1
    assert plan_waves([{"hosts": "100%", "max_unavailable": "50%"}], hosts)[0]["max_failures"] == 2
    assert plan_waves([{"hosts": "100%", "max_unavailable": "19%"}], hosts)[0]["max_failures"] == 0
    assert plan_waves([{"hosts": "100%", "max_fail_percentage": 20}], hosts)[0]["max_failures"] == 1
    assert plan_waves([{"hosts": "100%", "max_fail_percentage": "39.9"}], hosts)[0]["max_failures"] == 1
    assert plan_waves([{"hosts": "100%", "max_unavailable": "7"}], hosts)[0]["max_failures"] == 7


def test_a_wave_passes_while_no_more_clusters_failed_than_it_allows():
    wave = plan_waves([{"hosts": "100%", "max_fail_percentage": 25}], FOUR)[0]
    passed = wave_verdict(wave, {"prod-eu-1": True, "prod-eu-2": False, "prod-us-1": True, "prod-us-2": True})
    assert passed == {"passed": True, "failed": ["prod-eu-2"],
                      "message": "wave 1 (100%) passed: 1 of 4 clusters failed: prod-eu-2; at most 1 may fail"}
    failed = wave_verdict(wave, {"prod-eu-1": True, "prod-eu-2": False, "prod-us-1": True})
    assert failed == {"passed": False, "failed": ["prod-eu-2", "prod-us-2"],
                      "message": "wave 1 (100%) failed: 2 of 4 clusters failed: prod-eu-2, prod-us-2 (no outcome); "
                                 "at most 1 may fail"}


def test_by_default_no_cluster_of_a_wave_may_fail():
    canary = plan_waves([{"hosts": "canary"}, {"hosts": "100%"}], FOUR, GROUPS)[0]
    assert wave_verdict(canary, {"prod-us-1": True}) == {"passed": True, "failed": [],
                                                         "message": "wave 1 (canary) passed: 1 cluster healthy"}
    assert wave_verdict(canary, {"prod-us-1": False})["message"] == \
        "wave 1 (canary) failed: 1 of 1 cluster failed: prod-us-1; none may fail"


@pytest.mark.parametrize("waves, message", [
    ([], r"^gitops_rollout: expected a non-empty list of waves, got \[\]$"),
    ({"hosts": "100%"}, r"^gitops_rollout: expected a non-empty list of waves"),
    (["canary"], r"^gitops_rollout wave 1: expected a mapping such as \{hosts: canary, bake: 300\}, got 'canary'$"),
    ([{"hosts": "100%", "serial": 2}],
     r"^gitops_rollout wave 1: unknown key serial \(known: hosts, bake, max_unavailable, max_fail_percentage\)$"),
    ([{"bake": 30}], r"^gitops_rollout wave 1: hosts must be a group, a cluster host name or glob, a percentage"),
    ([{"hosts": 2}], r"^gitops_rollout wave 1: hosts must be .*, not 2$"),
    ([{"hosts": []}], r"^gitops_rollout wave 1: hosts must be"),
    ([{"hosts": "canary"}, {"hosts": "canry"}], r"^gitops_rollout wave 2 \(canry\): no group or cluster host matches 'canry'$"),
    ([{"hosts": "0%"}], r"^gitops_rollout wave 1 \(0%\): a percentage is more than 0 and at most 100, not 0%$"),
    ([{"hosts": "150%"}], r"at most 100, not 150%"),
    ([{"hosts": "canary"}, {"hosts": "100%", "bake": "soon"}],
     r"^gitops_rollout wave 2 \(100%\) bake: 'soon' is not a duration"),
    ([{"hosts": "100%", "max_unavailable": 1, "max_fail_percentage": 10}],
     r"^gitops_rollout wave 1 \(100%\): max_unavailable and max_fail_percentage say the same thing; give one$"),
    ([{"hosts": "100%", "max_unavailable": "some"}],
     r"^gitops_rollout wave 1 \(100%\) max_unavailable: expected a whole count or a percentage such as \"25%\", not 'some'$"),
    ([{"hosts": "100%", "max_unavailable": 1.5}], r"max_unavailable: expected a whole count"),
    ([{"hosts": "100%", "max_unavailable": -1}], r"max_unavailable: expected a whole count"),
    ([{"hosts": "100%", "max_unavailable": True}], r"max_unavailable: expected a whole count"),
    ([{"hosts": "100%", "max_unavailable": "101%"}], r"max_unavailable: expected a whole count"),
    ([{"hosts": "100%", "max_fail_percentage": 120}],
     r"max_fail_percentage: expected a percentage from 0 to 100, not 120$"),
])
def test_a_wrong_wave_is_refused_naming_it(waves, message):
    with pytest.raises(GitOpsError, match=message):
        plan_waves(waves, FOUR, GROUPS)


def test_clusters_left_out_of_every_wave_are_refused():
    with pytest.raises(GitOpsError, match=r'^gitops_rollout: prod-eu-1, prod-eu-2, prod-us-2 are in no wave; end the '
                                          r'waves with \{hosts: "100%"\} to take the rest$') as err:
        plan_waves([{"hosts": "canary"}], FOUR, GROUPS)
    assert err.value.details["hosts"] == ["prod-eu-1", "prod-eu-2", "prod-us-2"]
    many = ["h%d" % n for n in range(9)]
    with pytest.raises(GitOpsError, match=r"^fleet rollout: h1, h2, h3, h4, h5 and 3 more are in no wave"):
        plan_waves([{"hosts": "h0"}], many, where="fleet rollout")
