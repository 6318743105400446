"""``api-resources``: every kind of the registry, in kubectl's columns and order."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from click.testing import CliRunner, Result

from controllers.api import REGISTRY, Clientset, KindRegistry, register_kind
from controllers.api.kinds import builtin_kinds

from .conftest import Env


def _registry() -> KindRegistry:
    wanted = ("pods", "nodes", "deployments", "jobs", "leases")
    reg = KindRegistry(k for k in builtin_kinds() if k.plural in wanted)
    register_kind("example.com", "v1alpha1", "Widget", "widgets", True, ("wd", "wdg"),
                  registry=reg)
    register_kind("example.com", "v1", "Gadget", "gadgets", False, registry=reg)
    return reg


def _invoke(env: Env, *args: str) -> Result:
    reg = _registry()

    @contextlib.asynccontextmanager
    async def opener() -> AsyncIterator[Clientset]:
        async with env.open() as api:
            yield Clientset(api.kv, clock=api.clock, rng=api.rng, registry=reg)

    return CliRunner().invoke(env.group, ["api-resources", *args],
                              obj={"api_opener": opener}, catch_exceptions=False)


def test_table_in_group_order(env: Env) -> None:
    r = _invoke(env)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == [
        "NAME          SHORTNAMES   APIVERSION               NAMESPACED   KIND",
        "nodes         no           v1                       false        Node",
        "pods          po           v1                       true         Pod",
        "deployments   deploy       apps/v1                  true         Deployment",
        "jobs                       batch/v1                 true         Job",
        "leases                     coordination.k8s.io/v1   true         Lease",
        "gadgets                    example.com/v1           false        Gadget",
        "widgets       wd,wdg       example.com/v1alpha1     true         Widget",
    ]


def test_filters_sorting_and_output(env: Env) -> None:
    r = _invoke(env, "--namespaced=false", "--no-headers")
    assert [line.split()[0] for line in r.stdout.splitlines()] == ["nodes", "gadgets"]
    r = _invoke(env, "--api-group", "example.com", "-o", "name")
    assert r.stdout.splitlines() == ["gadgets.example.com", "widgets.example.com"]
    r = _invoke(env, "--api-group", "", "-o", "name")
    assert r.stdout.splitlines() == ["nodes", "pods"]
    r = _invoke(env, "--sort-by", "kind", "-o", "name")
    assert r.stdout.splitlines() == ["deployments.apps", "gadgets.example.com", "jobs.batch",
                                     "leases.coordination.k8s.io", "nodes", "pods",
                                     "widgets.example.com"]
    r = _invoke(env, "-o", "wide", "--api-group", "")
    assert r.stdout.splitlines()[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED",
                                                "KIND", "VERBS", "CATEGORIES"]
    assert r.stdout.splitlines()[2].endswith(
        "Pod    [create delete get list patch update watch]   all")
    r = _invoke(env, "-o", "yaml")
    assert (r.exit_code, r.stderr) == (1, "error: --output yaml is not available\n")
    r = _invoke(env, "--sort-by", "age")
    assert r.exit_code == 1 and r.stderr.startswith("error: --sort-by accepts only name or kind")


def test_default_registry_lists_every_kind(env: Env) -> None:
    r = env.invoke("api-resources", "-o", "name")
    assert r.exit_code == 0
    assert sorted(r.stdout.splitlines()) == sorted(k.resource for k in REGISTRY.kinds())
    assert "deployments.apps" in r.stdout.splitlines()
