"""Controller expectations: counts, per-object deletions, expiry on an injected clock."""

from __future__ import annotations

import pytest

from controllers.builtin.expectations import (
    EXPECTATIONS_TIMEOUT,
    ControllerExpectations,
    UIDTrackingControllerExpectations,
)
from kvstore.clock import FakeClock

KEY = "default/web"


def test_a_key_never_seen_is_satisfied() -> None:
    exp = ControllerExpectations(FakeClock())
    assert exp.satisfied(KEY)
    assert exp.get(KEY) is None and exp.expires_in(KEY) is None and not exp.is_expired(KEY)


def test_creations_are_satisfied_once_all_are_observed() -> None:
    exp = ControllerExpectations(FakeClock())
    exp.expect_creations(KEY, 3)
    for _ in range(2):
        exp.creation_observed(KEY)
        assert not exp.satisfied(KEY)
    exp.creation_observed(KEY)
    assert exp.satisfied(KEY)
    # An extra observation (a pod the controller did not create) goes below zero: still fine.
    exp.creation_observed(KEY)
    record = exp.get(KEY)
    assert record is not None and record.add == -1 and exp.satisfied(KEY)


def test_setting_expectations_replaces_what_was_pending() -> None:
    exp = ControllerExpectations(FakeClock())
    exp.expect_creations(KEY, 5)
    exp.expect_deletions(KEY, 1)
    record = exp.get(KEY)
    assert record is not None and (record.add, record.delete) == (0, 1)
    exp.deletion_observed(KEY)
    assert exp.satisfied(KEY)


def test_raise_and_lower_need_a_record() -> None:
    exp = ControllerExpectations(FakeClock())
    exp.raise_expectations(KEY, 2, 0)
    exp.lower_expectations(KEY, 1, 0)
    assert exp.get(KEY) is None
    exp.set_expectations(KEY, 1, 1)
    exp.raise_expectations(KEY, 1, 0)
    exp.lower_expectations(KEY, 2, 0)
    assert not exp.satisfied(KEY)
    exp.lower_expectations(KEY, 0, 1)
    assert exp.satisfied(KEY)


def test_unfulfilled_expectations_expire_after_the_ttl() -> None:
    clock = FakeClock(1_700_000_000.0)
    exp = ControllerExpectations(clock)
    exp.expect_creations(KEY, 2)
    assert exp.expires_in(KEY) == EXPECTATIONS_TIMEOUT == 300.0
    clock.advance(300.0)
    assert not exp.satisfied(KEY) and exp.expires_in(KEY) == 0.0
    clock.advance(0.5)
    assert exp.is_expired(KEY) and exp.satisfied(KEY)
    # New expectations start a new lifetime.
    exp.expect_creations(KEY, 1)
    assert not exp.satisfied(KEY)


def test_deleting_expectations_forgets_the_key() -> None:
    exp = ControllerExpectations(FakeClock())
    exp.expect_creations(KEY, 1)
    exp.expect_creations("default/other", 1)
    assert exp.keys() == ["default/other", KEY]
    exp.delete_expectations(KEY)
    assert exp.satisfied(KEY) and exp.keys() == ["default/other"]


def test_the_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ControllerExpectations(FakeClock(), ttl_seconds=0)


def test_uid_tracking_counts_each_expected_deletion_once() -> None:
    exp = UIDTrackingControllerExpectations(FakeClock())
    exp.expect_deletions(KEY, ["default/a", "default/b"])
    assert exp.expected_deletions(KEY) == ["default/a", "default/b"]
    # A graceful deletion is seen twice (update with deletionTimestamp, then delete).
    exp.deletion_observed(KEY, "default/a")
    exp.deletion_observed(KEY, "default/a")
    assert not exp.satisfied(KEY)
    # A pod nobody asked to delete does not count.
    exp.deletion_observed(KEY, "default/stranger")
    assert not exp.satisfied(KEY)
    exp.deletion_observed(KEY, "default/b")
    assert exp.satisfied(KEY) and exp.expected_deletions(KEY) == []
    record = exp.get(KEY)
    assert record is not None and record.delete == 0


def test_uid_tracking_creations_and_forgetting() -> None:
    clock = FakeClock()
    exp = UIDTrackingControllerExpectations(clock, ttl_seconds=10)
    exp.expect_deletions(KEY, ["default/a"])
    exp.expect_creations(KEY, 1)
    assert exp.expected_deletions(KEY) == []
    exp.deletion_observed(KEY, "default/a")
    record = exp.get(KEY)
    assert record is not None and record.delete == 0 and not exp.satisfied(KEY)
    assert exp.expires_in(KEY) == 10
    exp.creation_observed(KEY)
    assert exp.satisfied(KEY)
    exp.expect_deletions(KEY, ["default/b"])
    assert exp.keys() == [KEY]
    exp.delete_expectations(KEY)
    assert exp.keys() == [] and exp.expected_deletions(KEY) == [] and exp.satisfied(KEY)
