"""``ProcessRuntime``: containers as OS processes, one process group per attempt.

Each attempt is started with ``asyncio.create_subprocess_exec`` in a new
session, so its process id is also its process group id and every process
it forks belongs to that group. Signals go to the whole group, so stopping
a container stops its whole tree. When the attempt's first process exits,
whatever it left running in its group is killed (SIGKILL), as a container's
processes end with its PID 1. stdin is ``/dev/null``; stdout and stderr are
appended to the attempt's log file (rotated first, see ``logs``). A missing
working directory is created.

No container outlives its kubelet, even one killed with SIGKILL: on Linux
each attempt starts through a few lines of Python (``PARENT_DEATH_SHIM``)
that ask the kernel to SIGKILL the process when the kubelet dies
(``PR_SET_PDEATHSIG``, kept across ``exec``) and then ``exec`` the
container's command, so its pid, argv and environment are the command's
own. A command that cannot be found is refused before anything starts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys

from runtime.kubelet.containers import ContainerLaunch, ContainerProcess, ContainerStartError
from runtime.kubelet.logs import rotate_log

__all__ = ["OSProcess", "PARENT_DEATH_SHIM", "ProcessRuntime", "resolve_command",
           "signal_group"]

PARENT_DEATH_SHIM = (
    "import ctypes, os, signal, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.prctl(1, signal.SIGKILL, 0, 0, 0)\n"  # PR_SET_PDEATHSIG
    "if os.getppid() != int(sys.argv[1]):\n"  # the kubelet died before prctl
    "    os._exit(137)\n"
    "os.execv(sys.argv[2], sys.argv[3:])\n"
)
"""Run as ``python -c SHIM KUBELET_PID PATH ARGV0 ARGS...``: die with the kubelet, then exec."""


def resolve_command(argv0: str, env: dict[str, str], cwd: str) -> str | None:
    """The executable ``argv0`` names (searched on the container's PATH), or None."""
    if os.sep in argv0:
        path = os.path.normpath(os.path.join(cwd, argv0))
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    return shutil.which(argv0, path=env.get("PATH", os.defpath))


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to process group ``pgid``; nothing if the group is gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class OSProcess:
    """A running attempt: the leader of its own process group."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self.pid = proc.pid
        self._code: int | None = None

    @property
    def container_id(self) -> str:
        return f"process://{self.pid}"

    async def wait(self) -> int:
        if self._code is None:
            code = await self._proc.wait()
            # The leader is gone: end whatever else is left in its group.
            signal_group(self.pid, signal.SIGKILL)
            self._code = 128 - code if code < 0 else code
        return self._code

    def terminate(self) -> None:
        if self._code is None:
            signal_group(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        if self._code is None:
            signal_group(self.pid, signal.SIGKILL)


class ProcessRuntime:
    """Starts each container attempt as an OS process (see the module docstring)."""

    async def start(self, launch: ContainerLaunch) -> ContainerProcess:
        try:
            launch.log_path.parent.mkdir(parents=True, exist_ok=True)
            launch.working_dir.mkdir(parents=True, exist_ok=True)
            rotate_log(launch.log_path)
            env = launch.env_dict()
            argv = list(launch.argv)
            if sys.platform.startswith("linux"):
                path = resolve_command(argv[0], env, str(launch.working_dir))
                if path is None:
                    raise FileNotFoundError(2, "executable file not found", argv[0])
                argv = [sys.executable, "-c", PARENT_DEATH_SHIM, str(os.getpid()), path, *argv]
            with open(launch.log_path, "ab") as out:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                    stderr=asyncio.subprocess.STDOUT, cwd=str(launch.working_dir),
                    env=env, start_new_session=True)
        except OSError as e:
            raise ContainerStartError(f"failed to start {launch.argv[0]!r}: "
                                      f"{e.strerror or e}") from e
        return OSProcess(proc)
