"""The kubelet: a node agent that runs pods as OS processes (or simulates them).

General layout (imports point down only):

- ``kubelet``: ``Kubelet``, which joins the parts below.
- ``node``: Node registration, status and the heartbeat Lease.
- ``pod_worker``: one pod's containers, restarts, probes and termination;
  ``status``: the pod status it shows; ``status_manager``: writing it.
- ``containers``: what to launch and the ``ContainerRuntime`` seam;
  ``process``: OS processes; ``simulated``: none; ``idle``: the process a
  container without a command runs.
- ``probes``: liveness and readiness probes; ``probe_runner``: running their
  exec, httpGet and tcpSocket handlers; ``deadline``: timeouts on the clock;
  ``backoff``: crash-loop delays; ``ipam``: pod IPs; ``logs`` and
  ``log_server``: container logs; ``events``: the Events the kubelet
  records; ``pod_source``: one pod watch shared by many kubelets of a process.
"""

from __future__ import annotations

from runtime.kubelet.containers import ContainerLaunch, ContainerProcess, ContainerRuntime
from runtime.kubelet.kubelet import Kubelet
from runtime.kubelet.logs import container_log_path
from runtime.kubelet.node import KUBELET_VERSION, NODE_LEASE_NAMESPACE
from runtime.kubelet.pod_source import SharedPodSource
from runtime.kubelet.probe_runner import LocalProbeRunner
from runtime.kubelet.probes import ProbeError, ProbeKind, ProbeResult, ProbeRunner, ProbeSpec
from runtime.kubelet.simulated import EXIT_CODE_ANNOTATION, RUN_SECONDS_ANNOTATION

__all__ = [
    "ContainerLaunch",
    "ContainerProcess",
    "ContainerRuntime",
    "EXIT_CODE_ANNOTATION",
    "KUBELET_VERSION",
    "Kubelet",
    "LocalProbeRunner",
    "NODE_LEASE_NAMESPACE",
    "ProbeError",
    "ProbeKind",
    "ProbeResult",
    "ProbeRunner",
    "ProbeSpec",
    "RUN_SECONDS_ANNOTATION",
    "SharedPodSource",
    "container_log_path",
]
