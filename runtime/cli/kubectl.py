"""The object commands, in the spirit of kubectl, as one set to add to ``steer``.

``apply``, ``create``, ``get``, ``describe``, ``delete``, ``scale``,
``set image``, ``label``, ``annotate``, ``patch``, ``rollout``, ``logs``,
``wait``, ``cordon``, ``uncordon``, ``drain`` and ``api-resources`` work on
Kubernetes-shaped objects in the cluster's store through ``controllers.api``;
see each command's module.
"""

from __future__ import annotations

import click

from runtime.cli.apiresources import api_resources
from runtime.cli.create import create
from runtime.cli.describe import describe
from runtime.cli.drain import cordon, drain, uncordon
from runtime.cli.get import get
from runtime.cli.logs import logs
from runtime.cli.metadata import annotate, label
from runtime.cli.objects import apply, delete, scale, set_
from runtime.cli.patch import patch
from runtime.cli.rollout import rollout
from runtime.cli.wait import wait

__all__ = ["COMMANDS", "register"]

COMMANDS: tuple[click.Command, ...] = (apply, get, describe, delete, scale, set_, label,
                                       annotate, patch, rollout, logs, create, wait, cordon,
                                       uncordon, drain, api_resources)


def register(group: click.Group) -> None:
    for command in COMMANDS:
        group.add_command(command)
