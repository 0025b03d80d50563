"""Load the slamon YAML config, reporting every problem with its file, line, column and field."""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import UnionType
from typing import Annotated, Literal, TypeGuard, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.error import Mark
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sla.calendar import holidays_from_ics
from sla.config import Loc, SlamonConfig
from sla.errors import ConfigError

_MERGE_TAG = "tag:yaml.org,2002:merge"

# What pydantic's type errors expected, in the words of someone writing YAML.
_EXPECTED = {
    "string_type": "a string",
    "invalid_key": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "a date without a time",
}
_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


@dataclass(frozen=True)
class ConfigProblem:
    """One mistake in a config file; `line` and `column` count from 1 (0: the whole file)."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ConfigFileError(ConfigError):
    """A config file that cannot be used; the message lists `problems` one per line."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = sorted(problems, key=lambda problem: (problem.line, problem.column))
        super().__init__("\n".join(str(problem) for problem in self.problems))


def load_config(path: str | Path) -> SlamonConfig:
    """Read and validate the config file at `path`."""
    filename = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError([ConfigProblem(filename, 0, 0, "", "file not found")]) from None
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text (bad byte at offset {exc.start})"
        raise ConfigFileError([ConfigProblem(filename, 0, 0, "", message)]) from None
    except OSError as exc:
        message = f"cannot read: {exc.strerror or exc}"
        raise ConfigFileError([ConfigProblem(filename, 0, 0, "", message)]) from None
    return parse_config_text(text, filename, base_dir=Path(path).parent)


def parse_config_text(text: str, filename: str, base_dir: Path = Path()) -> SlamonConfig:
    """Validate config `text`; `filename` names it in problems, `base_dir` anchors its paths."""
    document = _Document.parse(text, filename)
    problems = list(document.duplicates)
    # Read before validating, so an unreadable file is reported with every other problem.
    ics_holidays, ics_problems = _ics_holidays(document, base_dir)
    problems.extend(ics_problems)
    try:
        config = SlamonConfig.model_validate(document.data)
    except ValidationError as exc:
        problems.extend(document.problem(error) for error in exc.errors())
    else:
        if not problems:
            return _with_holidays(config, ics_holidays)
    raise ConfigFileError(problems)


