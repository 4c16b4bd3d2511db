"""Command-line pieces every serflow CLI shares, so flags are spelled and parsed one way.

* ``--set KEY=VALUE [KEY=VALUE ...]`` (repeatable): scenario overrides with dotted keys.
* ``--policies SPEC [SPEC ...]`` (repeatable): policy specs, separated by spaces or commas.
* :func:`add_dataclass_arguments` / :func:`dataclass_from_args`: a CLI derived from a config
  dataclass (``train.py`` from ``TrainConfig``), so defaults and help live in one place.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

SET_HELP = ("scenario overrides with dotted keys, values in YAML, e.g. --set "
            "faas.keep_alive_s=60 reward.w_slo=20; repeatable")


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE ...``, parsed by :func:`scenario_overrides`."""
    parser.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help=SET_HELP)


def scenario_overrides(items: Sequence[str]) -> dict[str, Any]:
    """The ``--set`` items as a dict of scenario overrides (ValueError names the bad item)."""
    from serflow_env.assignments import parse_assignments  # lazily: --help stays fast

    return parse_assignments(items, "--set")


def add_policies_argument(parser: argparse.ArgumentParser, help_text: str, **kwargs: Any
                          ) -> None:
    """``--policies SPEC ...``, read with :func:`policy_list`."""
    parser.add_argument("--policies", action="extend", nargs="+", metavar="SPEC",
                        help=help_text + " (separated by spaces or commas; repeatable)",
                        **kwargs)


def policy_list(tokens: Sequence[str] | None) -> list[str]:
    """The policy specs of ``--policies`` tokens (see :func:`agents.policy.split_policy_specs`)."""
    from agents.policy import split_policy_specs  # lazily: importing agents loads torch

    return split_policy_specs(tokens or [])


# --------------------------------------------------------------------------- config dataclasses
@dataclasses.dataclass(frozen=True)
class Flag:
    """How one dataclass field appears on the command line (in the field's ``metadata``)."""

    help: str
    name: str | None = None  # default: --field-name (--no-field-name for a default-True bool)
    parse: Callable[[Any], Any] | None = None  # argparse value -> field value
    metavar: str | None = None
    repeat: bool = False  # one value per occurrence (--trace A --trace B) instead of a list
    value_type: type | None = None  # what the option takes, where it differs from the field's
    choices: tuple[str, ...] | None = None


def flag(help: str, **kwargs: Any) -> dict[str, Flag]:
    """Field metadata: ``field(default=..., metadata=flag("help", name="--trace"))``."""
    return {"cli": Flag(help, **kwargs)}


def _base_type(hint: Any) -> tuple[Any, bool]:
    """(type, is_list) of a field hint: ``int | None`` -> (int, False), ``list[float]`` ->
    (float, True), ``dict[...]`` -> (dict, False)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0]
    origin = typing.get_origin(hint)
    if origin is list:
        return typing.get_args(hint)[0], True
    return (origin or hint), False


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One option per field of ``cls`` that carries :func:`flag` metadata.

    Options default to None (not given), so :func:`dataclass_from_args` leaves the
    dataclass's own default in place; the help text shows that default.
    """
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        meta = field.metadata.get("cli")
        if meta is None:
            continue
        kind, is_list = _base_type(hints[field.name])
        if meta.value_type is not None:
            kind, is_list = meta.value_type, False
        default = _default(field)
        shown = "" if default in (None, [], {}) else f" (default: {default})"
        if kind is bool:
            name = meta.name or ("--no-" if default else "--") + field.name.replace("_", "-")
            parser.add_argument(name, dest=field.name, action="store_const", const=not default,
                                default=None, help=meta.help)
            continue
        name = meta.name or "--" + field.name.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": field.name, "default": None,
                                  "help": meta.help + shown}
        if meta.metavar:
            kwargs["metavar"] = meta.metavar
        if meta.choices:
            kwargs["choices"] = meta.choices
        if kind is dict:
            kwargs.update(action="extend", nargs="+")
        elif meta.repeat:
            kwargs.update(action="append", type=kind)
        elif is_list:
            kwargs.update(nargs="+", type=kind)
        elif kind in (int, float):
            kwargs["type"] = kind
        parser.add_argument(name, **kwargs)


def dataclass_from_args(cls: type, args: argparse.Namespace, **fixed: Any) -> Any:
    """An instance of ``cls`` from the options :func:`add_dataclass_arguments` added; options
    not given keep the field's default, ``fixed`` values win."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        meta = field.metadata.get("cli")
        value = getattr(args, field.name, None) if meta is not None else None
        if value is not None:
            values[field.name] = meta.parse(value) if meta.parse else value
    return cls(**{**values, **fixed})
