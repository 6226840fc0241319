"""Pure pieces of the health wait: refs, ignore, label selectors (the watching itself is tested on the cluster)."""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.health.drilldown import label_selector
from ansible_collections.gitops.k8s.plugins.module_utils.health.watch import clean_ref, is_ignored

JOB = {"apiVersion": "batch/v1", "kind": "Job", "namespace": "shop", "name": "migrate"}


def test_clean_ref_keeps_the_four_fields_and_names_what_is_missing():
    assert clean_ref(dict(JOB, digest="abc", resourceVersion="7")) == JOB
    assert clean_ref({"apiVersion": "v1", "kind": "Namespace", "name": "shop"})["namespace"] == ""
    with pytest.raises(GitOpsError) as err:
        clean_ref({"kind": "Job", "name": "x"})
    assert "lacks apiVersion" in str(err.value)


@pytest.mark.parametrize("ignore,expected", [
    (["Job"], True),
    (["Deployment"], False),
    ([{"kind": "Job", "name": "migrate"}], True),
    ([{"kind": "Job", "name": "other"}], False),
    ([{"namespace": "shop"}], True),
    ([], False),
    (None, False),
])
def test_ignore_by_kind_or_partial_ref(ignore, expected):
    assert is_ignored(JOB, ignore) is expected


def test_label_selector_syntax():
    selector = {"matchLabels": {"app": "web", "tier": "front"},
                "matchExpressions": [{"key": "track", "operator": "In", "values": ["stable", "canary"]},
                                     {"key": "env", "operator": "NotIn", "values": ["dev"]},
                                     {"key": "owner", "operator": "Exists"},
                                     {"key": "legacy", "operator": "DoesNotExist"}]}
    assert label_selector(selector) == "app=web,tier=front,track in (stable,canary),env notin (dev),owner,!legacy"


def test_closing_a_stream_whose_connection_is_gone_is_quiet():
    # a wait ending while its watch stream has just finished: urllib3 refuses to shut a connection
    # that is no longer the response's; closing must not fail the wait (it failed a sync once)
    from urllib3.response import HTTPResponse

    from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import Cluster

    finished = HTTPResponse(body=b"", preload_content=False)
    with pytest.raises(ValueError):
        finished.shutdown()
    Cluster.close_stream(finished)


def test_the_summary_gives_the_elapsed_time_the_result_gives():
    # rounded twice, 0.2500004 s read "healthy after 0.3s" beside "elapsed": 0.25 (0.2 s at one decimal)
    from ansible_collections.gitops.k8s.plugins.module_utils.health import Health
    from ansible_collections.gitops.k8s.plugins.module_utils.health.watch import _result, _Wait

    state = _Wait(None, {"k": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "n", "name": "c"}}, None, None)
    state.verdicts["k"] = (Health.HEALTHY, "exists")
    state.elapsed = lambda: 0.2500004
    result = _result(state, "healthy")
    assert result["summary"] == "1 of 1 objects healthy after %.1fs" % result["elapsed"], result


def test_a_wait_for_no_object_ends_at_once():
    # a wave holding only Sync hooks waits for no object: it waited its whole timeout, then said
    # healthy (Argo CD's sync-waves example took twice the timeout)
    import time

    from ansible_collections.gitops.k8s.plugins.module_utils.health.watch import wait_healthy

    started = time.monotonic()
    result = wait_healthy(None, [], timeout=5)
    assert time.monotonic() - started < 1, "waited %.1fs for nothing" % (time.monotonic() - started)
    assert result["healthy"] and result["summary"] == "0 of 0 objects healthy after %.1fs" % result["elapsed"]
    ignored = wait_healthy(None, [{"apiVersion": "batch/v1", "kind": "Job", "namespace": "n", "name": "j"}],
                           timeout=5, ignore=["Job"])
    assert ignored["healthy"] and ignored["elapsed"] < 1, ignored


def test_a_wait_that_ran_out_of_time_is_never_healthy():
    # whatever the verdicts say, a wait that ended on its deadline did not see health
    from ansible_collections.gitops.k8s.plugins.module_utils.health import Health
    from ansible_collections.gitops.k8s.plugins.module_utils.health.watch import _result, _Wait

    for refs in ({}, {"k": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "n", "name": "c"}}):
        state = _Wait(None, refs, None, True)
        state.verdicts = {key: (Health.HEALTHY, "exists") for key in refs}
        result = _result(state, "timed out")
        assert not result["healthy"] and result["status"] not in Health.SETTLED, result
        assert "timed out" in result["summary"], result


def test_resource_versions_compare_as_numbers_and_an_unknown_bound_holds():
    from ansible_collections.gitops.k8s.plugins.module_utils.health.hub import not_older

    assert not_older("1000", "999") and not_older("7", "7") and not not_older("999", "1000")
    assert not_older("5", None), "no write to be newer than"
    assert not_older("opaque-b", "opaque-a"), "versions that are not numbers cannot be told apart: taken as new"


def test_a_runs_watch_scope_follows_the_read_phase():
    # by name when the run waits for few objects of a kind (a push of one app into a namespace
    # shared with thousands must not list them), the namespace when they all live in one,
    # cluster-wide when they span several, each namespace when cluster-wide is forbidden
    from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import READ_BY_NAME, Resource
    from ansible_collections.gitops.k8s.plugins.module_utils.health.hub import WatchHub

    deployments = Resource("apps", "v1", "Deployment", "deployments", True, ())
    namespaces = Resource("", "v1", "Namespace", "namespaces", False, ())
    hub = WatchHub(None)
    hub._expect([(deployments, "shop", "web"), (namespaces, None, "shop")])
    assert hub._scope(deployments, "shop", "web") == ("shop", "web")
    assert hub._scope(namespaces, None, "shop") == (None, "shop")
    hub._expect([(deployments, "shop", "app-%d" % n) for n in range(READ_BY_NAME)])
    hub._expect([(namespaces, None, "ns-%d" % n) for n in range(READ_BY_NAME)])
    assert hub._scope(deployments, "shop", "web") == ("shop", None)
    assert hub._scope(namespaces, None, "shop") == (None, None)
    hub._expect([(deployments, "bank", "api")])
    assert hub._scope(deployments, "bank", "api") == (None, None)
    hub._no_cluster_wide.add(deployments)
    assert hub._scope(deployments, "bank", "api") == ("bank", None)


def test_written_versions_also_find_a_cluster_scoped_object_given_a_namespace():
    # bundles may give a cluster-scoped custom object the app's namespace; the wait looks it up without
    from ansible_collections.gitops.k8s.plugins.module_utils.health.watch import _versions

    versions = _versions([{"apiVersion": "example.com/v1", "kind": "Policy", "namespace": "shop", "name": "p",
                           "resourceVersion": "42"}, {"apiVersion": "v1", "kind": "ConfigMap", "name": "c"}])
    assert versions[("example.com", "Policy", "shop", "p")] == versions[("example.com", "Policy", "", "p")] == "42"
    assert len(versions) == 2, "an object without a version bounds nothing"
