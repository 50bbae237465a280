"""Settings declared once, as fields of frozen dataclasses; everything else is derived from them.

A component's settings class declares each setting with `setting(default, help, ...)`: its name,
default, allowed range or choices, help, and what it affects. From the class come

- the command-line flags and their help (`add_arguments`; `from_args` reads them back),
- validation, with the same words in the Python API and the CLI (`check_settings`),
- the run record (`as_record`), the keys of caches and work folders (`keyed`, `fingerprint`),
- the docs tables of defaults (`settings_table`; `kirag settings` prints them all).

What a setting affects is one of AFFECTS: "results" (a different value gives different
results: it is in every key), "rounding" (it moves results only at float rounding, such as the
batch-mates of a pair on llama.cpp: a run's work folder is keyed by it, a score cache is not, so
scores are reused across batch sizes), "nothing" (limits, logging, paths: in no key).
A setting whose effect is already in the text a cache key hashes (an instruction added to each
query) says so with `in_text=True` and stays out of the fingerprint.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kirag.core.ranges import Range
from kirag.errors import SettingsError

METADATA_KEY = "kirag_setting"
AFFECTS = ("results", "rounding", "nothing")
Affects = Literal["results", "rounding", "nothing"]


@dataclass(frozen=True)
class Setting:
    """What one field declares besides its default."""

    help: str
    range: Range | None = None
    # allowed values, or a function returning them (a registry filled at import time)
    choices: Sequence[Any] | Callable[[], Sequence[Any]] | None = None
    flag: str | None = None  # the command-line flag; default: --name-with-dashes
    option: str | None = None  # the library parameter the value passes to, when not `name`
    affects: Affects = "results"
    in_text: bool = False  # its effect is in the text every cache key hashes
    cli: bool = True  # has a command-line flag
    aliases: tuple[str, ...] = ()  # other spellings of the flag

    def allowed(self) -> list[Any] | None:
        choices = self.choices() if callable(self.choices) else self.choices
        return None if choices is None else list(choices)


def setting(
    default: Any = None,
    help: str = "",
    *,
    range: Range | None = None,
    choices: Sequence[Any] | Callable[[], Sequence[Any]] | None = None,
    flag: str | None = None,
    option: str | None = None,
    affects: Affects = "results",
    in_text: bool = False,
    cli: bool = True,
    aliases: tuple[str, ...] = (),
) -> Any:
    """A dataclass field with its declaration (see Setting)."""
    if affects not in AFFECTS:
        raise ValueError(f"affects must be one of {AFFECTS} (got {affects!r})")
    declared = Setting(help, range, choices, flag, option, affects, in_text, cli, aliases)
    return dataclasses.field(default=default, metadata={METADATA_KEY: declared})


def other_default(settings_class: type, name: str, default: Any) -> Any:
    """A subclass's field that is `settings_class`'s `name` with another default (the same
    declaration otherwise: sibling settings keep one name and one help per setting)."""
    inherited = settings_class.__dataclass_fields__[name]
    return dataclasses.field(default=default, metadata=inherited.metadata)


def same_as(settings_class: type, name: str) -> Any:
    """`settings_class`'s field `name` as it is declared there (one setting that two classes
    both hold, e.g. the Ray cluster's address: one name, default, range and help)."""
    inherited = settings_class.__dataclass_fields__[name]
    return dataclasses.field(default=inherited.default, metadata=inherited.metadata)


@dataclass(frozen=True)
class Declared:
    """One declared field of a settings class: its name, default and declaration."""

    name: str
    default: Any
    setting: Setting

    @property
    def flag(self) -> str:
        return self.setting.flag or "--" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        """Where argparse keeps the flag's value: the flag's own name (a flag named apart from
        its field, such as --calibration-context, must not share a dest with another flag)."""
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def parameter(self) -> str:
        return self.setting.option or self.name


def declared(settings: Any) -> list[Declared]:
    """The declared fields of a settings class (or instance), in order."""
    return [
        Declared(f.name, f.default, f.metadata[METADATA_KEY])
        for f in dataclasses.fields(settings)
        if METADATA_KEY in f.metadata
    ]


