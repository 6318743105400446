"""``patch``: strategic (default) and merge patches from JSON or YAML, and kubectl's errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controllers.api import Clientset
from runtime.cli.patch import parse_patch
from runtime.cli.session import CommandError

from .conftest import Env
from .samples import deployment, node


def _seed(env: Env) -> None:
    async def go(api: Clientset) -> None:
        d = deployment("web", replicas=2)
        d["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})
        await api.resource("deploy").create(d)
        await api.resource("nodes").create(node("n1"))
    env.run(go)


def _live(env: Env, kind: str = "deploy", name: str = "web") -> dict[str, Any]:
    return env.run(lambda api: api.resource(kind).get(name, "default"))


def _containers(env: Env) -> list[dict[str, Any]]:
    return list(_live(env)["spec"]["template"]["spec"]["containers"])


def test_strategic_patch_merges_containers_by_name(env: Env) -> None:
    _seed(env)
    patch = ('{"spec":{"replicas":3,"template":{"spec":{"containers":'
             '[{"name":"web","image":"nginx:1.27"}]}}}}')
    r = env.invoke("patch", "deployment", "web", "-p", patch)
    assert (r.exit_code, r.stdout, r.stderr) == (0, "deployment.apps/web patched\n", "")
    assert _live(env)["spec"]["replicas"] == 3
    assert [(c["name"], c["image"]) for c in _containers(env)] == [("web", "nginx:1.27"),
                                                                   ("side", "busybox")]
    r = env.invoke("patch", "deploy/web", "-p", patch)
    assert (r.exit_code, r.stdout) == (0, "deployment.apps/web patched (no change)\n")


def test_merge_patch_replaces_lists_and_yaml_is_accepted(env: Env) -> None:
    _seed(env)
    patch = "spec:\n  template:\n    spec:\n      containers:\n      - {name: only, image: x:1}\n"
    r = env.invoke("patch", "deploy", "web", "--type", "merge", "-p", patch)
    assert (r.exit_code, r.stdout) == (0, "deployment.apps/web patched\n")
    assert [c["name"] for c in _containers(env)] == ["only"]
    # null removes a key in a merge patch.
    env.invoke("patch", "deploy", "web", "--type=merge", "-p",
               '{"metadata":{"labels":{"app":null}}}')
    assert "app" not in _live(env)["metadata"].get("labels", {})


def test_json_patch_applies_operations_in_order_and_can_be_conditional(env: Env) -> None:
    _seed(env)
    ops = ('[{"op": "replace", "path": "/spec/replicas", "value": 5},'
           ' {"op": "add", "path": "/metadata/labels/tier", "value": "fe"},'
           ' {"op": "remove", "path": "/spec/template/spec/containers/1"}]')
    r = env.invoke("patch", "deploy", "web", "--type", "json", "-p", ops)
    assert (r.exit_code, r.stdout, r.stderr) == (0, "deployment.apps/web patched\n", "")
    live = _live(env)
    assert live["spec"]["replicas"] == 5 and live["metadata"]["labels"]["tier"] == "fe"
    assert [c["name"] for c in _containers(env)] == ["web"]
    # A test of the resourceVersion makes it conditional: a stale one changes nothing.
    stale = ('[{"op": "test", "path": "/metadata/resourceVersion", "value": "1"},'
             ' {"op": "replace", "path": "/spec/replicas", "value": 9}]')
    r = env.invoke("patch", "deploy", "web", "--type", "json", "-p", stale)
    assert r.exit_code == 1 and "the JSON patch does not apply" in r.stderr
    assert _live(env)["spec"]["replicas"] == 5


def test_patch_cluster_scoped_status_and_file(env: Env, tmp_path: Path) -> None:
    _seed(env)
    r = env.invoke("patch", "node", "n1", "-p", '{"spec":{"unschedulable":true}}')
    assert (r.exit_code, r.stdout) == (0, "node/n1 patched\n")
    assert _live(env, "nodes", "n1")["spec"]["unschedulable"] is True
    f = tmp_path / "p.yaml"
    f.write_text("status: {readyReplicas: 2}\n")
    r = env.invoke("patch", "deploy/web", "--subresource", "status", "--type", "merge",
                   "--patch-file", str(f))
    assert (r.exit_code, r.stdout) == (0, "deployment.apps/web patched\n")
    assert _live(env)["status"]["readyReplicas"] == 2


@pytest.mark.parametrize(("args", "stderr"), [
    (("deploy", "web"),
     "error: must specify --patch or --patch-file containing the contents of the patch\n"),
    (("deploy", "web", "-p", "{}", "--type", "apply"),
     'error: --type must be one of [json merge strategic], not "apply"\n'),
    (("deploy", "web", "--type", "json", "-p", '[{"op":"remove","path":"/spec/paused"}]'),
     "Error from server (BadRequest): the JSON patch does not apply: can't remove a "
     "non-existent object 'paused'\n"),
    (("deploy", "web", "--type", "json", "-p", '{"spec": {}}'),
     "error: unable to parse '{\"spec\": {}}': a json patch must be a list of operations\n"),
    (("deploy", "-p", "{}"), "error: resource(s) were provided, but no name was specified\n"),
    (("deploy", "nope", "-p", "{}"),
     'Error from server (NotFound): deployments.apps "nope" not found\n'),
    (("deploy", "web", "-p", '{"spec":{"replicas":-1}}'), None),
])
def test_patch_errors(env: Env, args: tuple[str, ...], stderr: str | None) -> None:
    _seed(env)
    r = env.invoke("patch", *args)
    assert r.exit_code == 1
    if stderr is None:
        assert r.stderr.startswith('Error from server (Invalid): Deployment.apps "web" is invalid')
    else:
        assert r.stderr == stderr
    assert _live(env)["spec"]["replicas"] == 2


def test_parse_patch() -> None:
    assert parse_patch('{"a": {"b": 1}}', "merge") == {"a": {"b": 1}}
    assert parse_patch("a:\n  b: [1, 2]\n", "strategic") == {"a": {"b": [1, 2]}}
    with pytest.raises(CommandError, match="unable to parse"):
        parse_patch('{"a": ', "merge")
    with pytest.raises(CommandError, match="must be an object"):
        parse_patch("[1, 2]", "merge")
