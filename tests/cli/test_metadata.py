"""``label`` and ``annotate``: one parser and one loop, kubectl's words for each."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.api import Clientset
from runtime.cli.metadata import PairArgs, parse_pair_args, update_annotations
from runtime.cli.session import CommandError

from .conftest import Env
from .samples import deployment, pod


def _seed(env: Env) -> None:
    async def go(api: Clientset) -> None:
        await api.resource("deploy").create(deployment("web", replicas=2))
        for name, app in (("web-1", "web"), ("web-2", "web"), ("db-1", "db")):
            await api.resource("pods").create(pod(name, labels={"app": app}))
    env.run(go)


def _meta(env: Env, kind: str, name: str) -> dict[str, Any]:
    live = env.run(lambda api: api.resource(kind).get(name, "default"))
    return dict(live["metadata"])


def test_label(env: Env) -> None:
    _seed(env)
    r = env.invoke("label", "pods", "web-1", "tier=fe", "team=a")
    assert (r.exit_code, r.stdout) == (0, "pod/web-1 labeled\n")
    r = env.invoke("label", "pod", "web-1", "tier=be")
    assert r.exit_code == 1
    assert r.stderr == "error: 'tier' already has a value (fe), and --overwrite is false\n"
    r = env.invoke("label", "pod", "web-1", "tier=be", "--overwrite")
    assert r.stdout == "pod/web-1 labeled\n"
    r = env.invoke("label", "pod/web-1", "team-")
    assert r.stdout == "pod/web-1 unlabeled\n"
    r = env.invoke("label", "pod/web-1", "team-")
    assert r.stdout == 'label "team" not found.\npod/web-1 not labeled\n'
    assert _meta(env, "pods", "web-1")["labels"] == {"app": "web", "tier": "be"}
    r = env.invoke("label", "pods", "-l", "app=web", "ring=0")
    assert r.stdout.splitlines() == ["pod/web-1 labeled", "pod/web-2 labeled"]
    r = env.invoke("label", "pod", "web-1", "bad key=x")
    assert r.exit_code == 1 and r.stderr.startswith("Error from server (Invalid)")
    r = env.invoke("label", "pod", "web-1", "x=1", "x-")
    assert r.stderr == "error: can not both modify and remove a label in the same command: x\n"


def test_annotate(env: Env) -> None:
    _seed(env)
    r = env.invoke("annotate", "deploy", "web", "owner=ops", "ticket=42")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "deployment.apps/web annotated\n", "")
    assert _meta(env, "deploy", "web")["annotations"] == {"owner": "ops", "ticket": "42"}
    # Setting the value a key already has is no overwrite.
    r = env.invoke("annotate", "deploy/web", "owner=ops")
    assert (r.exit_code, r.stdout) == (0, "deployment.apps/web annotated\n")
    r = env.invoke("annotate", "deploy/web", "owner=dev", "ticket=7")
    assert r.exit_code == 1
    assert r.stderr == ("error: --overwrite is false but found the following declared "
                        "annotation(s): 'owner' already has a value (ops); 'ticket' already "
                        "has a value (42)\n")
    r = env.invoke("annotate", "deploy/web", "owner=dev", "--overwrite")
    assert r.exit_code == 0
    assert _meta(env, "deploy", "web")["annotations"]["owner"] == "dev"
    # The change cause may always be replaced; removing a missing key is silent.
    env.invoke("annotate", "deploy/web", "kubernetes.io/change-cause=first")
    r = env.invoke("annotate", "deploy/web", "kubernetes.io/change-cause=second", "gone-")
    assert (r.exit_code, r.stdout) == (0, "deployment.apps/web annotated\n")
    r = env.invoke("annotate", "deploy/web", "owner-", "ticket-", "kubernetes.io/change-cause-")
    assert r.exit_code == 0
    assert "annotations" not in _meta(env, "deploy", "web")
    # Annotations change no spec: the generation stays.
    assert _meta(env, "deploy", "web")["generation"] == 1


def test_annotate_by_selector_and_all(env: Env) -> None:
    _seed(env)
    r = env.invoke("annotate", "pods", "-l", "app=web", "note=x")
    assert r.stdout.splitlines() == ["pod/web-1 annotated", "pod/web-2 annotated"]
    assert "annotations" not in _meta(env, "pods", "db-1")
    r = env.invoke("annotate", "pods", "--all", "sweep=1")
    assert r.stdout.splitlines() == ["pod/db-1 annotated", "pod/web-1 annotated",
                                     "pod/web-2 annotated"]
    r = env.invoke("annotate", "pods", "note=y")
    assert r.exit_code == 1
    assert r.stderr == "error: resource(s) were provided, but no name was specified\n"


def test_annotate_errors(env: Env) -> None:
    _seed(env)
    r = env.invoke("annotate", "pod", "web-1")
    assert (r.exit_code, r.stderr) == (1, "error: at least one annotation update is required\n")
    r = env.invoke("annotate", "pod", "web-1", "a=1", "b=2", "a-", "b-")
    assert r.stderr == ("error: can not both modify and remove the following annotation(s) in "
                        "the same command: a, b\n")
    r = env.invoke("annotate", "pod", "a=1", "web-1")
    assert r.stderr == "error: all resources must be specified before annotation changes: web-1\n"
    r = env.invoke("annotate", "pod", "nope", "a=1")
    assert r.stderr == 'Error from server (NotFound): pods "nope" not found\n'
    r = env.invoke("annotate", "pod", "web-1", "bad key=1")
    assert r.exit_code == 1 and r.stderr.startswith("Error from server (Invalid)")


def test_parse_pair_args() -> None:
    assert parse_pair_args(("pod", "a", "x=1", "y-", "z=a=b"), "label") == PairArgs(
        ["pod", "a"], {"x": "1", "z": "a=b"}, ["y"])
    assert parse_pair_args(("pod/a", "-", "x="), "label") == PairArgs(["pod/a", "-"], {"x": ""},
                                                                      [])
    with pytest.raises(CommandError, match="before label changes: b"):
        parse_pair_args(("pod", "a", "x=1", "b"), "label")


def test_update_annotations_keeps_other_metadata() -> None:
    obj: dict[str, Any] = {"metadata": {"name": "a", "labels": {"x": "1"},
                                        "annotations": {"k": "v"}}}
    assert not update_annotations(obj, PairArgs(add={"k": "v"}), overwrite=False)
    assert update_annotations(obj, PairArgs(add={"n": "1"}, remove=["k"]), overwrite=False)
    assert obj["metadata"] == {"name": "a", "labels": {"x": "1"}, "annotations": {"n": "1"}}
