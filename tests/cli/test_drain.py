"""``cordon``, ``uncordon`` and ``drain``: kubectl's filters, lines and waiting for pods to go."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from controllers.api import Clientset, NotFound, WatchEventType
from runtime.cli.drain import DrainOptions, classify, go_duration, refusals, warnings

from .conftest import Env
from .samples import node, pod

DS_FATAL = ("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): "
            "default/agent-x")
LOCAL_FATAL = ("cannot delete Pods with local storage (use --delete-emptydir-data to "
               "override): default/cache-1")
UNMANAGED_FATAL = ("cannot delete Pods that declare no controller (use --force to override): "
                   "default/solo")


def _owned(p: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    api_version = "apps/v1"
    p["metadata"]["ownerReferences"] = [{"apiVersion": api_version, "kind": kind, "name": name,
                                         "uid": f"uid-{name}", "controller": True}]
    return p


def _daemonset(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "a", "image": "x"}]}}}}


def _pods() -> list[dict[str, Any]]:
    cache = _owned(pod("cache-1", node="n1"), "ReplicaSet", "cache")
    cache["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    done = pod("done", node="n1")
    done["status"] = {"phase": "Succeeded"}
    static = pod("static-n1", node="n1")
    static["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    return [_owned(pod("agent-x", node="n1"), "DaemonSet", "agent"), cache, done,
            pod("solo", node="n1"), static, _owned(pod("web-1", node="n1"), "ReplicaSet", "web"),
            _owned(pod("web-2", node="n2"), "ReplicaSet", "web")]


def _seed(env: Env, pods: list[dict[str, Any]] | None = None) -> None:
    async def go(api: Clientset) -> None:
        for name in ("n1", "n2"):
            await api.resource("nodes").create(node(name))
        await api.resource("daemonsets").create(_daemonset("agent"))
        for p in _pods() if pods is None else pods:
            await api.resource("pods").create(p)
    env.run(go)


def _pod_names(env: Env) -> list[str]:
    lst = env.run(lambda api: api.resource("pods").list(None))
    return [p["metadata"]["name"] for p in lst["items"]]


def _unschedulable(env: Env, name: str = "n1") -> Any:
    return env.run(lambda api: api.resource("nodes").get(name))["spec"].get("unschedulable")


async def _kubelet(api: Clientset) -> None:
    """Removes each pod a little after it is marked for deletion, as a node's kubelet would."""
    pods = api.resource("pods")
    async with await pods.watch(None) as stream:
        async for ev in stream:
            m = ev.object["metadata"]
            if ev.type != WatchEventType.DELETED and m.get("deletionTimestamp"):
                # The containers take a moment to stop: the command must still be waiting.
                await asyncio.sleep(0.05)
                with contextlib.suppress(NotFound):  # already gone
                    await pods.delete(m["name"], m["namespace"], grace_period_seconds=0)


def test_cordon_and_uncordon(env: Env) -> None:
    _seed(env, [])
    r = env.invoke("cordon", "n1")
    assert (r.exit_code, r.stdout) == (0, "node/n1 cordoned\n")
    assert _unschedulable(env) is True
    assert env.invoke("cordon", "n1").stdout == "node/n1 already cordoned\n"
    r = env.invoke("uncordon", "n1")
    assert (r.exit_code, r.stdout) == (0, "node/n1 uncordoned\n")
    assert _unschedulable(env) is None
    assert env.invoke("uncordon", "n1").stdout == "node/n1 already uncordoned\n"
    r = env.invoke("cordon", "-l", "node-role.kubernetes.io/worker")
    assert r.stdout.splitlines() == ["node/n1 cordoned", "node/n2 cordoned"]
    r = env.invoke("cordon", "n9")
    assert (r.exit_code, r.stderr) == (1, 'Error from server (NotFound): nodes "n9" not found\n')
    r = env.invoke("uncordon")
    assert r.exit_code == 1 and r.stderr.startswith("error: USAGE: uncordon NODE [flags]")
    r = env.invoke("cordon", "n1", "-l", "a=b")
    assert r.stderr == "error: cannot specify both a node name and a --selector option\n"


def test_drain_refuses_daemonset_local_storage_and_unmanaged_pods(env: Env) -> None:
    _seed(env)
    before = _pod_names(env)
    r = env.invoke("drain", "n1")
    assert r.exit_code == 1
    assert r.stdout == "node/n1 cordoned\n"
    assert r.stderr.splitlines() == [
        f'error: unable to drain node "n1" due to error:[{DS_FATAL}, {LOCAL_FATAL}, '
        f"{UNMANAGED_FATAL}], continuing command...",
        "There are pending nodes to be drained:",
        " n1",
        DS_FATAL, LOCAL_FATAL, UNMANAGED_FATAL,
    ]
    assert _pod_names(env) == before
    assert _unschedulable(env) is True


def test_drain_with_every_override_evicts_what_it_may(env: Env) -> None:
    _seed(env)
    r = env.invoke("drain", "n1", "--ignore-daemonsets", "--delete-emptydir-data", "--force",
                   "--grace-period", "0")
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ("WARNING: ignoring DaemonSet-managed Pods: default/agent-x; deleting "
                        "Pods that declare no controller: default/solo\n")
    assert r.stdout.splitlines() == [
        "node/n1 cordoned",
        "evicting pod default/cache-1", "evicting pod default/done", "evicting pod default/solo",
        "evicting pod default/web-1",
        "pod/cache-1 evicted", "pod/done evicted", "pod/solo evicted", "pod/web-1 evicted",
        "node/n1 drained",
    ]
    # DaemonSet and mirror pods stay, and so does every pod of another node.
    assert _pod_names(env) == ["agent-x", "static-n1", "web-2"]


