"""The Deployment controller: rolling updates, Recreate, revision history, rollback, pause.

General layout (imports point down only):

- ``controller``: ``DeploymentController``, its handlers and one sync per key.
- ``rolling``, ``recreate``: one step of each strategy.
- ``sync``: ``DeploymentSync``, the steps a sync composes (new ReplicaSet,
  scaling, history clean-up, status writes).
- ``claim``: adopting and releasing ReplicaSets; pods by ReplicaSet.
- ``progress``: status and conditions (pure). ``sizing``: fenceposts and
  the sizes of ReplicaSets (pure). ``annotations``: revisions and replica
  annotations (pure). ``hashing``: the pod-template-hash (pure).
"""

from __future__ import annotations

from controllers.builtin.deployment.annotations import (
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
)
from controllers.builtin.deployment.controller import DeploymentController
from controllers.builtin.deployment.hashing import POD_TEMPLATE_HASH_LABEL, compute_hash

__all__ = [
    "DESIRED_REPLICAS_ANNOTATION",
    "MAX_REPLICAS_ANNOTATION",
    "POD_TEMPLATE_HASH_LABEL",
    "REVISION_ANNOTATION",
    "REVISION_HISTORY_ANNOTATION",
    "DeploymentController",
    "compute_hash",
]
