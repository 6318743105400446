"""``wait``: conditions, deletion and JSONPath values followed on a watch; kubectl's errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from controllers.api import Clientset
from runtime.cli.session import CommandError
from runtime.cli.wait import Condition, parse_for, parse_timeout, wait_for

from .conftest import Env
from .samples import deployment, node, pod

# How long a helper waits before changing an object, so the change comes while the command is
# already following the object on its watch.
LATER = 0.05


def _condition(kind: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "status": status, **extra}


async def _set_status(api: Clientset, kind: str, name: str, status: dict[str, Any]) -> None:
    client = api.resource(kind)
    obj = await client.get(name, "default")
    obj["status"] = status
    await client.update_status(obj)


def _seed(env: Env) -> None:
    async def go(api: Clientset) -> None:
        await api.resource("deploy").create(deployment("web"))
        await _set_status(api, "deploy", "web", {"observedGeneration": 1, "conditions": [
            _condition("Available", "False"), _condition("Progressing", "True")]})
        for name, app in (("web-1", "web"), ("web-2", "web")):
            await api.resource("pods").create(pod(name, labels={"app": app}, node="n1"))
        await api.resource("nodes").create(node("n1"))
    env.run(go)


Change = Callable[[Clientset], Awaitable[None]]


def _later(change: Change) -> Change:
    async def run(api: Clientset) -> None:
        await asyncio.sleep(LATER)
        await change(api)
    return run


def test_condition_met_while_waiting(env: Env) -> None:
    _seed(env)

    async def available(api: Clientset) -> None:
        await _set_status(api, "deploy", "web", {"observedGeneration": 1, "conditions": [
            _condition("Available", "True")]})

    env.beside.append(_later(available))
    r = env.invoke("wait", "deploy/web", "--for=condition=Available", "--timeout", "10s")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "deployment.apps/web condition met\n", "")


def test_condition_values_and_timeout(env: Env) -> None:
    _seed(env)
    r = env.invoke("wait", "deployment", "web", "--for", "condition=available=FALSE")
    assert (r.exit_code, r.stdout) == (0, "deployment.apps/web condition met\n")
    r = env.invoke("wait", "deploy/web", "--for=condition=Available", "--timeout", "100ms")
    assert r.exit_code == 1
    assert r.stderr == "error: timed out waiting for the condition on deployments/web\n"
    r = env.invoke("wait", "deploy/web", "--for=condition=Available", "--timeout", "0")
    assert (r.exit_code, r.stderr) == (1, "error: condition not met for deployments/web\n")
    r = env.invoke("wait", "deploy/nope", "--for=condition=Available")
    assert (r.exit_code, r.stderr) == (
        1, 'Error from server (NotFound): deployments.apps "nope" not found\n')


def test_condition_of_an_older_generation_does_not_count(env: Env) -> None:
    _seed(env)

    async def go(api: Clientset) -> None:
        await api.resource("deploy").patch("web", "default", {"spec": {"replicas": 3}})
        await _set_status(api, "deploy", "web", {"observedGeneration": 1, "conditions": [
            _condition("Available", "True")]})
    env.run(go)
    r = env.invoke("wait", "deploy/web", "--for=condition=Available", "--timeout", "0")
    assert r.exit_code == 1

    async def caught_up(api: Clientset) -> None:
        await _set_status(api, "deploy", "web", {"observedGeneration": 2, "conditions": [
            _condition("Available", "True")]})
    env.beside.append(_later(caught_up))
    r = env.invoke("wait", "deploy/web", "--for=condition=Available", "--timeout", "10s")
    assert (r.exit_code, r.stdout) == (0, "deployment.apps/web condition met\n")


def test_wait_for_delete(env: Env) -> None:
    _seed(env)

    async def remove(api: Clientset) -> None:
        await api.resource("pods").delete("web-1", "default", grace_period_seconds=0)

    env.beside.append(_later(remove))
    r = env.invoke("wait", "--for=delete", "pod/web-1", "--timeout=10s")
    assert (r.exit_code, r.stdout) == (0, "pod/web-1 condition met\n")
    env.beside.clear()
    # Already gone: nothing to wait for, nothing to say.
    r = env.invoke("wait", "--for=delete", "pod/web-1")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "")
    r = env.invoke("wait", "--for=delete", "pod/web-2", "--timeout", "100ms")
    assert (r.exit_code, r.stderr) == (
        1, "error: timed out waiting for the condition on pods/web-2\n")

    async def remove_selected(api: Clientset) -> None:
        await api.resource("pods").delete("web-2", "default", grace_period_seconds=0)
        await api.resource("pods").delete("web-3", "default")

    env.run(lambda api: api.resource("pods").create(pod("web-3", labels={"app": "web"})))
    env.beside.append(_later(remove_selected))
    r = env.invoke("wait", "--for=delete", "pods", "-l", "app=web", "--timeout", "10s")
    assert (r.exit_code, r.stdout) == (0, "pod/web-2 condition met\npod/web-3 condition met\n")


def test_an_object_listed_then_deleted_counts_as_deleted(env: Env) -> None:
    _seed(env)

    async def go(api: Clientset) -> tuple[Any, Any]:
        pods = api.resource("pods")
        listed = (await pods.list("default", label_selector="app=web"))["items"][0]
        await pods.delete("web-1", "default", grace_period_seconds=0)
        delete = Condition("delete")
        return (await wait_for(pods, "web-1", "default", delete, seen=listed),
                await wait_for(pods, "web-1", "default", delete))

    listed, unseen = env.run(go)
    assert listed["metadata"]["name"] == "web-1"
    assert unseen is None


def test_wait_for_jsonpath(env: Env) -> None:
    _seed(env)

    async def running(api: Clientset) -> None:
        await _set_status(api, "pods", "web-1", {"phase": "Running", "conditions": [
            _condition("Ready", "True")]})

    env.beside.append(_later(running))
    r = env.invoke("wait", "pod/web-1", "--for=jsonpath={.status.phase}=Running",
                   "--timeout", "10s")
    assert (r.exit_code, r.stdout) == (0, "pod/web-1 condition met\n")
    env.beside.clear()
    for spec in ("jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}'=True",
                 "jsonpath=status.phase='Running'", "jsonpath={.status.conditions}"):
        r = env.invoke("wait", "pod/web-1", f"--for={spec}", "--timeout", "0")
        assert (r.exit_code, r.stdout) == (0, "pod/web-1 condition met\n"), spec
    r = env.invoke("wait", "pod/web-2", "--for=jsonpath={.status.phase}=Running",
                   "--timeout", "100ms")
    assert r.stderr == "error: timed out waiting for the condition on pods/web-2\n"
    r = env.invoke("wait", "pod/web-1", "--for=jsonpath={.status}=x")
    assert r.stderr == "error: jsonpath leads to a nested object or list which is not supported\n"
    r = env.invoke("wait", "pod/web-1", "--for=jsonpath={.metadata.*}=x")
    assert r.stderr == "error: given jsonpath expression matches more than one value\n"


def test_wait_by_selector_and_cluster_scoped(env: Env) -> None:
    _seed(env)

    async def both_running(api: Clientset) -> None:
        for name in ("web-1", "web-2"):
            await _set_status(api, "pods", name, {"phase": "Running"})
    env.run(both_running)
    r = env.invoke("wait", "pods", "-l", "app=web", "--for=jsonpath={.status.phase}=Running")
    assert r.stdout.splitlines() == ["pod/web-1 condition met", "pod/web-2 condition met"]
    r = env.invoke("wait", "pods", "--all", "--for=jsonpath={.status.phase}=Running")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 2
    r = env.invoke("wait", "pods", "-l", "app=none", "--for=condition=Ready")
    assert (r.exit_code, r.stderr) == (1, "error: no matching resources found\n")
    r = env.invoke("wait", "pods", "-l", "app=none", "--for=delete")
    assert (r.exit_code, r.stdout) == (0, "")
    r = env.invoke("wait", "node/n1", "--for=condition=Ready")
    assert (r.exit_code, r.stdout) == (0, "node/n1 condition met\n")
    r = env.invoke("wait", "pods", "--for=delete")
    assert r.stderr == "error: resource(s) were provided, but no name was specified\n"


@pytest.mark.parametrize(("text", "message"), [
    ("", 'unrecognized condition: ""'),
    ("ready", 'unrecognized condition: "ready"'),
    ("jsonpath={.status.phase}=", "jsonpath wait value cannot be empty"),
    ("jsonpath={.status.phase}x", "jsonpath wait format must be"),
    ("jsonpath=", "jsonpath expression cannot be empty"),
    ("jsonpath='{.a}=1", "jsonpath wait format must be"),
    ("jsonpath={.a=1", "jsonpath wait format must be"),
])
def test_parse_for_errors(text: str, message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        parse_for(text)


def test_parse_for() -> None:
    assert parse_for("Delete") == Condition("delete")
    assert parse_for("condition=Ready") == Condition("condition", "Ready", "true")
    assert parse_for("condition=Ready=false") == Condition("condition", "Ready", "false")
    cond = parse_for("jsonpath={.status.readyReplicas}=3")
    assert cond.value == "3" and cond.is_met({"status": {"readyReplicas": 3}})
    assert not cond.is_met({"status": {"readyReplicas": 2}})
    assert not cond.is_met({"status": {}})
    cond = parse_for("jsonpath={.a[?(@.k==\"x=y\")].v}=1")
    assert cond.is_met({"a": [{"k": "x=y", "v": 1}]})


def test_parse_timeout() -> None:
    assert parse_timeout("30s") == 30.0
    assert parse_timeout("0") == 0.0
    assert parse_timeout("-1s") == 7 * 24 * 3600.0
