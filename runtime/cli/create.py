"""``steer create job``: make a Job by hand, as ``kubectl create job`` does.

- ``create job NAME --from=cronjob/CJ`` copies the CronJob's ``jobTemplate``
  (its labels, its annotations plus ``cronjob.kubernetes.io/instantiate:
  manual``, its spec) into a Job named NAME with a controller reference to
  the CronJob (without ``blockOwnerDeletion``, as kubectl does);
- ``create job NAME --image=IMAGE [-- COMMAND [ARG...]]`` makes a Job of one
  container named NAME that restarts ``Never``.

Prints ``job.batch/NAME created``; errors as the other object commands.
"""

from __future__ import annotations

import click

from controllers.api import Clientset
from controllers.api.objects import Obj
from controllers.builtin.cronjob.decision import job_from_template
from runtime.cli.printers import qualified_name
from runtime.cli.session import fail, lookup_kind, run_api
from runtime.cli.targets import split_slash

__all__ = ["INSTANTIATE_ANNOTATION", "create", "job_from_cronjob", "job_from_image"]

INSTANTIATE_ANNOTATION = "cronjob.kubernetes.io/instantiate"
"""The annotation marking a Job started by hand from a CronJob."""


def job_from_cronjob(cronjob: Obj, name: str) -> Obj:
    """The Job ``create job NAME --from=cronjob/...`` makes from ``cronjob``."""
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    notes = {INSTANTIATE_ANNOTATION: "manual",
             **((template.get("metadata") or {}).get("annotations") or {})}
    return job_from_template(cronjob, name, notes, block_owner_deletion=False)


def job_from_image(name: str, namespace: str, image: str, command: tuple[str, ...]) -> Obj:
    """The Job ``create job NAME --image=IMAGE -- COMMAND...`` makes."""
    container: Obj = {"name": name, "image": image}
    if command:
        container["command"] = list(command)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"spec": {"containers": [container],
                                           "restartPolicy": "Never"}}}}


@click.group()
def create() -> None:
    """Create an object from the command line."""


@create.command("job")
@click.argument("name")
@click.argument("command", nargs=-1)
@click.option("--from", "from_", default=None, metavar="cronjob/NAME",
              help="the CronJob whose job template to use")
@click.option("--image", default=None, help="the image of the Job's one container")
@click.option("-n", "--namespace", default=None)
@click.pass_context
def create_job(ctx: click.Context, name: str, command: tuple[str, ...], from_: str | None,
               image: str | None, namespace: str | None) -> None:
    """Create a Job: create job NAME --from=cronjob/CJ, or --image=IMAGE [-- COMMAND...]."""
    if (from_ is None) == (image is None):
        fail("exactly one of --from or --image is required")
    if from_ is not None and command:
        fail("cannot specify --from and command")
    ns = namespace or "default"

    async def go(api: Clientset) -> None:
        if from_ is not None:
            kind_name, source = split_slash(from_)
            kind = lookup_kind(api, kind_name)
            if kind.kind != "CronJob":
                fail(f"from must be an existing cronjob: {kind.resource}")
            cronjob = await api.resource("cronjobs").get(source, ns)
            body = job_from_cronjob(cronjob, name)
        else:
            body = job_from_image(name, ns, str(image), command)
        created = await api.resource("jobs").create(body)
        click.echo(f"{qualified_name(lookup_kind(api, 'jobs'), created)} created")

    run_api(ctx, go)
