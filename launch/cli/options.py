"""The option plumbing every command shares: one-line usage errors, value checks, ranges, help texts."""

from __future__ import annotations

import math

import click


class UsageLine(click.ClickException):
    """A usage mistake, said in one ``Error:`` line (click would add the usage text around it)."""

    exit_code = 2


class OneLineErrors(click.Group):
    """Every usage mistake, in the group's options or a command's, ends in one ``Error:`` line."""

    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as err:
            raise UsageLine(err.format_message()) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            raise UsageLine(err.format_message()) from None


def non_empty(ctx: click.Context, param: click.Parameter, value):
    """Refuse an empty string (alone or among a repeated option's values): it never means a default."""
    values = value if isinstance(value, tuple) else (value,)
    if any(v is not None and not str(v).strip() for v in values):
        raise click.BadParameter("must not be empty")
    return value


def finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


POSITIVE = click.IntRange(min=1)
HANG_TIMEOUT_RANGE = click.IntRange(1, 7 * 24 * 3600)  # a week: longer is a typo, not a timeout
NEW_TOKENS_RANGE = click.IntRange(0, 1_000_000)
SEED_RANGE = click.IntRange(0, 2**32 - 1)  # numpy's generators take non-negative seeds
OVERSUBSCRIBE_HELP = "Start more ranks than this machine has cores (without --hosts/--hostfile)."
FAMILY_HELP = "Model family: gpt (default), a name registered under harness.families, or MODULE:ATTR."

DATA_OPTIONS = [
    click.option("--config", "config_file", default=None, callback=non_empty, help="TOML file; its [data] is read."),
    click.option(
        "--set", "overrides", multiple=True, metavar="KEY=VALUE", help='Override one key, e.g. data.paths=["corpus/"].'
    ),
]


def data_options(command):
    """``--config`` and ``--set`` of the commands that read only the [data] table."""
    for option in reversed(DATA_OPTIONS):
        command = option(command)
    return command
