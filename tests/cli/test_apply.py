"""``apply``: the three-way merge as pure functions, then the command against a store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from controllers.api import Clientset, strategic_merge_patch
from runtime.cli.apply import (
    LAST_APPLIED,
    last_applied,
    three_way_patch,
    with_last_applied,
)

from .conftest import Env
from .samples import deployment


def _containers(*pairs: tuple[str, str], **extra: Any) -> list[dict[str, Any]]:
    return [{"name": n, "image": i, **extra} for n, i in pairs]


def _dep(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {**spec, "template": {"spec": {"containers": containers}}}}


def test_field_removed_from_the_config_is_removed_from_live() -> None:
    original = {"metadata": {"name": "a", "labels": {"app": "w", "tier": "fe"}},
                "spec": {"replicas": 3, "paused": False}}
    modified = {"metadata": {"name": "a", "labels": {"app": "w"}}, "spec": {"replicas": 3}}
    live = {"metadata": {"name": "a", "labels": {"app": "w", "tier": "fe"}, "uid": "u"},
            "spec": {"replicas": 3, "paused": False}}
    patch = three_way_patch(original, modified, live)
    assert patch == {"metadata": {"labels": {"tier": None}}, "spec": {"paused": None}}
    assert strategic_merge_patch(live, patch) == {
        "metadata": {"name": "a", "labels": {"app": "w"}, "uid": "u"}, "spec": {"replicas": 3}}


def test_fields_set_by_others_are_kept() -> None:
    original = {"spec": {"replicas": 2}}
    modified = {"spec": {"replicas": 2}}
    live = {"spec": {"replicas": 5, "strategy": {"type": "Recreate"}},
            "metadata": {"annotations": {"other": "x"}}}
    patch = three_way_patch(original, modified, live)
    # replicas changed by someone else: the config still says 2, so it is set back;
    # strategy and the annotation were never applied, so they stay.
    assert patch == {"spec": {"replicas": 2}}
    merged = strategic_merge_patch(live, patch)
    assert merged["spec"]["strategy"] == {"type": "Recreate"}
    assert merged["metadata"]["annotations"] == {"other": "x"}


def test_without_a_last_applied_configuration_nothing_is_removed() -> None:
    live = {"spec": {"replicas": 1, "paused": True}}
    assert three_way_patch(None, {"spec": {"replicas": 2}}, live) == {"spec": {"replicas": 2}}


def test_containers_are_merged_by_name() -> None:
    original = _dep(_containers(("web", "nginx:1"), ("side", "envoy:1"), ("old", "x:1")))
    modified = _dep(_containers(("web", "nginx:2"), ("side", "envoy:1"), ("new", "y:1")))
    live = _dep([{"name": "side", "image": "envoy:1", "imagePullPolicy": "Always"},
                 {"name": "web", "image": "nginx:1", "imagePullPolicy": "IfNotPresent"},
                 {"name": "old", "image": "x:1"},
                 {"name": "injected", "image": "proxy:1"}])
    patch = three_way_patch(original, modified, live)
    assert patch["spec"]["template"]["spec"]["containers"] == [
        {"name": "old", "$patch": "delete"},
        {"name": "web", "image": "nginx:2"},
        {"name": "new", "image": "y:1"},
    ]
    merged = strategic_merge_patch(live, patch)
    assert merged["spec"]["template"]["spec"]["containers"] == [
        {"name": "side", "image": "envoy:1", "imagePullPolicy": "Always"},
        {"name": "web", "image": "nginx:2", "imagePullPolicy": "IfNotPresent"},
        {"name": "injected", "image": "proxy:1"},
        {"name": "new", "image": "y:1"},
    ]


def test_fields_inside_a_container_and_env_by_name() -> None:
    original = _dep([{"name": "web", "image": "a", "args": ["-v"],
                      "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}])
    modified = _dep([{"name": "web", "image": "a",
                      "env": [{"name": "A", "value": "9"}]}])
    live = _dep([{"name": "web", "image": "a", "args": ["-v"], "tty": True,
                  "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"},
                          {"name": "C", "value": "3"}]}])
    merged = strategic_merge_patch(live, three_way_patch(original, modified, live))
    assert merged["spec"]["template"]["spec"]["containers"] == [
        {"name": "web", "image": "a", "tty": True,
         "env": [{"name": "A", "value": "9"}, {"name": "C", "value": "3"}]}]


def test_unkeyed_lists_are_replaced_whole() -> None:
    original = {"spec": {"args": ["a", "b"]}}
    modified = {"spec": {"args": ["a"]}}
    live = {"spec": {"args": ["a", "b"]}}
    assert three_way_patch(original, modified, live) == {"spec": {"args": ["a"]}}
    assert three_way_patch(modified, modified, {"spec": {"args": ["a"]}}) == {}


def test_last_applied_annotation_round_trip() -> None:
    config: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "c", "annotations": {"team": "x", LAST_APPLIED: "stale"}},
              "data": {"k": "v"}}
    modified = with_last_applied(config)
    notes = modified["metadata"]["annotations"]
    assert notes["team"] == "x"
    recorded = json.loads(notes[LAST_APPLIED])
    assert recorded == {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"},
                        "metadata": {"name": "c", "annotations": {"team": "x"}}}
    assert last_applied(modified) == recorded
    assert last_applied({"metadata": {"annotations": {LAST_APPLIED: "{not json"}}}) is None
    assert config["metadata"]["annotations"][LAST_APPLIED] == "stale"  # input untouched


# -- the command --------------------------------------------------------------------------
def _yaml_deployment(image: str, *, extra_label: str = "", replicas: int = 2) -> str:
    labels = "    app: web\n" + (f"    {extra_label}\n" if extra_label else "")
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
{labels}spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: {image}
"""


