"""Each rate limiter's schedule: exponential, token bucket, fast-slow, max-of, the default."""

from __future__ import annotations

import math
from collections.abc import Hashable

import pytest

from controllers.clock import FakeClock
from controllers.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    ItemFastSlowRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)


def test_exponential_doubles_per_item_from_the_base() -> None:
    limiter = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    delays = [limiter.when("a") for _ in range(6)]
    assert delays == pytest.approx([0.005, 0.010, 0.020, 0.040, 0.080, 0.160])
    assert limiter.num_requeues("a") == 6
    assert limiter.when("b") == pytest.approx(0.005)  # items are independent
    assert limiter.num_requeues("b") == 1


def test_exponential_is_capped_at_the_max() -> None:
    limiter = ItemExponentialFailureRateLimiter(base_delay=1.0, max_delay=5.0)
    assert [limiter.when("a") for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_exponential_never_overflows() -> None:
    limiter = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    delays = [limiter.when("a") for _ in range(3000)]
    assert delays[-1] == 1000.0
    assert all(math.isfinite(d) for d in delays)
    assert delays == sorted(delays)


def test_exponential_forget_starts_over() -> None:
    limiter = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    for _ in range(4):
        limiter.when("a")
    limiter.when("b")
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(0.005)
    assert limiter.num_requeues("b") == 1
    limiter.forget("never-seen")


def test_exponential_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError):
        ItemExponentialFailureRateLimiter(-1.0, 10.0)
    with pytest.raises(ValueError):
        ItemExponentialFailureRateLimiter(10.0, 1.0)


def test_bucket_gives_the_burst_then_spaces_by_qps() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10.0, burst=3, clock=clock)
    delays = [limiter.when(i) for i in range(6)]
    assert delays == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2, 0.3])


def test_bucket_refills_with_time_up_to_the_burst() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10.0, burst=3, clock=clock)
    for i in range(6):
        limiter.when(i)  # three tokens taken, three more reserved
    clock.advance(0.3)  # pays back the reservations
    assert limiter.when("x") == pytest.approx(0.1)
    clock.advance(0.05)  # half of the token "x" reserved is back
    assert limiter.when("y") == pytest.approx(0.15)
    clock.advance(1000.0)  # refills, but never above the burst
    assert [limiter.when(i) for i in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.1])


def test_bucket_keeps_no_per_item_state() -> None:
    limiter = BucketRateLimiter(qps=1.0, burst=1, clock=FakeClock())
    assert limiter.when("a") == 0.0
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(1.0)  # forget gave nothing back


def test_bucket_with_infinite_qps_never_waits() -> None:
    limiter = BucketRateLimiter(qps=math.inf, burst=1, clock=FakeClock())
    assert [limiter.when(i) for i in range(1000)] == [0.0] * 1000


@pytest.mark.parametrize(("qps", "burst"), [(0.0, 10), (-1.0, 10), (10.0, 0)])
def test_bucket_rejects_bad_settings(qps: float, burst: int) -> None:
    with pytest.raises(ValueError):
        BucketRateLimiter(qps=qps, burst=burst, clock=FakeClock())


def test_fast_slow_switches_after_the_fast_attempts() -> None:
    limiter = ItemFastSlowRateLimiter(fast_delay=0.1, slow_delay=5.0, max_fast_attempts=3)
    assert [limiter.when("a") for _ in range(5)] == [0.1, 0.1, 0.1, 5.0, 5.0]
    assert limiter.num_requeues("a") == 5
    assert limiter.when("b") == 0.1
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 0.1


def test_fast_slow_with_no_fast_attempts_is_always_slow() -> None:
    limiter = ItemFastSlowRateLimiter(0.1, 2.0, 0)
    assert [limiter.when("a") for _ in range(2)] == [2.0, 2.0]
    with pytest.raises(ValueError):
        ItemFastSlowRateLimiter(-0.1, 2.0, 1)


class Recording:
    """A limiter with a fixed answer that records what it was asked."""

    def __init__(self, delay: float, requeues: int) -> None:
        self.delay = delay
        self.requeues = requeues
        self.asked: list[Hashable] = []
        self.forgotten: list[Hashable] = []

    def when(self, item: Hashable) -> float:
        self.asked.append(item)
        return self.delay

    def forget(self, item: Hashable) -> None:
        self.forgotten.append(item)

    def num_requeues(self, item: Hashable) -> int:
        return self.requeues


def test_max_of_asks_every_limiter_and_takes_the_longest() -> None:
    short, long_ = Recording(0.5, 7), Recording(2.0, 3)
    limiter = MaxOfRateLimiter[str](long_, short)
    assert limiter.when("a") == 2.0
    assert short.asked == ["a"] and long_.asked == ["a"]
    assert limiter.num_requeues("a") == 7
    limiter.forget("a")
    assert short.forgotten == ["a"] and long_.forgotten == ["a"]


def test_max_of_exponential_and_bucket() -> None:
    clock = FakeClock()
    limiter = MaxOfRateLimiter[str](
        ItemExponentialFailureRateLimiter(0.001, 1.0),
        BucketRateLimiter(qps=1.0, burst=2, clock=clock),
    )
    assert [limiter.when("a") for _ in range(3)] == pytest.approx([0.001, 0.002, 1.0])
    assert limiter.num_requeues("a") == 3
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0


def test_max_of_needs_a_limiter() -> None:
    with pytest.raises(ValueError):
        MaxOfRateLimiter[str]()


def test_default_controller_limiter_backs_off_per_item_and_caps_overall_rate() -> None:
    clock = FakeClock()
    limiter: RateLimiter[str] = default_controller_rate_limiter(clock=clock)
    assert [limiter.when("hot") for _ in range(4)] == pytest.approx([0.005, 0.01, 0.02, 0.04])
    # 100 tokens in the bucket: 96 remain, so 96 new items wait the exponential base...
    assert [limiter.when(f"k{i}") for i in range(96)] == pytest.approx([0.005] * 96)
    # ...and then the bucket spaces them at 10 per second.
    assert [limiter.when(f"x{i}") for i in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert limiter.num_requeues("hot") == 4
    limiter.forget("hot")
    assert limiter.num_requeues("hot") == 0


def test_default_controller_limiter_caps_at_1000_seconds() -> None:
    limiter = default_controller_rate_limiter(clock=FakeClock())
    delays = [limiter.when("a") for _ in range(40)]
    assert max(delays) == 1000.0
    assert delays[-1] == 1000.0
