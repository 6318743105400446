"""``rollout``: status messages, history and undo on hand-made ReplicaSets, pause and resume."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import click
import pytest

import kvstore
from controllers.api import Clientset
from kvstore.clock import FakeClock
from runtime.cli.rollout import (
    find_rollback,
    history,
    parse_duration,
    status_message,
    wait_for_rollout,
)
from runtime.cli.session import CommandError

from .conftest import OPTIONS, START, Env
from .samples import deployment, replicaset


def _deploy(generation: int = 2, want: int = 3, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": want}, "status": status}


@pytest.mark.parametrize(("deploy", "message", "done"), [
    (_deploy(observedGeneration=1), "Waiting for deployment spec update to be observed...",
     False),
    (_deploy(observedGeneration=2, updatedReplicas=1, replicas=3),
     ('Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been '
     "updated..."), False),
    (_deploy(observedGeneration=2, updatedReplicas=3, replicas=4),
     ('Waiting for deployment "web" rollout to finish: 1 old replicas are pending '
     "termination..."), False),
    (_deploy(observedGeneration=2, updatedReplicas=3, replicas=3, availableReplicas=2),
     ('Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are '
     "available..."), False),
    (_deploy(observedGeneration=3, updatedReplicas=3, replicas=3, availableReplicas=3),
     'deployment "web" successfully rolled out', True),
])
def test_status_message(deploy: dict[str, Any], message: str, done: bool) -> None:
    assert status_message(deploy) == (message, done)


def test_status_message_progress_deadline() -> None:
    d = _deploy(observedGeneration=2, conditions=[
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}])
    with pytest.raises(CommandError, match='deployment "web" exceeded its progress deadline'):
        status_message(d)


@pytest.mark.parametrize(("text", "seconds"), [("0s", 0.0), ("30s", 30.0), ("1m30s", 90.0),
                                                ("250ms", 0.25), ("2h", 7200.0), ("5", 5.0)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_garbage() -> None:
    with pytest.raises(click.BadParameter):
        parse_duration("soon")
    with pytest.raises(click.BadParameter):
        parse_duration("5s!")


def _sets() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    d = deployment("web", image="nginx:3")
    d["metadata"]["uid"] = "u-1"
    sets = [replicaset(d, 3, "nginx:3"), replicaset(d, 1, "nginx:1", cause="first"),
            replicaset(d, 2, "nginx:2")]
    unrelated = replicaset(d, 0, "x")
    del unrelated["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    return d, [*sets, unrelated]


def test_history_and_rollback_choice() -> None:
    d, sets = _sets()
    assert history(sets) == [(1, "first"), (2, "<none>"), (3, "<none>")]
    rs, rev = find_rollback(d, sets, 0)
    assert (rs["metadata"]["name"], rev) == ("web-h2", 2)
    rs, rev = find_rollback(d, sets, 1)
    assert (rs["metadata"]["name"], rev) == ("web-h1", 1)
    with pytest.raises(CommandError, match="unable to find specified revision 7 in history"):
        find_rollback(d, sets, 7)
    with pytest.raises(CommandError, match='no rollout history found for deployment "web"'):
        find_rollback(d, sets[:1], 0)


def _seed_history(env: Env) -> None:
    async def go(api: Clientset) -> None:
        d = await api.resource("deploy").create(deployment("web", image="nginx:3"))
        for rev in (1, 2, 3):
            await api.resource("rs").create(
                replicaset(d, rev, f"nginx:{rev}", cause="steer set image" if rev == 2 else None))
        other = await api.resource("deploy").create(deployment("api", app="api"))
        await api.resource("rs").create(replicaset(other, 9, "api:9"))
    env.run(go)


def _image(env: Env) -> str:
    live = env.run(lambda api: api.resource("deploy").get("web", ""))
    return str(live["spec"]["template"]["spec"]["containers"][0]["image"])


def test_history_command(env: Env) -> None:
    _seed_history(env)
    r = env.invoke("rollout", "history", "deploy/web")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == ["deployment.apps/web",
                                     "REVISION   CHANGE-CAUSE",
                                     "1          <none>",
                                     "2          steer set image",
                                     "3          <none>"]
    r = env.invoke("rollout", "history", "deployment", "web", "--revision", "2")
    lines = r.stdout.splitlines()
    assert lines[0] == "deployment.apps/web with revision #2"
    assert "  Labels:  app=web" in lines
    assert "      Image:        nginx:2" in lines
    r = env.invoke("rollout", "history", "pod/x")
    assert r.exit_code == 1 and "no rollout support" in r.stderr


def test_undo(env: Env) -> None:
    _seed_history(env)
    r = env.invoke("rollout", "undo", "deploy/web")
    assert (r.exit_code, r.stdout) == (0, "deployment.apps/web rolled back\n")
    assert _image(env) == "nginx:2"
    live = env.run(lambda api: api.resource("deploy").get("web", ""))
    assert live["spec"]["template"]["metadata"]["labels"] == {"app": "web"}
    assert live["metadata"]["annotations"]["kubernetes.io/change-cause"] == "steer set image"
    assert "deployment.kubernetes.io/revision" not in live["metadata"]["annotations"]
    r = env.invoke("rollout", "undo", "deploy/web", "--to-revision", "1")
    assert r.stdout == "deployment.apps/web rolled back\n"
    assert _image(env) == "nginx:1"
    r = env.invoke("rollout", "undo", "deploy/web", "--to-revision", "1")
    assert r.stdout == ("deployment.apps/web skipped rollback (current template already "
                        "matches revision 1)\n")
    r = env.invoke("rollout", "undo", "deploy/web", "--to-revision", "8")
    assert r.exit_code == 1
    assert r.stderr == "error: unable to find specified revision 8 in history\n"
    r = env.invoke("rollout", "undo", "deploy/api")
    assert r.stderr == 'error: no rollout history found for deployment "api"\n'


def test_pause_resume_and_undo_of_a_paused_deployment(env: Env) -> None:
    _seed_history(env)
    assert env.invoke("rollout", "pause", "deploy/web").stdout == "deployment.apps/web paused\n"
    r = env.invoke("rollout", "pause", "deploy/web")
    assert r.exit_code == 1
    assert r.stderr == 'error: deployments.apps "web" is already paused\n'
    r = env.invoke("rollout", "undo", "deploy/web")
    assert r.exit_code == 1 and "you cannot rollback a paused deployment" in r.stderr
    assert _image(env) == "nginx:3"
    assert env.invoke("rollout", "resume", "deploy/web").stdout == \
        "deployment.apps/web resumed\n"
    r = env.invoke("rollout", "resume", "deploy/web")
    assert r.stderr == 'error: deployments.apps "web" is not paused\n'
    live = env.run(lambda api: api.resource("deploy").get("web", ""))
    assert live["spec"]["paused"] is False


def _finish(d: dict[str, Any], *, updated: int, available: int, total: int) -> dict[str, Any]:
    d["status"] = {"observedGeneration": d["metadata"]["generation"], "replicas": total,
                   "updatedReplicas": updated, "availableReplicas": available}
    return d


def test_status_command(env: Env) -> None:
    async def go(api: Clientset) -> None:
        d = await api.resource("deploy").create(deployment("web", replicas=2))
        await api.resource("deploy").update_status(_finish(d, updated=2, available=1, total=2))
    env.run(go)
    r = env.invoke("rollout", "status", "deploy/web", "--no-watch")
    assert r.stdout == ('Waiting for deployment "web" rollout to finish: 1 of 2 updated '
                        "replicas are available...\n")
    r = env.invoke("rollout", "status", "deploy/web", "--timeout", "100ms")
    assert r.exit_code == 1
    assert r.stderr == "error: timed out waiting for the condition\n"

    async def done(api: Clientset) -> None:
        d = await api.resource("deploy").get("web", "")
        await api.resource("deploy").update_status(_finish(d, updated=2, available=2, total=2))
    env.run(done)
    r = env.invoke("rollout", "status", "deploy/web")
    assert (r.exit_code, r.stdout) == (0, 'deployment "web" successfully rolled out\n')


async def test_status_follows_the_rollout(tmp_path: Path) -> None:
    async with kvstore.open(str(tmp_path / "store"), options=OPTIONS) as kv:
        api = Clientset(kv, clock=FakeClock(START), rng=random.Random(5))
        client = api.resource("deploy")
        d = await client.create(deployment("web", replicas=2))
        seen: list[str] = []
        first = asyncio.Event()

        def emit(message: str) -> None:
            seen.append(message)
            first.set()

        task = asyncio.create_task(wait_for_rollout(client, d, emit))
        await asyncio.wait_for(first.wait(), 10)
        for updated, available, total in ((1, 0, 3), (2, 1, 3), (2, 2, 2)):
            d = await client.get("web", "")
            await client.update_status(_finish(d, updated=updated, available=available,
                                               total=total))
        await asyncio.wait_for(task, 10)
    assert seen == [
        "Waiting for deployment spec update to be observed...",
        ('Waiting for deployment "web" rollout to finish: 1 out of 2 new replicas have been '
        "updated..."),
        ('Waiting for deployment "web" rollout to finish: 1 old replicas are pending '
        "termination..."),
        'deployment "web" successfully rolled out',
    ]
