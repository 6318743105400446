"""Work queues for controllers: client-go's workqueue contract on asyncio.

Layers, each built on the one before: ``Queue`` (fair, stingy hand-out of
hashable keys to workers), ``DelayingQueue`` (``add_after``),
``RateLimitingQueue`` (``add_rate_limited``, ``forget``, ``num_requeues``)
over a ``RateLimiter``. Everything that waits uses an injected
``controllers.clock.Clock``; metrics go to an optional ``MetricsProvider``.
"""

from __future__ import annotations

from controllers.workqueue.delaying import DelayingQueue
from controllers.workqueue.metrics import InMemoryMetricsProvider, MetricsProvider
from controllers.workqueue.queue import Queue
from controllers.workqueue.rate_limiters import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    ItemFastSlowRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)
from controllers.workqueue.rate_limiting import RateLimitingQueue

__all__ = [
    "BucketRateLimiter",
    "DelayingQueue",
    "InMemoryMetricsProvider",
    "ItemExponentialFailureRateLimiter",
    "ItemFastSlowRateLimiter",
    "MaxOfRateLimiter",
    "MetricsProvider",
    "Queue",
    "RateLimiter",
    "RateLimitingQueue",
    "default_controller_rate_limiter",
]
