"""``steer simulate``: the deterministic Raft cluster simulator."""

from __future__ import annotations

import click

__all__ = ["register"]


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def simulate(args: tuple[str, ...]) -> None:
    """Run seeded simulations (same options as python -m kvstore.testing.simulate)."""
    from kvstore.testing import simulate as sim

    raise SystemExit(sim.main(list(args)))


def register(group: click.Group) -> None:
    group.add_command(simulate)