def check_settings(settings: Any) -> Any:
    """Check every declared range and choice (call it in __post_init__); the error names the
    field, as the CLI names the flag. Returns the settings."""
    for item in declared(settings):
        value = getattr(settings, item.name)
        if item.setting.range is not None:
            item.setting.range.check(value, item.name)
        allowed = item.setting.allowed()
        if allowed is not None and value is not None and value not in allowed:
            raise SettingsError(
                f"{item.name} must be one of {', '.join(map(str, allowed))} (got {value!r})",
                parameters=(item.name,),
            )
    return settings


# ----------------------------------------------------------------- the command line


def add_arguments(
    parser: argparse.ArgumentParser,
    settings_class: type,
    *,
    title: str | None = None,
    into: argparse._ArgumentGroup | None = None,
    skip: Iterable[str] = (),
    only: Iterable[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    restrict: Mapping[str, Sequence[Any]] | None = None,
    flags: Mapping[str, str] | None = None,
) -> None:
    """One flag per declared field (but `skip` and cli=False ones; with `only`, just those), in
    a new argument group when `title` is given (or the group `into`): its type from the range,
    its choices (`restrict`: the fewer a command runs, a subset of the declared ones), its
    default (the class's, or `defaults`' for a command that differs), help that states the
    default, and its flag (`flags`: a command's own spelling, where the declared one means
    something else there: kirag answer's --rerank-budget is Rank1's --thinking-budget)."""
    target = into or (parser.add_argument_group(title) if title else parser)
    skipped = set(skip)
    wanted = None if only is None else set(only)
    defaults = defaults or {}
    restrict = restrict or {}
    flags = flags or {}
    renames = {}
    for item in declared(settings_class):
        if (
            not item.setting.cli
            or item.name in skipped
            or (wanted is not None and item.name not in wanted)
        ):
            continue
        default = defaults.get(item.name, item.default)
        flag = flags.get(item.name, item.flag)
        dest = flag.lstrip("-").replace("-", "_") if item.name in flags else item.dest
        kwargs: dict[str, Any] = {"dest": dest, "default": default}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif item.setting.range is not None:
            kwargs["type"] = item.setting.range
        allowed = item.setting.allowed()
        if item.name in restrict:
            if allowed is None or not set(restrict[item.name]) <= set(allowed):
                raise ValueError(f"{item.name}: {restrict[item.name]} is not among {allowed}")
            allowed = list(restrict[item.name])
        if allowed is not None:
            kwargs["choices"] = allowed
        kwargs["help"] = item.setting.help or None  # the CLI's formatter adds the default
        aliases = () if item.name in flags else item.setting.aliases
        action = target.add_argument(flag, *aliases, **kwargs)
        action.kirag_setting = (settings_class, item.name)  # derived, not restated (tests walk it)
        action.kirag_default_differs = item.name in defaults  # a command's own default, declared
        action.kirag_restricted = item.name in restrict  # a command's fewer choices, declared
        if item.parameter != dest:  # errors name the parameter; the CLI prints the flag
            renames[dest] = item.parameter
    passes_to(parser, renames)


def passes_to(parser: argparse.ArgumentParser, renames: Mapping[str, str]) -> Mapping[str, str]:
    """Declare that flags pass their values to library parameters of other names (`{dest:
    parameter}`, e.g. `{"context": "context_length"}`), so that an error naming the parameter
    is printed with the flag. Returns `renames`: the command passes its values with it too."""
    known = dict(getattr(parser, "kirag_parameters", {}))
    known.update({parameter: dest for dest, parameter in renames.items()})
    parser.kirag_parameters = known
    return renames


def add_per_mode_arguments(
    parser: argparse.ArgumentParser, modes: Mapping[str, type], *, skip: Iterable[str] = ()
) -> None:
    """One flag for each setting declared (with a flag) by every one of several sibling classes
    (`{mode name: settings class}`; but `skip`), with no default of its own: the chosen mode's
    default applies. The help states each mode's default; the range and help are the first
    class's."""
    classes = tuple(modes.values())
    shared = [item for item in _shared(classes) if item.name not in set(skip)]
    for item in shared:
        defaults = ", ".join(f"{mode} {getattr(cls(), item.name)}" for mode, cls in modes.items())
        action = parser.add_argument(
            item.flag,
            dest=item.dest,
            type=item.setting.range,
            default=None,
            help=f"{item.setting.help} (default per mode: {defaults})",
        )
        action.kirag_setting = (classes, item.name)
    passes_to(parser, {item.dest: item.name for item in shared if item.dest != item.name})


def per_mode_options(args: argparse.Namespace, modes: Mapping[str, type]) -> dict:
    """The per-mode flags a user gave (see add_per_mode_arguments), by setting name."""
    return {
        item.name: getattr(args, item.dest)
        for item in _shared(tuple(modes.values()))
        if getattr(args, item.dest, None) is not None
    }


def _shared(classes: Sequence[type]) -> list[Declared]:
    """The first class's declared flags that every class declares too."""
    names = [{item.name for item in declared(cls)} for cls in classes[1:]]
    return [
        item
        for item in declared(classes[0])
        if item.setting.cli and all(item.name in other for other in names)
    ]


def from_args(settings_class: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """The settings the parsed flags give (fields without a flag keep their defaults)."""
    values = {
        item.name: getattr(args, item.dest)
        for item in declared(settings_class)
        if hasattr(args, item.dest)
    }
    return settings_class(**{**values, **overrides})


def changed_options(settings: Any) -> dict[str, Any]:
    """The settings that differ from their defaults, under the parameter names they pass to
    (engine options: only what the user asked for reaches the engine)."""
    return {item.parameter: getattr(settings, item.name) for item in _changed(settings)}


def changed_flags(settings: Any) -> list[str]:
    """The flags of the settings that differ from their defaults (a flag given where it does
    not apply is refused by name)."""
    return [item.flag for item in _changed(settings)]


def _changed(settings: Any) -> list[Declared]:
    return [item for item in declared(settings) if getattr(settings, item.name) != item.default]


# ----------------------------------------------------------------- records and keys


def as_record(settings: Any) -> dict[str, Any]:
    """Every declared field and its value (a run record's settings)."""
    return {item.name: getattr(settings, item.name) for item in declared(settings)}


def keyed(settings: Any, *, rounding: bool = True, text: bool = True) -> dict[str, Any]:
    """The fields a key of results depends on: those that affect results, with `rounding` also
    those that move them at float rounding, without `text` those already in the hashed text."""
    wanted = {"results", "rounding"} if rounding else {"results"}
    return {
        item.name: getattr(settings, item.name)
        for item in declared(settings)
        if item.setting.affects in wanted and (text or not item.setting.in_text)
    }


def fingerprint(values: Mapping[str, Any], length: int = 16) -> str:
    """A short stable hash of a settings dict (sorted keys, JSON; values by str when needed)."""
    text = json.dumps(dict(values), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# ----------------------------------------------------------------- docs


def settings_table(settings_class: type) -> str:
    """A markdown table of the declared settings: name, flag, default, allowed values, what it
    affects, help."""
    rows = [
        "| setting | flag | default | allowed | affects | what it does |",
        "|---|---|---|---|---|---|",
    ]
    for item in declared(settings_class):
        declared_setting = item.setting
        if declared_setting.range is not None:
            allowed = declared_setting.range.describe()
        elif declared_setting.allowed() is not None:
            allowed = ", ".join(f"`{c}`" for c in declared_setting.allowed())
        else:
            allowed = ""
        flag = f"`{item.flag}`" if declared_setting.cli else "(API only)"
        affects = declared_setting.affects + (
            " (in the hashed text)" if declared_setting.in_text else ""
        )
        help_text = declared_setting.help.replace("|", "\\|")
        rows.append(
            f"| `{item.name}` | {flag} | `{item.default!r}` | {allowed} | {affects} | {help_text} |"
        )
    return "\n".join(rows)
