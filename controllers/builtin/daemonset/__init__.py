"""The DaemonSet controller (``DaemonSetController``), as kube-controller-manager's.

- ``placement``: which nodes should run a daemon pod, and what one node needs;
- ``update``: RollingUpdate (maxUnavailable / maxSurge) and OnDelete;
- ``history``: ControllerRevisions, one per pod template, trimmed to the limit;
- ``status``: the status counters; ``claim``: adoption and release;
- ``handlers``: the informers' event handlers (what gets enqueued);
- ``backoff``: the back-off for deleting failed daemon pods;
- ``controller``: the controller itself.
"""

from __future__ import annotations

from controllers.builtin.daemonset.controller import (
    BURST_REPLICAS,
    FAILED_DAEMON_POD,
    DaemonSetController,
)
from controllers.builtin.daemonset.placement import CONTROLLER_REVISION_HASH_LABEL

__all__ = ["BURST_REPLICAS", "CONTROLLER_REVISION_HASH_LABEL", "FAILED_DAEMON_POD",
           "DaemonSetController"]
