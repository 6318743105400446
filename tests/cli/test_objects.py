"""``delete``, ``scale`` and ``set image``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controllers.api import Clientset, NotFound
from runtime.cli.objects import update_images
from runtime.cli.session import CommandError

from .conftest import Env
from .samples import deployment, pod


def _seed(env: Env) -> None:
    async def go(api: Clientset) -> None:
        await api.resource("deploy").create(deployment("web", replicas=2))
        for name, app in (("web-1", "web"), ("web-2", "web"), ("db-1", "db")):
            await api.resource("pods").create(pod(name, labels={"app": app}))
        await api.resource("pods").create(pod("running", node="n1"))
    env.run(go)


def _exists(env: Env, kind: str, name: str) -> bool:
    async def go(api: Clientset) -> bool:
        try:
            await api.resource(kind).get(name, "default")
        except NotFound:
            return False
        return True
    return env.run(go)


def test_delete_by_name_selector_and_file(env: Env, tmp_path: Path) -> None:
    _seed(env)
    r = env.invoke("delete", "pod", "web-1")
    assert (r.exit_code, r.stdout) == (0, 'pod "web-1" deleted\n')
    assert not _exists(env, "pods", "web-1")
    r = env.invoke("delete", "pods", "-l", "app=db")
    assert r.stdout == 'pod "db-1" deleted\n'
    f = tmp_path / "d.yaml"
    f.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n")
    r = env.invoke("delete", "-f", str(f))
    assert r.stdout == 'deployment.apps "web" deleted\n'
    assert not _exists(env, "deploy", "web")
    r = env.invoke("delete", "pod", "web-1")
    assert r.exit_code == 1
    assert r.stderr == 'Error from server (NotFound): pods "web-1" not found\n'
    r = env.invoke("delete", "pod", "web-1", "--ignore-not-found")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "")
    r = env.invoke("delete", "pods")
    assert r.exit_code == 1 and "no name was specified" in r.stderr
    r = env.invoke("delete", "pods", "--all", "--grace-period", "0")
    assert r.stdout.splitlines() == ['pod "running" deleted', 'pod "web-2" deleted']
    r = env.invoke("delete", "pods", "--all")
    assert (r.exit_code, r.stderr) == (0, "No resources found\n")


def test_delete_cascade_and_grace_period(env: Env) -> None:
    _seed(env)
    r = env.invoke("delete", "deploy/web", "--cascade=orphan")
    assert r.exit_code == 0
    live = env.run(lambda api: api.resource("deploy").get("web", "default"))
    assert live["metadata"]["finalizers"] == ["orphan"]
    assert live["metadata"]["deletionTimestamp"]
    # A scheduled pod gets its grace period unless told otherwise.
    r = env.invoke("delete", "pod", "running", "--grace-period", "5")
    assert r.exit_code == 0
    live = env.run(lambda api: api.resource("pods").get("running", "default"))
    assert live["metadata"]["deletionGracePeriodSeconds"] == 5
    env.invoke("delete", "pod", "running", "--grace-period", "0")
    assert not _exists(env, "pods", "running")


def test_delete_foreground(env: Env) -> None:
    _seed(env)
    env.invoke("delete", "deployment", "web", "--cascade", "foreground")
    live = env.run(lambda api: api.resource("deploy").get("web", "default"))
    assert live["metadata"]["finalizers"] == ["foregroundDeletion"]


def test_scale(env: Env) -> None:
    _seed(env)
    r = env.invoke("scale", "deploy/web", "--replicas", "5")
    assert (r.exit_code, r.stdout) == (0, "deployment.apps/web scaled\n")
    r = env.invoke("scale", "deployment", "web", "--replicas", "3", "--current-replicas", "5")
    assert r.exit_code == 0
    assert env.run(lambda api: api.resource("deploy").get("web", ""))["spec"]["replicas"] == 3
    r = env.invoke("scale", "deploy/web", "--replicas", "1", "--current-replicas", "2")
    assert r.exit_code == 1 and r.stderr == "error: Expected replicas to be 2, was 3\n"
    r = env.invoke("scale", "pod/web-1", "--replicas", "2")
    assert r.exit_code == 1 and "cannot be scaled" in r.stderr
    r = env.invoke("scale", "deploy/nope", "--replicas", "2")
    assert r.stderr == 'Error from server (NotFound): deployments.apps "nope" not found\n'


def test_set_image(env: Env) -> None:
    _seed(env)
    r = env.invoke("set", "image", "deploy/web", "web=nginx:1.27")
    assert (r.exit_code, r.stdout) == (0, "deployment.apps/web image updated\n")
    live = env.run(lambda api: api.resource("deploy").get("web", ""))
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert live["metadata"]["generation"] == 2
    r = env.invoke("set", "image", "deploy/web", "web=nginx:1.27")
    assert (r.exit_code, r.stdout) == (0, "")
    r = env.invoke("set", "image", "deployment", "web", "sidecar=x")
    assert r.exit_code == 1 and r.stderr == 'error: unable to find container named "sidecar"\n'


def test_update_images_everywhere_a_pod_template_lives() -> None:
    cron: dict[str, Any] = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}}}}}}
    assert update_images(cron, {"*": "2"})
    spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert [c["image"] for c in spec["containers"]] == ["2", "2"]
    p: dict[str, Any] = {"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "1"}],
                                 "initContainers": [{"name": "init", "image": "1"}]}}
    assert update_images(p, {"init": "3"})
    assert p["spec"]["initContainers"][0]["image"] == "3"
    assert not update_images(p, {"a": "1"})
    with pytest.raises(CommandError):
        update_images({"kind": "ConfigMap", "data": {}}, {"a": "1"})