CONFIGMAP = """---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: fast
"""


def test_apply_creates_configures_and_reports_unchanged(env: Env, tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_text(_yaml_deployment("nginx:1", extra_label="tier: fe") + CONFIGMAP)
    r = env.invoke("apply", "-f", str(f))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == ["deployment.apps/web created", "configmap/settings created"]

    r = env.invoke("apply", "-f", str(f))
    assert r.stdout.splitlines() == ["deployment.apps/web unchanged",
                                     "configmap/settings unchanged"]

    # Someone else scales it and adds an annotation; the config drops a label, bumps the image.
    async def meddle(api: Clientset) -> None:
        await api.resource("deploy").patch(
            "web", "default", {"metadata": {"annotations": {"owner": "ops"}},
                               "spec": {"minReadySeconds": 5}})
    env.run(meddle)
    f.write_text(_yaml_deployment("nginx:2") + CONFIGMAP)
    r = env.invoke("apply", "-f", str(f))
    assert r.stdout.splitlines() == ["deployment.apps/web configured",
                                     "configmap/settings unchanged"]
    live = env.run(lambda api: api.resource("deploy").get("web", "default"))
    assert live["metadata"]["labels"] == {"app": "web"}
    assert live["metadata"]["annotations"]["owner"] == "ops"
    assert live["spec"]["minReadySeconds"] == 5
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    assert live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert json.loads(live["metadata"]["annotations"][LAST_APPLIED])["spec"]["template"][
        "spec"]["containers"][0]["image"] == "nginx:2"


def test_apply_a_directory_json_and_stdin(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "manifests"
    d.mkdir()
    (d / "b.json").write_text(json.dumps(deployment("api", app="api")))
    (d / "a.yml").write_text(CONFIGMAP)
    (d / "notes.txt").write_text("not a manifest")
    r = env.invoke("apply", "-f", str(d))
    assert r.stdout.splitlines() == ["configmap/settings created", "deployment.apps/api created"]
    listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}}]})
    r = env.invoke("apply", "-f", "-", "-n", "kube-system", input=listed)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "configmap/other created\n"
    cm = env.run(lambda api: api.resource("cm").get("other", "kube-system"))
    assert cm["metadata"]["namespace"] == "kube-system"


def test_apply_errors(env: Env, tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n")
    r = env.invoke("apply", "-f", str(f))
    assert r.exit_code == 1
    assert 'no matches for kind "Widget" in version "example.com/v1"' in r.stderr
    r = env.invoke("apply", "-f", str(tmp_path / "missing.yaml"))
    assert r.exit_code == 1 and "does not exist" in r.stderr
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: a\n")
    r = env.invoke("apply", "-f", str(f), "-n", "b")
    assert r.exit_code == 1
    assert 'the namespace from the provided object "a" does not match the namespace "b"' \
        in r.stderr
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers: []\n")
    r = env.invoke("apply", "-f", str(f))
    assert r.exit_code == 1
    assert r.stderr.startswith('Error from server (Invalid): Pod "p" is invalid')
