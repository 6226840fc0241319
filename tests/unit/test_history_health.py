"""Health verdicts in the history, and the choice of the revision a rollback goes to."""

from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import (current_entry, history_entry, mark_health,
                                                                                 new_record, push_history, rollback_target)


def synced(record, revision, result="Succeeded", health=None, rollback_of=None, when=None):
    """Record one sync as apply does: the record's revision/digest move only when it succeeds."""
    entry = history_entry(revision, "digest-" + revision, result, "push", rollback_of=rollback_of,
                          when=when if when is not None else float(len(record["history"]) + 1))
    if result == "Succeeded":
        record.update(revision=revision, digest=entry["digest"], result=result)
    push_history(record, entry, 10)
    if health:
        assert mark_health(record, health, current_entry(record)) is not None
    return entry


def test_the_current_entry_is_the_newest_successful_sync_of_what_runs():
    record = new_record("shop")
    assert current_entry(record) is None
    synced(record, "A")
    assert current_entry(record)["revision"] == "A"
    synced(record, "B", result="Failed")  # the cluster still runs A: no verdict can be about B
    assert current_entry(record) is None


def test_the_verdict_goes_on_the_entry_waited_for():
    record = new_record("shop")
    synced(record, "A")
    waited_for = dict(current_entry(record))
    marked = mark_health(record, "Degraded", waited_for, when=123.5)
    assert marked["revision"] == "A" and (marked["health"], marked["health_time"]) == ("Degraded", 123.5)
    assert record["history"][0]["health"] == "Degraded"
    # a later wait on the same sync replaces the verdict (the rollout finished after a timeout)
    mark_health(record, "Healthy", waited_for, when=200.0)
    assert record["history"][0]["health"] == "Healthy"


def test_a_verdict_about_a_replaced_sync_is_not_written():
    record = new_record("shop")
    synced(record, "A")
    waited_for = dict(current_entry(record))
    synced(record, "B")  # another run applied B while we waited on A's objects
    assert mark_health(record, "Healthy", waited_for) is None
    assert "health" not in record["history"][0] and "health" not in record["history"][1]
    # re-applying the same revision is a new sync too (its own time)
    waited_for = dict(current_entry(record))
    synced(record, "B", when=99.0)
    assert mark_health(record, "Healthy", waited_for) is None
    assert mark_health(record, "Healthy", None) is None


def test_rollback_goes_to_the_last_healthy_revision_not_the_last_applied():
    record = new_record("shop")
    synced(record, "A", health="Healthy")
    synced(record, "B", health="Degraded")  # applied fine, never became healthy
    synced(record, "C", result="Failed")  # rejected by the API server
    assert rollback_target(record["history"], "C")["revision"] == "A"


def test_rollback_skips_the_revision_that_just_failed_even_if_it_was_healthy_once():
    record = new_record("shop")
    synced(record, "A", health="Healthy")
    synced(record, "B", health="Healthy")
    synced(record, "B", health="Degraded", when=10.0)  # the same commit, pushed again, now fails
    assert rollback_target(record["history"], "B")["revision"] == "A"


def test_a_healthy_rollback_is_itself_a_target():
    record = new_record("shop")
    synced(record, "A", health="Healthy", when=1.0)
    synced(record, "B", health="Degraded", when=2.0)
    synced(record, "A", health="Healthy", rollback_of="B", when=3.0)
    target = rollback_target(record["history"], "C")
    assert (target["revision"], target["time"], target["rollback_of"]) == ("A", 3.0, "B")


def test_no_healthy_revision_means_no_rollback():
    record = new_record("shop")
    assert rollback_target(record["history"], "A") is None
    assert rollback_target(None, "A") is None
    synced(record, "A")  # nobody waited: no verdict (and records written before verdicts existed)
    synced(record, "B", health="Progressing")  # the wait timed out
    synced(record, "C", health="Degraded")
    synced(record, "C", health="Unknown", when=10.0)
    assert rollback_target(record["history"], "D") is None
    synced(record, "D", health="Healthy")
    assert rollback_target(record["history"], "D") is None, "the failed revision itself is never the target"


def test_suspended_counts_as_healthy_as_in_health_wait():
    record = new_record("shop")
    synced(record, "A", health="Suspended")  # e.g. an app whose CronJob is suspended
    synced(record, "B", health="Degraded")
    assert rollback_target(record["history"], "B")["revision"] == "A"
