"""The Job controller's pure decisions: index ranges, back-off, conditions, pod templates."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controllers.api.objects import format_timestamp
from controllers.builtin.job import COMPLETION_INDEX_ENV, indexed_pod_template
from controllers.builtin.job_state import (
    BACKOFF_LIMIT_EXCEEDED,
    COMPLETION_INDEX,
    DEADLINE_EXCEEDED,
    backoff_delay,
    conditions_with,
    failure_reason,
    failures_after_last_success,
    finish_time,
    finished_time,
    format_index_ranges,
    is_complete,
    is_finished,
    parse_index_ranges,
    pending_indexes,
    pod_index,
    want_active,
)
from controllers.informers.store import freeze

T0 = 1_700_000_000.0


@pytest.mark.parametrize(("indexes", "text"), [
    ([], ""),
    ([0], "0"),
    ([0, 1, 2], "0-2"),
    ([0, 1, 2, 5], "0-2,5"),
    ([5, 2, 1, 0, 5], "0-2,5"),
    ([1, 3, 5, 6, 7, 9], "1,3,5-7,9"),
])
def test_format_index_ranges(indexes: list[int], text: str) -> None:
    assert format_index_ranges(indexes) == text
    assert parse_index_ranges(text) == sorted(set(indexes))


def test_parse_index_ranges_bounds_and_garbage() -> None:
    assert parse_index_ranges("0-2,5,9-12", completions=10) == [0, 1, 2, 5, 9]
    assert parse_index_ranges("x,1,2-y,4", None) == [1, 4]
    assert parse_index_ranges(None) == []


@given(st.sets(st.integers(0, 200)))
def test_index_ranges_round_trip(indexes: set[int]) -> None:
    assert parse_index_ranges(format_index_ranges(indexes)) == sorted(indexes)


def test_pod_index() -> None:
    assert pod_index({"metadata": {"annotations": {COMPLETION_INDEX: "3"}}}) == 3
    assert pod_index({"metadata": {"labels": {COMPLETION_INDEX: "4"}}}) == 4
    assert pod_index({"metadata": {"annotations": {COMPLETION_INDEX: "-1"}}}) is None
    assert pod_index({"metadata": {}}) is None


def test_pending_indexes_and_want_active() -> None:
    assert pending_indexes(5, [0, 2], [1]) == [3, 4]
    assert pending_indexes(3, [0, 1, 2], []) == []
    assert want_active(parallelism=3, completions=5, succeeded=0, active=0) == 3
    assert want_active(parallelism=3, completions=5, succeeded=4, active=3) == 1
    assert want_active(parallelism=3, completions=5, succeeded=5, active=0) == 0
    assert want_active(parallelism=2, completions=None, succeeded=0, active=1) == 2
    # A work queue after its first success: keep what runs, start nothing new.
    assert want_active(parallelism=2, completions=None, succeeded=1, active=1) == 1
    assert want_active(parallelism=2, completions=None, succeeded=1, active=0) == 0
    assert want_active(parallelism=1, completions=None, succeeded=1, active=3) == 1


@pytest.mark.parametrize(("failures", "since", "expected"), [
    (0, None, 0.0),
    (1, 0.0, 10.0),
    (2, 0.0, 20.0),
    (3, 0.0, 40.0),
    (6, 0.0, 320.0),
    (7, 0.0, 360.0),
    (50, 0.0, 360.0),
    (1, 4.0, 6.0),
    (1, 15.0, 0.0),
])
def test_backoff_delay(failures: int, since: float | None, expected: float) -> None:
    last = None if since is None else T0 - since
    assert backoff_delay(failures, last, T0) == pytest.approx(expected)


def test_failures_after_last_success() -> None:
    assert failures_after_last_success([], [1.0, 3.0]) == (2, 3.0)
    assert failures_after_last_success([2.0], [1.0, 3.0, 4.0]) == (2, 4.0)
    assert failures_after_last_success([5.0], [1.0, 3.0]) == (0, None)


def pod_with(status: dict[str, Any], meta: dict[str, Any] | None = None) -> Any:
    return freeze({"metadata": meta or {}, "status": status})


def test_finished_time_sources() -> None:
    t1, t2 = format_timestamp(T0), format_timestamp(T0 + 7)
    containers = {"containerStatuses": [
        {"state": {"terminated": {"finishedAt": t1}}},
        {"state": {"terminated": {"finishedAt": t2}}}]}
    assert finished_time(pod_with(containers)) == T0 + 7
    ready = {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": t1}]}
    assert finished_time(pod_with(ready)) == T0
    assert finished_time(pod_with({}, {"deletionTimestamp": t2})) == T0 + 7
    assert finished_time(pod_with({"phase": "Failed"})) is None


def test_conditions_with_transitions() -> None:
    conds = conditions_with([], "Suspended", "True", "JobSuspended", "Job suspended", T0)
    assert conds == [{"type": "Suspended", "status": "True", "reason": "JobSuspended",
                      "message": "Job suspended", "lastProbeTime": format_timestamp(T0),
                      "lastTransitionTime": format_timestamp(T0)}]
    same = conditions_with(freeze(conds), "Suspended", "True", "JobSuspended",
                           "Job suspended", T0 + 5)
    assert same == conds
    resumed = conditions_with(conds, "Suspended", "False", "JobResumed", "Job resumed", T0 + 9)
    assert resumed[0]["lastTransitionTime"] == format_timestamp(T0 + 9)
    assert (resumed[0]["status"], resumed[0]["reason"]) == ("False", "JobResumed")
    both = conditions_with(resumed, "Complete", "True", "CompletionsReached", "m", T0 + 10)
    assert [c["type"] for c in both] == ["Suspended", "Complete"]
    assert is_finished({"status": {"conditions": both}})
    assert not is_finished({"status": {"conditions": resumed}})


def test_finish_time() -> None:
    assert finish_time({"status": {"completionTime": format_timestamp(T0)}}) == T0
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True",
                                         "lastTransitionTime": format_timestamp(T0 + 3)}]}}
    assert finish_time(failed) == T0 + 3
    assert finish_time({"status": {}}) is None


def test_indexed_pod_template() -> None:
    template = freeze({"metadata": {"labels": {"app": "x"}},
                       "spec": {"containers": [{"name": "a", "image": "i",
                                                "env": [{"name": "K", "value": "v"}]}],
                                "initContainers": [{"name": "init", "image": "i"}]}})
    out = indexed_pod_template(template, "pi", 4)
    assert out["metadata"]["annotations"][COMPLETION_INDEX] == "4"
    assert out["metadata"]["labels"] == {"app": "x", COMPLETION_INDEX: "4"}
    assert out["spec"]["hostname"] == "pi-4"
    assert out["spec"]["containers"][0]["env"] == [
        {"name": "K", "value": "v"}, {"name": COMPLETION_INDEX_ENV, "value": "4"}]
    assert out["spec"]["initContainers"][0]["env"] == [
        {"name": COMPLETION_INDEX_ENV, "value": "4"}]
    assert "annotations" not in template["metadata"]  # the template itself is untouched


@pytest.mark.parametrize(("failed", "restarts", "limit", "deadline_in", "expected"), [
    (0, None, 6, None, None),
    (6, None, 6, None, None),
    (7, None, 6, None, BACKOFF_LIMIT_EXCEEDED),
    (1, None, 0, None, BACKOFF_LIMIT_EXCEEDED),
    (0, 5, 6, None, None),
    (0, 6, 6, None, BACKOFF_LIMIT_EXCEEDED),
    (0, 1, 0, None, BACKOFF_LIMIT_EXCEEDED),
    (0, 0, 0, None, None),
    (0, None, 6, 0.5, None),
    (0, None, 6, 0.0, DEADLINE_EXCEEDED),
    (0, None, 6, -3.0, DEADLINE_EXCEEDED),
    (9, None, 6, -3.0, BACKOFF_LIMIT_EXCEEDED),
])
def test_failure_reason(failed: int, restarts: int | None, limit: int,
                        deadline_in: float | None, expected: object) -> None:
    assert failure_reason(failed=failed, restarts=restarts, backoff_limit=limit,
                          deadline_in=deadline_in) == expected


def test_is_complete() -> None:
    assert is_complete(3, 3, 1) and not is_complete(3, 2, 0)
    assert is_complete(None, 1, 0) and not is_complete(None, 1, 1)
    assert not is_complete(None, 0, 0)
