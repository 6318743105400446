"""``get``: tables, output formats, selectors, namespaces, errors, and ``-w``."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import yaml

import kvstore
from controllers.api import Clientset
from kvstore.clock import FakeClock
from runtime.cli.get import Options, watch_rows

from .conftest import OPTIONS, START, Env
from .samples import deployment, node, pod


def _seed(env: Env) -> None:
    async def go(api: Clientset) -> None:
        await api.resource("deploy").create(deployment("web"))
        env.clock.advance(60)
        await api.resource("pods").create(pod("web-1", labels={"app": "web"}))
        await api.resource("pods").create(pod("db-1", labels={"app": "db"}, node="n1"))
        await api.resource("ns").create({"metadata": {"name": "other"}})
        await api.resource("pods").create(pod("web-1", namespace="other"))
        await api.resource("nodes").create(node("n1"))
    env.run(go)
    env.clock.advance(125)


def test_tables_with_ages(env: Env) -> None:
    _seed(env)
    r = env.invoke("get", "pods")
    assert r.exit_code == 0
    assert r.stdout.splitlines() == [
        "NAME    READY   STATUS    RESTARTS   AGE",
        "db-1    0/1     Pending   0          2m5s",
        "web-1   0/1     Pending   0          2m5s",
    ]
    r = env.invoke("get", "deploy")
    assert r.stdout.splitlines() == ["NAME   READY   UP-TO-DATE   AVAILABLE   AGE",
                                     "web    0/1     0            0           3m5s"]
    r = env.invoke("get", "no")
    assert r.stdout.splitlines() == ["NAME   STATUS   ROLES    AGE    VERSION",
                                     "n1     Ready    worker   2m5s   v1.30.0"]


def test_namespaces_and_all_namespaces(env: Env) -> None:
    _seed(env)
    r = env.invoke("get", "po", "-n", "other")
    assert r.stdout.splitlines()[1].split()[0] == "web-1"
    assert len(r.stdout.splitlines()) == 2
    r = env.invoke("get", "pods", "-A")
    assert r.stdout.splitlines() == [
        "NAMESPACE   NAME    READY   STATUS    RESTARTS   AGE",
        "default     db-1    0/1     Pending   0          2m5s",
        "default     web-1   0/1     Pending   0          2m5s",
        "other       web-1   0/1     Pending   0          2m5s",
    ]
    r = env.invoke("get", "ns")
    assert [line.split()[0] for line in r.stdout.splitlines()] == ["NAME", "default", "other"]


def test_several_kinds_and_all(env: Env) -> None:
    _seed(env)
    r = env.invoke("get", "deploy,po")
    assert r.stdout.splitlines() == [
        "NAME                  READY   UP-TO-DATE   AVAILABLE   AGE",
        "deployment.apps/web   0/1     0            0           3m5s",
        "",
        "NAME        READY   STATUS    RESTARTS   AGE",
        "pod/db-1    0/1     Pending   0          2m5s",
        "pod/web-1   0/1     Pending   0          2m5s",
    ]
    r = env.invoke("get", "all")
    names = [line.split()[0] for line in r.stdout.splitlines() if line]
    assert names == ["NAME", "pod/db-1", "pod/web-1", "NAME", "deployment.apps/web"]
    r = env.invoke("get", "deploy/web", "pod/db-1", "-o", "name")
    assert r.stdout.splitlines() == ["deployment.apps/web", "pod/db-1"]


def test_output_formats(env: Env) -> None:
    _seed(env)
    r = env.invoke("get", "deployment", "web", "-o", "yaml")
    obj = yaml.safe_load(r.stdout)
    assert obj["kind"] == "Deployment" and obj["metadata"]["name"] == "web"
    r = env.invoke("get", "pods", "-o", "json")
    lst = json.loads(r.stdout)
    assert lst["kind"] == "List"
    assert [p["metadata"]["name"] for p in lst["items"]] == ["db-1", "web-1"]
    r = env.invoke("get", "pods", "-o", "wide")
    assert r.stdout.splitlines()[0].endswith(
        "AGE    IP       NODE     NOMINATED NODE   READINESS GATES")
    assert r.stdout.splitlines()[1].split()[5:7] == ["<none>", "n1"]
    r = env.invoke("get", "pods", "--show-labels")
    assert r.stdout.splitlines()[1].endswith("app=db")


def test_selectors(env: Env) -> None:
    _seed(env)
    r = env.invoke("get", "pods", "-l", "app=web", "-o", "name")
    assert r.stdout.splitlines() == ["pod/web-1"]
    r = env.invoke("get", "pods", "-l", "app!=web", "-o", "name")
    assert r.stdout.splitlines() == ["pod/db-1"]
    r = env.invoke("get", "pods", "-A", "--field-selector", "spec.nodeName=n1", "-o", "name")
    assert r.stdout.splitlines() == ["pod/db-1"]
    r = env.invoke("get", "pods", "-l", "app=nothing")
    assert r.stdout == ""
    assert r.stderr == "No resources found in default namespace.\n"
    r = env.invoke("get", "pods", "-l", "app in (", "-o", "name")
    assert r.exit_code == 1 and r.stderr.startswith("Error from server (BadRequest)")


def test_errors(env: Env) -> None:
    _seed(env)
    r = env.invoke("get", "deploy", "nope")
    assert r.exit_code == 1
    assert r.stderr == 'Error from server (NotFound): deployments.apps "nope" not found\n'
    r = env.invoke("get", "pods", "web-1", "gone")
    assert r.exit_code == 1
    assert r.stdout.splitlines()[1].startswith("web-1")
    assert r.stderr == 'Error from server (NotFound): pods "gone" not found\n'
    r = env.invoke("get", "foo")
    assert r.exit_code == 1
    assert r.stderr == 'error: the server doesn\'t have a resource type "foo"\n'
    r = env.invoke("get", "deploy/web", "pods")
    assert r.exit_code == 1 and r.stderr.startswith("error: there is no need to specify")
    r = env.invoke("get", "pods", "web-1", "-A")
    assert r.exit_code == 1
    assert r.stderr == "error: a resource cannot be retrieved by name across all namespaces\n"
    r = env.invoke("get", "jobs", "-A")
    assert r.stderr == "No resources found\n" and r.exit_code == 0


def test_registered_on_steer() -> None:
    from runtime.cli import steer
    for name in ("apply", "get", "describe", "delete", "scale", "set", "label", "rollout",
                 "logs"):
        assert name in steer.commands


def test_remote_without_a_cluster(tmp_path: Path, monkeypatch: object) -> None:
    from click.testing import CliRunner

    from runtime.cli import steer
    r = CliRunner(env={"STEER_ENDPOINTS": ""}).invoke(
        steer, ["--data-dir", str(tmp_path), "get", "pods"])
    assert r.exit_code == 1
    assert r.stderr.startswith("error: no cluster found")


async def test_watch_prints_a_row_per_change(tmp_path: Path) -> None:
    clock = FakeClock(START)
    async with kvstore.open(str(tmp_path / "store"), options=OPTIONS) as kv:
        api = Clientset(kv, clock=clock, rng=random.Random(3))
        pods = api.resource("pods")
        first = await pods.create(pod("a"))
        lines: list[str] = []
        opts = Options(None, False, "", None, None)
        task = asyncio.create_task(watch_rows(
            api, pods.kind, opts, resource_version=first["metadata"]["resourceVersion"],
            name=None, widths=[4, 5, 7, 8, 3], emit=lines.append, max_events=3))
        clock.advance(30)
        await pods.create(pod("a-much-longer-name"))
        b = await pods.get("a", "")
        b["status"] = {"phase": "Running", "containerStatuses": [
            {"name": "main", "ready": True, "state": {"running": {}}, "restartCount": 0}]}
        await pods.update_status(b)
        await pods.delete("a", "")
        await asyncio.wait_for(task, 10)
    assert lines == [
        "a-much-longer-name   0/1     Pending   0          0s",
        "a      1/1     Running   0          30s",
        "a      1/1     Running   0          30s",
    ]


async def test_watch_without_a_table_prints_its_header_first(tmp_path: Path) -> None:
    async with kvstore.open(str(tmp_path / "store"), options=OPTIONS) as kv:
        api = Clientset(kv, clock=FakeClock(START), rng=random.Random(3))
        deploys = api.resource("deploy")
        lines: list[str] = []
        opts = Options(None, False, "", None, None)
        task = asyncio.create_task(watch_rows(
            api, deploys.kind, opts, resource_version="", name="web", widths=[],
            emit=lines.append, max_events=1))
        await deploys.create(deployment("api", app="api"))
        await deploys.create(deployment("web"))
        await asyncio.wait_for(task, 10)
    assert lines == ["NAME   READY   UP-TO-DATE   AVAILABLE   AGE",
                     "web    0/1     0            0           0s"]
