"""What an object command's arguments name: kinds and the objects of each.

kubectl's two spellings are accepted:

- ``TYPE[,TYPE...] [NAME...]``: each type, with the same names (none: every object);
- ``TYPE/NAME [TYPE/NAME...]``: one object each (every argument must then have a ``/``).

``all`` stands for kubectl's category of the same name: pods, services,
daemonsets, deployments, replicasets, jobs and cronjobs. Targets of one kind
are merged, in first-seen order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from controllers.api import Clientset, Kind
from runtime.cli.session import fail, lookup_kind

__all__ = ["ALL_CATEGORY", "Target", "parse_targets", "split_slash"]

ALL_CATEGORY = ("pods", "services", "daemonsets", "deployments", "replicasets", "jobs",
                "cronjobs")


@dataclass(slots=True)
class Target:
    """A kind and the names asked for (empty: every object of the kind)."""

    kind: Kind
    names: list[str] = field(default_factory=list)


def split_slash(arg: str) -> tuple[str, str]:
    """``deploy/web`` as ``("deploy", "web")``; exits with kubectl's error if malformed."""
    kind, sep, name = arg.partition("/")
    if not sep or not kind or not name or "/" in name:
        fail(f"arguments in resource/name form must have a single resource and name: {arg!r}")
    return kind, name


def _add(out: list[Target], kind: Kind, names: Sequence[str]) -> None:
    for t in out:
        if t.kind == kind:
            t.names.extend(n for n in names if n not in t.names)
            return
    out.append(Target(kind, list(names)))


def parse_targets(api: Clientset, args: Sequence[str]) -> list[Target]:
    """The targets ``args`` name (see the module docstring)."""
    if not args:
        fail("you must specify the type of resource to get")
    out: list[Target] = []
    if "/" in args[0]:
        for arg in args:
            if "/" not in arg:
                fail("there is no need to specify a resource type as a separate argument "
                     "when passing arguments in resource/name form (e.g. 'steer get "
                     "resource/<resource_name>' instead of 'steer get resource "
                     "resource/<resource_name>'")
            kind_name, name = split_slash(arg)
            _add(out, lookup_kind(api, kind_name), [name])
        return out
    names = list(args[1:])
    for kind_name in (k for k in args[0].split(",") if k):
        if kind_name.lower() == "all":
            for k in ALL_CATEGORY:
                _add(out, lookup_kind(api, k), names)
        else:
            _add(out, lookup_kind(api, kind_name), names)
    if not out:
        fail("you must specify the type of resource to get")
    return out