def test_drain_waits_for_the_kubelet_to_remove_pods(env: Env) -> None:
    _seed(env, [_owned(pod(f"web-{i}", node="n1"), "ReplicaSet", "web") for i in (1, 2)])
    env.beside.append(_kubelet)
    r = env.invoke("drain", "n1", "--timeout", "30s")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == ["node/n1 cordoned", "evicting pod default/web-1",
                                     "evicting pod default/web-2", "pod/web-1 evicted",
                                     "pod/web-2 evicted", "node/n1 drained"]
    # Drain returned only once the pods were gone (the kubelet stops with the command).
    assert _pod_names(env) == []


def test_drain_times_out_when_pods_do_not_go(env: Env) -> None:
    _seed(env, [_owned(pod("web-1", node="n1"), "ReplicaSet", "web")])
    r = env.invoke("drain", "n1", "--timeout", "100ms")
    assert r.exit_code == 1
    assert r.stdout == "node/n1 cordoned\nevicting pod default/web-1\n"
    err = ('error when waiting for pod "web-1" in namespace "default" to terminate: '
           "global timeout reached: 100ms")
    assert r.stderr.splitlines() == [
        f'There are pending pods in node "n1" when an error occurred: {err}',
        "pod/web-1",
        f'error: unable to drain node "n1" due to error:{err}, continuing command...',
        "There are pending nodes to be drained:",
        " n1",
        err,
    ]
    # Evicted, so marked for deletion with the pod's grace period; the kubelet never came.
    live = env.run(lambda api: api.resource("pods").get("web-1", "default"))
    assert live["metadata"]["deletionTimestamp"]


def test_drain_orphaned_daemonset_pod_needs_force(env: Env) -> None:
    _seed(env, [_owned(pod("ghost-x", node="n1"), "DaemonSet", "ghost")])
    r = env.invoke("drain", "n1", "--ignore-daemonsets")
    assert r.exit_code == 1
    assert r.stderr.splitlines()[-1] == ('cannot delete daemonsets.apps "ghost" not found: '
                                         "default/ghost-x")
    r = env.invoke("drain", "n1", "--force", "--disable-eviction", "--grace-period", "0")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == ["node/n1 already cordoned", "pod/ghost-x deleted",
                                     "node/n1 drained"]
    assert _pod_names(env) == []


def test_drain_pod_selector(env: Env) -> None:
    pods = [_owned(pod("a", node="n1", labels={"tier": "fe"}), "ReplicaSet", "a"),
            pod("b", node="n1", labels={"tier": "be"})]
    _seed(env, pods)
    r = env.invoke("drain", "n1", "--pod-selector", "tier=fe", "--grace-period", "0")
    assert r.exit_code == 0, r.stderr
    assert _pod_names(env) == ["b"]
    r = env.invoke("drain", "n1", "--pod-selector", "tier in (")
    assert r.stderr == "error: --pod-selector=<pod_selector> must be a valid label selector\n"


def _verdict(p: dict[str, Any], **flags: bool) -> tuple[bool, str, str]:
    v = classify(p, DrainOptions(**flags))
    return v.delete, v.reason, v.message


@pytest.mark.parametrize(("name", "flags", "expected"), [
    ("agent-x", {}, (False, "error", "DaemonSet-managed Pods (use --ignore-daemonsets to "
                                     "ignore)")),
    ("agent-x", {"ignore_daemonsets": True}, (False, "warning", "ignoring DaemonSet-managed "
                                                                "Pods")),
    ("cache-1", {}, (False, "error", "Pods with local storage (use --delete-emptydir-data to "
                                     "override)")),
    # The local-storage warning is replaced by the next filter's verdict, as in kubectl.
    ("cache-1", {"delete_emptydir_data": True}, (True, "okay", "")),
    ("done", {}, (True, "okay", "")),
    ("solo", {}, (False, "error", "cannot delete Pods that declare no controller (use --force "
                                  "to override)")),
    ("solo", {"force": True}, (True, "warning", "deleting Pods that declare no controller")),
    ("static-n1", {"force": True}, (False, "skip", "")),
    ("web-1", {}, (True, "okay", "")),
])
def test_classify(name: str, flags: dict[str, bool], expected: tuple[bool, str, str]) -> None:
    p = next(p for p in _pods() if p["metadata"]["name"] == name)
    assert _verdict(p, **flags) == expected


def test_refusals_and_warnings_group_pods_by_reason() -> None:
    a, b, c = pod("a"), pod("b", namespace="kube-system"), _owned(pod("c"), "DaemonSet", "x")
    opts = DrainOptions()
    verdicts = [classify(a, opts), classify(c, opts, missing_daemonset='daemonsets.apps "x" '
                                            "not found"), classify(b, opts)]
    assert refusals(verdicts) == [
        "cannot delete Pods that declare no controller (use --force to override): default/a, "
        "kube-system/b",
        'cannot delete daemonsets.apps "x" not found: default/c']
    forced = [classify(a, DrainOptions(force=True)), classify(b, DrainOptions(force=True))]
    assert warnings(forced) == "deleting Pods that declare no controller: default/a, kube-system/b"
    assert warnings(verdicts) == ""


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (0.1, "100ms"), (30, "30s"),
                                               (60, "1m0s"), (90.5, "1m30.5s"),
                                               (3723, "1h2m3s")])
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text