def _ics_holidays(
    document: _Document, base_dir: Path
) -> tuple[dict[str, set[date]], list[ConfigProblem]]:
    """The days of each calendar's `holidays_ics` file (relative to the config file)."""
    found: dict[str, set[date]] = {}
    problems: list[ConfigProblem] = []
    calendars = document.data.get("calendars") if isinstance(document.data, dict) else None
    for name, calendar in calendars.items() if isinstance(calendars, dict) else ():
        ics = calendar.get("holidays_ics") if isinstance(calendar, dict) else None
        if not isinstance(ics, str):
            continue  # absent, or a wrong type that validation reports
        ics_path = base_dir / ics
        loc = ("calendars", name, "holidays_ics")
        try:
            found[str(name)] = holidays_from_ics(ics_path.read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(document.at(loc, f"cannot read {ics_path}: {exc.strerror or exc}"))
        except UnicodeDecodeError:
            problems.append(document.at(loc, f"{ics_path} is not UTF-8 text"))
        except ConfigError as exc:
            problems.append(document.at(loc, f"{ics_path}: {exc}"))
    return found, problems


def _with_holidays(config: SlamonConfig, ics_holidays: dict[str, set[date]]) -> SlamonConfig:
    """`config` with each calendar's ICS holidays merged into its listed ones."""
    calendars = dict(config.calendars)
    for name, days in ics_holidays.items():
        calendar = calendars[name]
        holidays = sorted(set(calendar.holidays) | days)
        calendars[name] = calendar.model_copy(update={"holidays": holidays})
    return config.model_copy(update={"calendars": calendars})


def _field_path(parts: Sequence[str | int]) -> str:
    """`services[0].probes[1].interval` for ("services", 0, "probes", 1, "interval")."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _show(value: object) -> str:
    """`value` as the YAML writer would recognise it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _is_model(declared: object) -> TypeGuard[type[BaseModel]]:
    return isinstance(declared, type) and issubclass(declared, BaseModel)


def _unwrap(declared: object) -> object:
    """`declared` without Annotated metadata and without an optional None."""
    while True:
        origin = get_origin(declared)
        if origin is Annotated:
            declared = get_args(declared)[0]
        elif origin in (Union, UnionType):
            members = [arg for arg in get_args(declared) if arg is not type(None)]
            if len(members) != 1:
                return declared
            declared = members[0]
        else:
            return declared


def _tags(model: type[BaseModel]) -> list[object]:
    """The values of the Literal fields that tell the members of a discriminated union apart."""
    return [
        tag
        for field in model.model_fields.values()
        if get_origin(field.annotation) is Literal
        for tag in get_args(field.annotation)
    ]


def _tagged_member(declared: object, part: str | int) -> type[BaseModel] | None:
    """The member of a discriminated union that pydantic names with `part` in an error's loc."""
    if get_origin(declared) not in (Union, UnionType):
        return None
    for member in get_args(declared):
        if _is_model(member) and part in _tags(member):
            return member
    return None


def _declared_at(declared: object, part: str | int) -> object:
    """The declared type of `part` within a value declared as `declared`."""
    if _is_model(declared):
        field = declared.model_fields.get(str(part))
        return None if field is None else field.annotation
    origin = get_origin(declared)
    if origin is list:
        return get_args(declared)[0]
    if origin is dict:
        return get_args(declared)[1]
    return None


@dataclass(frozen=True)
class _Spot:
    """Where an error's loc lands in the YAML document."""

    path: tuple[str | int, ...]
    value_mark: Mark  # the value's node, or the nearest enclosing one when the value is absent
    key_mark: Mark  # the key that names the value in its mapping
    owner: object  # the declared type holding the last path part (the model for a field)


class _Document:
    """A composed YAML document: its data, and the node behind every key and value."""

    def __init__(
        self, loader: yaml.SafeLoader | yaml.CSafeLoader, root: Node, filename: str
    ) -> None:
        self._loader = loader
        self._root = root
        self._filename = filename
        # Construction merges `<<` keys into the nodes, so duplicates are found before it.
        self.duplicates = self._find_duplicate_keys()
        self.data: object = loader.construct_document(root)

    @classmethod
    def parse(cls, text: str, filename: str) -> _Document:
        """Compose and construct `text`, reporting YAML errors and an empty document."""
        # libyaml composes the same nodes with the same marks (line, column) in about two
        # thirds of the time; it words some errors differently, so the pure-Python loader
        # reads a file libyaml rejects, and reports the error.
        with contextlib.suppress(yaml.YAMLError):
            return cls._compose(yaml.CSafeLoader(text), filename)
        try:
            return cls._compose(yaml.SafeLoader(text), filename)
        except yaml.YAMLError as exc:
            raise ConfigFileError([_yaml_problem(exc, text, filename)]) from None

    @classmethod
    def _compose(cls, loader: yaml.SafeLoader | yaml.CSafeLoader, filename: str) -> _Document:
        try:
            root = loader.get_single_node()
            if root is None:
                problem = ConfigProblem(filename, 0, 0, "", "the file holds no configuration")
                raise ConfigFileError([problem])
            return cls(loader, root, filename)
        finally:
            loader.dispose()

    def _find_duplicate_keys(self) -> list[ConfigProblem]:
        """A problem for each key written twice in one mapping (YAML would keep the last)."""
        problems = []
        visited: set[int] = set()  # aliases share nodes: check each mapping once
        pending: list[tuple[Node, Loc]] = [(self._root, ())]
        while pending:
            node, path = pending.pop()
            if id(node) in visited:
                continue
            visited.add(id(node))
            if isinstance(node, SequenceNode):
                pending.extend((item, (*path, index)) for index, item in enumerate(node.value))
            if not isinstance(node, MappingNode):
                continue
            first: dict[object, Node] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    pending.append((value_node, path))
                    continue
                key = self._key(key_node)
                pending.append((value_node, (*path, key_node.value)))
                if key in first:
                    earlier = first[key].start_mark.line + 1
                    message = (
                        f"duplicate key {_show(key)} (first at line {earlier}); "
                        "YAML would silently keep only this last value"
                    )
                    problems.append(self._at(key_node.start_mark, (*path, key_node.value), message))
                first.setdefault(key, key_node)
        return problems

    def _key(self, key_node: Node) -> object:
        """The constructed value of a mapping key (scalars compare by value, others by node)."""
        if isinstance(key_node, ScalarNode):
            return self._loader.construct_object(key_node)
        return key_node

    def _child(self, node: Node, part: str | int) -> tuple[Node, Node] | None:
        """The key and value nodes of `part` under `node`, None when absent."""
        if isinstance(node, MappingNode):
            for key_node, value_node in reversed(node.value):  # the last of equal keys wins
                key = self._key(key_node)
                if part in (key, str(key)):  # pydantic names some non-string keys by their str()
                    return key_node, value_node
        if isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            item: Node = node.value[part]
            return item, item
        return None

    def _find(self, loc: Loc) -> _Spot:
        """Follow `loc` through the declared types and the nodes together."""
        node = key_node = self._root
        declared: object = SlamonConfig
        owner: object = None
        path: list[str | int] = []
        present = True
        for part in loc:
            declared = _unwrap(declared)
            member = _tagged_member(declared, part)
            if member is not None:
                declared = member
                continue
            if part == "[key]":
                continue
            owner = declared
            declared = _declared_at(declared, part)
            child = self._child(node, part) if present else None
            if child is None:
                present = False
                path.append(part)
            else:
                # Name mapping keys as written: pydantic reports `on:` as 1, for instance.
                path.append(child[0].value if isinstance(node, MappingNode) else part)
                key_node, node = child
        return _Spot(tuple(path), node.start_mark, key_node.start_mark, owner)

    def problem(self, error: ErrorDetails) -> ConfigProblem:
        """`error` from validating the data, at the line and field it concerns."""
        loc = tuple(error["loc"])
        ctx = error.get("ctx", {})
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = (*loc, str(ctx["discriminator"]).strip("'"))
        spot = self._find(loc)
        mark = spot.key_mark if _names_key(error) else spot.value_mark
        return self._at(mark, spot.path, _describe(error, spot))

    def at(self, loc: Loc, message: str) -> ConfigProblem:
        """A problem `message` about the value at `loc`."""
        spot = self._find(loc)
        return self._at(spot.value_mark, spot.path, message)

    def _at(self, mark: Mark, path: Sequence[str | int], message: str) -> ConfigProblem:
        return ConfigProblem(
            self._filename, mark.line + 1, mark.column + 1, _field_path(path), message
        )


def _names_key(error: ErrorDetails) -> bool:
    """Whether `error` is about a mapping key rather than its value."""
    return error["type"] in ("extra_forbidden", "invalid_key") or error["loc"][-1:] == ("[key]",)


def _describe(error: ErrorDetails, spot: _Spot) -> str:
    """Pydantic's `error` in the words of someone editing the YAML file."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_key(str(spot.path[-1]), spot.owner)
    message = _describe_value(error, spot)
    return f"invalid key: {message}" if _names_key(error) else message


def _describe_value(error: ErrorDetails, spot: _Spot) -> str:
    """What is wrong with the value (or key) that `error` is about."""
    kind = error["type"]
    ctx = error.get("ctx", {})
    given = _show(error["input"])
    if kind in ("value_error", "assertion_error"):
        return str(ctx["error"])
    if kind == "missing":
        return "required field is missing"
    if kind == "union_tag_invalid":
        return f"unknown kind {ctx['tag']!r}: expected one of {ctx['expected_tags']}"
    if kind == "union_tag_not_found":
        tags = ", ".join(repr(tag) for tag in _tags_of(spot.owner))
        return f"required field is missing (one of {tags})"
    if kind in ("literal_error", "enum"):
        return f"must be {ctx['expected']}, got {given}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {given}"
    if kind in _BOUNDS:
        bound, words = _BOUNDS[kind]
        return f"must be {words} {ctx[bound]}, got {given}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_short":
        return f"needs at least {ctx['min_length']} entry"
    return str(error["msg"])


def _tags_of(declared: object) -> list[object]:
    """The tags a discriminated union accepts."""
    return [tag for member in get_args(declared) if _is_model(member) for tag in _tags(member)]


def _unknown_key(key: str, owner: object) -> str:
    """An unknown key, with a guess at what was meant and the keys allowed there."""
    if not _is_model(owner):
        return f"unknown key {key!r}"
    allowed = list(owner.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r}{guess}; expected one of: {', '.join(allowed)}"


def _yaml_problem(exc: yaml.YAMLError, text: str, filename: str) -> ConfigProblem:
    """A YAML syntax or construction error at the position the parser reports."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        context = ""
        if exc.context and exc.context_mark is not None:
            context = f"{exc.context} at line {exc.context_mark.line + 1}: "
        message = f"invalid YAML: {context}{exc.problem}"
        return ConfigProblem(
            filename, exc.problem_mark.line + 1, exc.problem_mark.column + 1, "", message
        )
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line, column = before.count("\n") + 1, len(before) - before.rfind("\n")
        return ConfigProblem(filename, line, column, "", f"invalid YAML: {exc.reason}")
    return ConfigProblem(filename, 0, 0, "", f"invalid YAML: {exc}")
