"""Containers as the kubelet sees them: what to launch, and the runtime seam that launches it.

A ``ContainerLaunch`` is everything needed to start one attempt of one
container: the argv (``command`` + ``args``, with ``$(VAR)`` references
expanded from the container's env as Kubernetes does, ``$$`` escaping), the
environment, the working directory and the log file. A container without a
``command`` runs the built-in idle process (``runtime.kubelet.idle``) in
place of its image.

Environment: ``PATH``, ``HOME``, ``LANG`` and ``TMPDIR`` from the host (so
commands resolve), ``HOSTNAME`` = the pod's name, then each ``env`` entry in
order. ``valueFrom.fieldRef`` is resolved for ``metadata.name``,
``metadata.namespace``, ``metadata.uid``, ``spec.nodeName``,
``spec.serviceAccountName``, ``status.hostIP`` and ``status.podIP``; any
other ``valueFrom`` (secrets, config maps, resources) is skipped with a
warning in the log.

``ContainerRuntime`` is the seam: ``process.ProcessRuntime`` runs OS
processes, ``simulated.SimulatedRuntime`` runs none. A started attempt is a
``ContainerProcess``: ``wait()`` for its exit code, ``terminate()`` (SIGTERM)
and ``kill()`` (SIGKILL), both harmless once it has exited.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "ContainerLaunch",
    "ContainerProcess",
    "ContainerRuntime",
    "ContainerStartError",
    "IDLE_ARGV",
    "build_launch",
    "container_env",
    "expand_references",
]

log = logging.getLogger(__name__)

IDLE_ARGV = (sys.executable, "-m", "runtime.kubelet.idle")
"""What a container without a ``command`` runs."""

_HOST_ENV = ("PATH", "HOME", "LANG", "TMPDIR")
# The directory holding the ``runtime`` package, so the idle process imports it.
_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ContainerStartError(Exception):
    """The runtime could not start a container (no such command, a bad working dir...)."""


@dataclass(frozen=True, slots=True)
class ContainerLaunch:
    """One attempt of one container, ready to start."""

    namespace: str
    pod_name: str
    pod_uid: str
    container: str
    image: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    working_dir: Path
    log_path: Path
    is_init: bool = False
    # The container's own command, before the idle default (empty if it had none).
    command: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)


class ContainerProcess(Protocol):
    """A started attempt of a container."""

    @property
    def container_id(self) -> str:
        """``<runtime>://<id>``, as shown in ``containerStatuses[].containerID``."""
        ...

    async def wait(self) -> int:
        """Wait for the attempt to end; its exit code (128+N when killed by signal N)."""
        ...

    def terminate(self) -> None:
        """Ask the attempt to stop (SIGTERM to its whole process group)."""
        ...

    def kill(self) -> None:
        """Stop the attempt now (SIGKILL to its whole process group)."""
        ...


class ContainerRuntime(Protocol):
    """Starts container attempts."""

    async def start(self, launch: ContainerLaunch) -> ContainerProcess:
        """Start ``launch``.

        Raises:
            ContainerStartError: it could not be started.
        """
        ...


def expand_references(text: str, env: Mapping[str, str]) -> str:
    """``text`` with each ``$(NAME)`` of a defined variable replaced; ``$$`` becomes ``$``."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _REFERENCE.sub(repl, text)


def _field_ref(pod: Mapping[str, Any], path: str, pod_ip: str, host_ip: str) -> str | None:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    values: dict[str, Any] = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": host_ip,
        "status.podIP": pod_ip,
    }
    if path not in values:
        return None
    value = values[path]
    return value if isinstance(value, str) else ""


def container_env(
    pod: Mapping[str, Any], container: Mapping[str, Any], *, pod_ip: str, host_ip: str
) -> list[tuple[str, str]]:
    """The environment of ``container`` (see the module docstring), in order."""
    env: dict[str, str] = {k: os.environ[k] for k in _HOST_ENV if k in os.environ}
    env["HOSTNAME"] = str((pod.get("metadata") or {}).get("name", ""))
    for var in container.get("env") or ():
        if not isinstance(var, Mapping) or not isinstance(var.get("name"), str):
            continue
        name = var["name"]
        source = var.get("valueFrom")
        if isinstance(source, Mapping):
            ref = source.get("fieldRef")
            path = ref.get("fieldPath") if isinstance(ref, Mapping) else None
            value = _field_ref(pod, path, pod_ip, host_ip) if isinstance(path, str) else None
            if value is None:
                log.warning("container %s: env %s: valueFrom %s is not supported; skipped",
                            container.get("name"), name, sorted(source))
                continue
            env[name] = value
        else:
            raw = var.get("value")
            env[name] = expand_references(raw, env) if isinstance(raw, str) else ""
    return list(env.items())


def build_launch(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    *,
    is_init: bool,
    log_path: Path,
    pod_dir: Path,
    pod_ip: str,
    host_ip: str,
) -> ContainerLaunch:
    """The launch of ``container`` of ``pod``; the working dir defaults to ``pod_dir``."""
    meta = pod.get("metadata") or {}
    env_items = container_env(pod, container, pod_ip=pod_ip, host_ip=host_ip)
    env = dict(env_items)
    command = tuple(expand_references(str(c), env) for c in container.get("command") or ())
    args = tuple(expand_references(str(a), env) for a in container.get("args") or ())
    if command:
        argv = command + args
    else:
        argv = IDLE_ARGV + args
        path = env.get("PYTHONPATH")
        env_items = [(k, v) for k, v in env_items if k != "PYTHONPATH"]
        env_items.append(("PYTHONPATH", f"{_PROJECT_ROOT}{os.pathsep}{path}" if path
                          else _PROJECT_ROOT))
    working_dir = container.get("workingDir")
    annotations = meta.get("annotations") or {}
    return ContainerLaunch(
        namespace=str(meta.get("namespace", "")),
        pod_name=str(meta.get("name", "")),
        pod_uid=str(meta.get("uid", "")),
        container=str(container.get("name", "")),
        image=str(container.get("image", "")),
        argv=argv,
        env=tuple(env_items),
        working_dir=Path(working_dir) if isinstance(working_dir, str) and working_dir
        else pod_dir,
        log_path=log_path,
        is_init=is_init,
        command=command,
        annotations={str(k): str(v) for k, v in annotations.items()},
    )
