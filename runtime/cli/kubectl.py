"""The object commands, in the spirit of kubectl, as one set to add to ``steer``.

``apply``, ``get``, ``describe``, ``delete``, ``scale``, ``set image``,
``label``, ``rollout`` and ``logs`` work on Kubernetes-shaped objects in
the cluster's store through ``controllers.api``; see each command's module.
"""

from __future__ import annotations

import click

from runtime.cli.create import create
from runtime.cli.describe import describe
from runtime.cli.get import get
from runtime.cli.logs import logs
from runtime.cli.objects import apply, delete, label, scale, set_
from runtime.cli.rollout import rollout

__all__ = ["COMMANDS", "register"]

COMMANDS: tuple[click.Command, ...] = (apply, get, describe, delete, scale, set_, label,
                                       rollout, logs, create)


def register(group: click.Group) -> None:
    for command in COMMANDS:
        group.add_command(command)
