"""``LocalProbeRunner``: runs ``exec``, ``httpGet`` and ``tcpSocket`` probes against local pods.

Each probe gets ``timeoutSeconds`` on the injected clock; one that outlives
it fails. What each handler does, as the Kubernetes kubelet does it:

- ``exec``: runs the command as a process (the container's env and working
  dir, its own process group) and succeeds on exit 0; the output (stdout and
  stderr, the first 10 KiB) is what the event shows. On timeout, or once it
  exits, its whole process group is killed.
- ``httpGet``: ``GET scheme://host:port/path`` with the probe's headers
  (``User-Agent: kube-probe/<version>`` and ``Accept: */*`` unless given),
  no keep-alive, no TLS verification. It succeeds on a status from 200 to
  399. Redirects to the same host are followed (at most 10); a redirect to
  another host is not followed and counts as a success, as in Kubernetes.
- ``tcpSocket``: succeeds if a TCP connection to ``host:port`` opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal

import aiohttp
from yarl import URL

from controllers.clock import Clock
from runtime.kubelet.containers import ContainerLaunch
from runtime.kubelet.deadline import within
from runtime.kubelet.node import KUBELET_VERSION
from runtime.kubelet.probes import ProbeError, ProbeKind, ProbeResult, ProbeSpec
from runtime.kubelet.process import signal_group

__all__ = ["LocalProbeRunner", "MAX_OUTPUT_BYTES", "MAX_REDIRECTS", "probe_url"]

MAX_OUTPUT_BYTES = 10 * 1024
MAX_REDIRECTS = 10
_USER_AGENT = "kube-probe/" + ".".join(KUBELET_VERSION.lstrip("v").split(".")[:2])


def probe_url(probe: ProbeSpec) -> URL:
    """The URL an ``httpGet`` probe asks for."""
    path = probe.path if probe.path.startswith("/") else "/" + probe.path
    host = f"[{probe.host}]" if ":" in probe.host else probe.host
    return URL(f"{probe.scheme.lower()}://{host}:{probe.port}{path}", encoded=False)


def _reason(error: OSError) -> str:
    """``error`` as the kubelet words it ("connection refused")."""
    text = (os.strerror(error.errno) if error.errno else str(error)) or type(error).__name__
    return text[:1].lower() + text[1:]


class LocalProbeRunner:
    """Runs probes of local pods (see the module docstring), with timeouts on ``clock``."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def run(self, kind: ProbeKind, launch: ContainerLaunch,
                  probe: ProbeSpec) -> ProbeResult:
        if probe.invalid:
            raise ProbeError(probe.invalid)
        if probe.handler == "exec":
            return await self._exec(launch, probe)
        if probe.handler == "httpGet":
            return await self._http_get(probe)
        if probe.handler == "tcpSocket":
            return await self._tcp_socket(probe)
        raise ProbeError(f"{probe.handler or 'handler-less'} probes are not supported")

    # -- exec ----------------------------------------------------------------------
    async def _exec(self, launch: ContainerLaunch, probe: ProbeSpec) -> ProbeResult:
        if not probe.command:
            return ProbeResult(False, "exec probe has no command")
        try:
            proc = await asyncio.create_subprocess_exec(
                *probe.command, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                cwd=str(launch.working_dir), env=launch.env_dict(), start_new_session=True)
        except OSError as e:
            return ProbeResult(False, f"exec {probe.command[0]!r}: {_reason(e)}")
        if proc.stdout is None:  # pragma: no cover - PIPE always gives a reader
            raise ProbeError("exec probe has no output pipe")
        reader = asyncio.ensure_future(_read_output(proc.stdout))
        waiter = asyncio.ensure_future(proc.wait())
        timed_out = False
        try:
            await within(self.clock, probe.timeout_seconds, asyncio.shield(waiter))
        except TimeoutError:
            timed_out = True
        finally:
            # The probe, if still running, and whatever it left in its group go.
            signal_group(proc.pid, signal.SIGKILL)
            await asyncio.wait([waiter, reader])
        if timed_out:
            return ProbeResult(False, f"command {shlex.join(probe.command)!r} timed out")
        output = reader.result()
        return ProbeResult(waiter.result() == 0, output)

    # -- httpGet -------------------------------------------------------------------
    async def _http_get(self, probe: ProbeSpec) -> ProbeResult:
        url = probe_url(probe)
        try:
            return await within(self.clock, probe.timeout_seconds, self._get(url, probe))
        except TimeoutError:
            return ProbeResult(False, f'Get "{url}": context deadline exceeded '
                                      "(Client.Timeout exceeded while awaiting headers)")

    async def _get(self, url: URL, probe: ProbeSpec) -> ProbeResult:
        given = {name.lower() for name, _ in probe.http_headers}
        headers = list(probe.http_headers)
        headers += [(k, v) for k, v in (("User-Agent", _USER_AGENT), ("Accept", "*/*"))
                    if k.lower() not in given]
        connector = aiohttp.TCPConnector(force_close=True, ssl=False)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                         timeout=aiohttp.ClientTimeout(total=None)) as session:
            for _ in range(MAX_REDIRECTS + 1):
                try:
                    async with session.get(url, headers=headers,
                                           allow_redirects=False) as resp:
                        status = resp.status
                        body = await resp.content.read(MAX_OUTPUT_BYTES)
                        location = resp.headers.get("Location")
                except aiohttp.ClientConnectorError as e:
                    return ProbeResult(False, f'Get "{url}": dial tcp {e.host}:{e.port}: '
                                              f"connect: {_reason(e.os_error)}")
                except aiohttp.ClientError as e:
                    return ProbeResult(False, f'Get "{url}": {type(e).__name__}: {e}')
                text = body.decode("utf-8", "replace")
                if 300 <= status < 400 and location:
                    target = url.join(URL(location))
                    if target.host != url.host:
                        return ProbeResult(True, f"Probe terminated redirects, Response body: "
                                                 f"{text}")
                    url = target
                    continue
                if 200 <= status < 400:
                    return ProbeResult(True, text)
                return ProbeResult(False, f"HTTP probe failed with statuscode: {status}")
        return ProbeResult(False, f'Get "{url}": stopped after {MAX_REDIRECTS} redirects')

    # -- tcpSocket -----------------------------------------------------------------
    async def _tcp_socket(self, probe: ProbeSpec) -> ProbeResult:
        where = f"dial tcp {probe.host}:{probe.port}"
        try:
            _, writer = await within(self.clock, probe.timeout_seconds,
                                     asyncio.open_connection(probe.host, probe.port))
        except TimeoutError:
            return ProbeResult(False, f"{where}: i/o timeout")
        except OSError as e:
            return ProbeResult(False, f"{where}: connect: {_reason(e)}")
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return ProbeResult(True)


async def _read_output(stream: asyncio.StreamReader) -> str:
    """The first ``MAX_OUTPUT_BYTES`` of ``stream``; the rest is read and dropped."""
    kept = bytearray()
    while chunk := await stream.read(64 * 1024):
        if len(kept) < MAX_OUTPUT_BYTES:
            kept += chunk[:MAX_OUTPUT_BYTES - len(kept)]
    return kept.decode("utf-8", "replace")
