"""A container started by the kubelet dies with it, even when the kubelet is killed with -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from runtime.kubelet.process import resolve_command

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="PR_SET_PDEATHSIG is Linux-only")

PARENT = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from runtime.kubelet.containers import ContainerLaunch
    from runtime.kubelet.process import ProcessRuntime

    async def main():
        root = Path(sys.argv[1])
        launch = ContainerLaunch("default", "p", "uid", "c", "img", ("sleep", "60"),
                                 (("PATH", "/usr/bin:/bin"),), root, root / "c.log")
        proc = await ProcessRuntime().start(launch)
        print(proc.pid, flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
""")


def test_the_container_is_killed_when_its_kubelet_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        # The shim has exec'd the container's own command.
        deadline = time.monotonic() + 10
        while psutil.Process(child).name() != "sleep":
            assert time.monotonic() < deadline, "the command was never exec'd"
            time.sleep(0.02)
        assert psutil.Process(child).cmdline() == ["sleep", "60"]
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while psutil.pid_exists(child) and psutil.Process(child).status() != "zombie":
            assert time.monotonic() < deadline, "the container outlived its kubelet"
            time.sleep(0.02)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_commands_are_resolved_on_the_container_path(tmp_path: Path) -> None:
    tool = tmp_path / "bin" / "tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert resolve_command("tool", {"PATH": str(tool.parent)}, "/") == str(tool)
    assert resolve_command("tool", {"PATH": "/nonexistent"}, "/") is None
    assert resolve_command("./bin/tool", {}, str(tmp_path)) == str(tmp_path / "bin" / "tool")
    assert resolve_command("./bin/missing", {}, str(tmp_path)) is None
