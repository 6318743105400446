"""The kind registry: names, storage keys, custom kinds; errors; the public surface."""

from __future__ import annotations

import pytest

import controllers.api
from controllers.api import (
    REGISTRY,
    AlreadyExists,
    BadRequest,
    Conflict,
    ErrorList,
    Gone,
    Invalid,
    KindRegistry,
    NotFound,
    register_kind,
)
from controllers.api.kinds import builtin_kinds


@pytest.mark.parametrize("name,kind,api_version", [
    ("po", "Pod", "v1"), ("pods", "Pod", "v1"), ("pod", "Pod", "v1"), ("Pod", "Pod", "v1"),
    ("deploy", "Deployment", "apps/v1"), ("deployments.apps", "Deployment", "apps/v1"),
    ("deployments.v1.apps", "Deployment", "apps/v1"),
    ("rs", "ReplicaSet", "apps/v1"), ("no", "Node", "v1"), ("ns", "Namespace", "v1"),
    ("svc", "Service", "v1"), ("ep", "Endpoints", "v1"), ("endpoints", "Endpoints", "v1"),
    ("cm", "ConfigMap", "v1"), ("ds", "DaemonSet", "apps/v1"), ("cj", "CronJob", "batch/v1"),
    ("ev", "Event", "v1"), ("jobs", "Job", "batch/v1"), ("secrets", "Secret", "v1"),
    ("leases", "Lease", "coordination.k8s.io/v1"),
    ("controllerrevisions", "ControllerRevision", "apps/v1"),
])
def test_lookup_by_every_kubectl_name(name: str, kind: str, api_version: str) -> None:
    k = REGISTRY.lookup(name)
    assert (k.kind, k.api_version) == (kind, api_version)


def test_unknown_name() -> None:
    with pytest.raises(BadRequest, match='resource type "widgets"'):
        REGISTRY.lookup("widgets")


def test_storage_keys() -> None:
    assert REGISTRY.lookup("deploy").key("prod", "web") == "/registry/deployments/prod/web"
    assert REGISTRY.lookup("nodes").key("", "n1") == "/registry/nodes/n1"
    assert REGISTRY.lookup("leases").list_prefix("kube-system") == "/registry/leases/kube-system/"
    assert REGISTRY.lookup("pods").list_prefix(None) == "/registry/pods/"
    assert REGISTRY.lookup("ns").list_prefix("ignored") == "/registry/namespaces/"
    for bad in ("", "a/b"):
        with pytest.raises(BadRequest):
            REGISTRY.lookup("pods").key("default", bad)
        with pytest.raises(BadRequest):
            REGISTRY.lookup("pods").key(bad, "p")


def test_register_custom_kind() -> None:
    registry = KindRegistry(builtin_kinds())

    def validate(obj: dict[str, object], errs: ErrorList) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict) or not spec.get("size"):
            errs.required("spec.size")

    widget = register_kind("example.com", "v1alpha1", "Widget", "widgets", True, ["wd"],
                           validator=validate, registry=registry)
    assert registry.lookup("wd") is widget
    assert registry.lookup("widgets.example.com") is widget
    assert registry.for_object({"apiVersion": "example.com/v1alpha1", "kind": "Widget"}) is widget
    assert widget.key("default", "w") == "/registry/example.com/widgets/default/w"
    assert widget.resource == "widgets.example.com"
    # The same kind again is fine (a module imported twice); a different one under its names is not.
    assert register_kind("example.com", "v1alpha1", "Widget", "widgets", True, ["wd"],
                         validator=validate, registry=registry) is widget
    with pytest.raises(ValueError):
        register_kind("example.com", "v1alpha1", "Widget", "widgets", True, registry=registry)
    with pytest.raises(ValueError):
        register_kind("other.io", "v1", "Gadget", "gadgets", True, ["po"], registry=registry)
    with pytest.raises(ValueError):
        register_kind("nodots", "v1", "Gadget", "gadgets", True, registry=registry)
    with pytest.raises(ValueError):
        register_kind("other.io", "v1", "Gadget", "Gadgets", True, registry=registry)
    # The process-wide registry is untouched.
    with pytest.raises(BadRequest):
        REGISTRY.lookup("wd")


def test_error_messages_read_like_kubectl() -> None:
    assert str(NotFound("deployments.apps", "x")) == 'deployments.apps "x" not found'
    assert NotFound("pods", "x").code == 404
    assert str(AlreadyExists("pods", "p")) == 'pods "p" already exists'
    assert str(Conflict("pods", "p")).startswith('Operation cannot be fulfilled on pods "p": '
                                                 "the object has been modified")
    assert Conflict("pods", "p").code == 409
    assert Gone("too old resource version: 3 (7)").code == 410
    errs = ErrorList()
    errs.invalid("metadata.name", "Bad", "must be lower case")
    assert str(Invalid("Pod", "Bad", errs.items)) == (
        'Pod "Bad" is invalid: metadata.name: Invalid value: "Bad": must be lower case')


def test_public_names_are_complete_and_sorted() -> None:
    exported = controllers.api.__all__
    assert exported == sorted(exported)
    for name in exported:
        assert hasattr(controllers.api, name), name
    public = {n for n in vars(controllers.api) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(controllers.api, n)).__name__ == "module"}
    assert public - modules - {"annotations"} == set(exported)
