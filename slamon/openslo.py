"""Import OpenSLO `Service` and `SLO` documents (openslo/v1, openslo/v1alpha) as slamon services."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sla.config import TWENTY_FOUR_SEVEN, Weekday
from sla.errors import ConfigError
from slamon.configfile import ConfigProblem

V1 = "openslo/v1"
V1ALPHA = "openslo/v1alpha"
SUPPORTED_VERSIONS = (V1, V1ALPHA)

_BUDGETING_METHODS = {
    V1: ("Occurrences", "Timeslices", "RatioTimeslices"),
    V1ALPHA: ("Occurrences", "Timeslices"),
}
_SKIPPED_KINDS = ("DataSource", "AlertPolicy", "AlertCondition", "AlertNotificationTarget")
_KINDS = ("Service", "SLO", "SLI", *_SKIPPED_KINDS)

# v1 duration-shorthand (`28d`, `1M`) and v1alpha's spelled-out units, as one letter each.
_SHORTHAND = re.compile(r"([1-9][0-9]*)([mhdwMQY])")
_V1ALPHA_UNITS = {
    "Second": "s",
    "Minute": "m",
    "Hour": "h",
    "Day": "d",
    "Week": "w",
    "Month": "M",
    "Quarter": "Q",
    "Year": "Y",
}
_UTC_ZONES = ("UTC", "Etc/UTC", "Etc/UCT", "UCT", "Zulu", "Etc/Zulu", "GMT", "Etc/GMT")

# Words in names, labels and descriptions that mark an SLO about speed rather than success.
_LATENCY_WORDS = re.compile(
    r"latenc|duration|slow|fast|speed|response[ _-]?time|percentile|\bp(?:50|90|95|99)\b",
    re.IGNORECASE,
)
# Queries that count requests under a latency bound (Prometheus histogram buckets).
_LATENCY_QUERY = re.compile(r"_bucket\b|\ble\s*=")

_Path = tuple[str | int, ...]
_MetricKind = Literal["ratio", "threshold", "unknown"]


class OpenSloError(ConfigError):
    """OpenSLO input that cannot be imported; the message lists `problems` one per line."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True)
class OpenSloImport:
    """The slamon config made from OpenSLO documents, and what did not carry over."""

    config: dict[str, Any]
    warnings: list[str]
    notes: list[str]
    files: list[str]
    origins: dict[str, list[str]]  # service id -> the documents it was made from


class _Invalid(Exception):  # noqa: N818 - control flow within this module only
    """A document that cannot be imported; carries the problem to report."""

    def __init__(self, problem: ConfigProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True)
class _Document:
    """One OpenSLO object: its data, the YAML node behind it and where it was written."""

    file: str
    number: int  # 1-based position of the YAML document in its file
    item: int | None  # 1-based position within a document that is a list of objects
    node: Node
    data: Mapping[str, Any]

    @property
    def kind(self) -> str:
        """The object's `kind`."""
        return str(self.data.get("kind"))

    @property
    def version(self) -> str:
        """The object's `apiVersion`."""
        return str(self.data.get("apiVersion"))

    @property
    def name(self) -> str:
        """The object's `metadata.name` (validated on reading)."""
        return str(self.data["metadata"]["name"])

    def label(self) -> str:
        """`SLO 'checkout-availability' (slo.yaml, document 2)` for notes and comments."""
        return f"{self.kind} {self.name!r} ({self.file}, {self._position()})"

    def _position(self) -> str:
        item = "" if self.item is None else f", item {self.item}"
        return f"document {self.number}{item}"

    def get(self, path: _Path) -> Any:
        """The value at `path`, None when any part is absent."""
        value: Any = self.data
        for part in path:
            if isinstance(part, int) and isinstance(value, list) and part < len(value):
                value = value[part]
            elif isinstance(part, str) and isinstance(value, Mapping):
                value = value.get(part)
            else:
                return None
        return value

    def problem(self, path: _Path, message: str) -> ConfigProblem:
        """`message` about the field at `path`, at the line of the nearest node that exists."""
        node = self.node
        for part in path:
            child = _child(node, part)
            if child is None:
                break
            node = child
        field_path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        metadata = self.data.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        where = self._position() + (f" ({self.kind} {name!r})" if name else "")
        return ConfigProblem(
            self.file,
            node.start_mark.line + 1,
            node.start_mark.column + 1,
            f"{where} {field_path.lstrip('.')}".rstrip(),
            message,
        )

    def invalid(self, path: _Path, message: str) -> _Invalid:
        """The exception that rejects this document for `message` about `path`."""
        return _Invalid(self.problem(path, message))

    def text(self, path: _Path, *, required: bool = False) -> str | None:
        """The string at `path`; a missing required or non-string value rejects the document."""
        value = self.get(path)
        if value is None and not required:
            return None
        if value is None:
            raise self.invalid(path, "required field is missing")
        if not isinstance(value, str) or not value.strip():
            raise self.invalid(path, f"expected a non-empty string, got {value!r}")
        return value


def _child(node: Node, part: str | int) -> Node | None:
    if isinstance(node, MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == part:
                return value  # type: ignore[no-any-return]
    if isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]
    return None


@dataclass(frozen=True)
class _Window:
    """What an SLO's time window means for slamon's calendar months."""

    aligned: bool  # calendar-aligned rather than rolling
    zone: str | None  # the time zone of the calendar, None for UTC


@dataclass(frozen=True)
class _Availability:
    """One SLO's availability objective for a service."""

    percent: float
    window: _Window
    slo: _Document


@dataclass
class _Service:
    """A slamon service being assembled from a `Service` document and the SLOs naming it."""

    id: str
    name: str
    customer: str | None = None
    origins: list[str] = field(default_factory=list)
    objectives: list[_Availability] = field(default_factory=list)


def import_openslo(paths: Sequence[Path]) -> OpenSloImport:
    """Read OpenSLO files and turn their `Service` and `SLO` documents into slamon services."""
    importer = _Importer()
    for path in paths:
        importer.read(path)
    return importer.result([str(path) for path in paths])


class _Importer:
    """Collects the documents of all files, then maps them; problems are raised together."""

    def __init__(self) -> None:
        self.problems: list[ConfigProblem] = []
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self.documents: list[_Document] = []

    def read(self, path: Path) -> None:
        """Parse every YAML document of `path` into OpenSLO objects, recording problems."""
        filename = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.problems.append(ConfigProblem(filename, 0, 0, "", "file not found"))
            return
        except UnicodeDecodeError as exc:
            message = f"not UTF-8 text (bad byte at offset {exc.start})"
            self.problems.append(ConfigProblem(filename, 0, 0, "", message))
            return
        except OSError as exc:
            message = f"cannot read: {exc.strerror or exc}"
            self.problems.append(ConfigProblem(filename, 0, 0, "", message))
            return
        found = 0
        try:
            for number, (node, data) in enumerate(_yaml_documents(text), start=1):
                for item, (item_node, item_data) in _objects(node, data):
                    found += 1
                    self._check(filename, number, item, item_node, item_data)
        except yaml.YAMLError as exc:
            self.problems.append(_yaml_problem(exc, filename))
            return
        if not found:
            self.problems.append(ConfigProblem(filename, 0, 0, "", "holds no OpenSLO documents"))

    def _check(self, filename: str, number: int, item: int | None, node: Node, data: Any) -> None:
        """Keep the object if its header is valid; record why not otherwise."""
        if not isinstance(data, Mapping):
            position = f"document {number}" + ("" if item is None else f", item {item}")
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
            message = f"expected an OpenSLO object (a mapping), got {type(data).__name__}"
            self.problems.append(ConfigProblem(filename, line, column, position, message))
            return
        document = _Document(filename, number, item, node, data)
        try:
            _check_header(document)
        except _Invalid as exc:
            self.problems.append(exc.problem)
            return
        self.documents.append(document)

    def result(self, files: list[str]) -> OpenSloImport:
        """Map the collected documents; raise every problem found in reading or mapping."""
        services: dict[str, _Service] = {}
        taken: dict[str, str] = {}  # slamon id -> the OpenSLO service name it came from
        slis = {doc.name: doc for doc in self.documents if doc.kind == "SLI"}
        for doc in self.documents:
            if doc.kind == "Service":
                self._add_service(doc, services, taken)
        for doc in self.documents:
            try:
                if doc.kind == "SLO":
                    self._add_slo(doc, slis, services, taken)
                elif doc.kind == "DataSource":
                    self.warnings.append(
                        f"{doc.label()}: not imported; slamon collects its own events"
                    )
                elif doc.kind in _SKIPPED_KINDS:
                    self.warnings.append(
                        f"{doc.label()}: not imported; slamon ships its own burn-rate alert rules"
                    )
            except _Invalid as exc:
                self.problems.append(exc.problem)
        if self.problems:
            order = {name: index for index, name in enumerate(files)}
            self.problems.sort(key=lambda p: (order.get(p.file, 0), p.line, p.column))
            raise OpenSloError(self.problems)
        calendars: dict[str, Any] = {}
        entries = [self._entry(service, calendars) for service in services.values()]
        config: dict[str, Any] = {"calendars": calendars} if calendars else {}
        config["services"] = entries
        origins = {service.id: service.origins for service in services.values()}
        return OpenSloImport(config, self.warnings, self.notes, files, origins)

    def _add_service(
        self, doc: _Document, services: dict[str, _Service], taken: dict[str, str]
    ) -> None:
        if doc.name in services:
            self.warnings.append(
                f"{doc.label()}: a Service of this name was already read "
                f"({services[doc.name].origins[0]}); this one is ignored"
            )
            return
        name = doc.text(("metadata", "displayName")) or doc.name
        service = _Service(self._service_id(doc, doc.name, taken), name)
        service.customer = _customer(doc)
        service.origins.append(doc.label())
        services[doc.name] = service

    def _service_id(self, doc: _Document, openslo_name: str, taken: dict[str, str]) -> str:
        """A slamon id for `openslo_name`, unique among the services imported so far."""
        base = _slug(openslo_name)
        if not base:
            raise doc.invalid(
                ("metadata", "name"), f"cannot make a service id from {openslo_name!r}"
            )
        service_id, suffix = base, 1
        while service_id in taken:
            suffix += 1
            service_id = f"{base}-{suffix}"
        if suffix > 1:
            self.warnings.append(
                f"{doc.label()}: service {openslo_name!r} gets id {service_id!r} because "
                f"{base!r} is already the id of service {taken[base]!r}"
            )
        taken[service_id] = openslo_name
        return service_id

    def _add_slo(
        self,
        doc: _Document,
        slis: Mapping[str, _Document],
        services: dict[str, _Service],
        taken: dict[str, str],
    ) -> None:
        service_name = doc.text(("spec", "service"), required=True)
        assert service_name is not None  # required=True never returns None
        budgeting = self._budgeting_method(doc)
        targets = [(index, _percent(doc, index)) for index in range(len(_objectives_of(doc)))]
        window = self._window(doc)
        metric, indicator_texts, queries = self._indicator(doc, slis)
        if doc.get(("spec", "alertPolicies")):
            self.warnings.append(
                f"{doc.label()}: spec.alertPolicies not imported; slamon ships its own "
                "multiwindow burn-rate alert rules"
            )
        if service_name not in services:
            service = _Service(self._service_id(doc, service_name, taken), service_name)
            service.origins.append(doc.label())
            services[service_name] = service
            self.notes.append(
                f"service {service.id!r}: no Service document named {service_name!r}; "
                f"made from {doc.label()}"
            )
        service = services[service_name]
        customer = _customer(doc)
        if customer is not None and service.customer is None:
            service.customer = customer
        elif customer not in (None, service.customer):
            self.warnings.append(
                f"{doc.label()}: customer {customer!r} ignored; service {service.id!r} "
                f"already has customer {service.customer!r}"
            )
        if metric == "threshold":
            self.warnings.append(
                f"{doc.label()}: not imported: its indicator is a thresholdMetric (a value "
                "compared with op/value), not a ratio of good events; slamon objectives are "
                "availability percentages"
            )
            return
        texts = [doc.name, *indicator_texts, *_strings(doc.get(("metadata",)))]
        texts.append(doc.text(("spec", "description")) or "")
        if any(_LATENCY_WORDS.search(text) for text in texts) or any(
            _LATENCY_QUERY.search(query) for query in queries
        ):
            self.warnings.append(
                f"{doc.label()}: not imported: a latency SLO; slamon has no latency "
                "objective (probe latency is recorded in the events as latency_ms)"
            )
            return
        if metric == "unknown":
            self.warnings.append(
                f"{doc.label()}: its indicator is not among the imported documents; "
                "taken as an availability ratio because nothing in its names speaks of latency"
            )
        if budgeting != "Occurrences":
            self.warnings.append(
                f"{doc.label()}: budgetingMethod {budgeting}: the target is imported as "
                "the availability percentage; timeSliceTarget, timeSliceWindow, op and value "
                "are dropped (slamon counts downtime from outages, not per time slice)"
            )
        index, percent = max(targets, key=lambda target: target[1])
        if len(targets) > 1:
            self.notes.append(
                f"{doc.label()}: {len(targets)} objectives; kept the strictest, "
                f"spec.objectives[{index}] = {percent:g} %"
            )
        if doc.label() not in service.origins:
            service.origins.append(doc.label())
        service.objectives.append(_Availability(percent, window, doc))

    def _budgeting_method(self, doc: _Document) -> str:
        method = doc.get(("spec", "budgetingMethod"))
        allowed = _BUDGETING_METHODS[doc.version]
        if method is None and doc.version == V1ALPHA:
            return "Occurrences"  # Sloth's v1alpha SLOs leave it out and mean Occurrences
        if method is None:
            raise doc.invalid(("spec", "budgetingMethod"), "required field is missing")
        if method not in allowed:
            raise doc.invalid(
                ("spec", "budgetingMethod"), f"must be one of {', '.join(allowed)}, got {method!r}"
            )
        return str(method)

    def _indicator(
        self, doc: _Document, slis: Mapping[str, _Document]
    ) -> tuple[_MetricKind, list[str], list[str]]:
        """The kind of metric behind the SLO, the SLI's names, and the metric's query texts."""
        if doc.version == V1ALPHA:
            ratios = [objective.get("ratioMetrics") for objective in _objectives_of(doc)]
            if doc.get(("spec", "indicator", "thresholdMetric")) is not None:
                return "threshold", [], []
            if any(ratios):
                return "ratio", [], [text for ratio in ratios for text in _strings(ratio)]
            return "unknown", [], []
        inline = doc.get(("spec", "indicator"))
        reference = doc.text(("spec", "indicatorRef"))
        if inline is not None and reference is not None:
            raise doc.invalid(("spec", "indicatorRef"), "set indicator or indicatorRef, not both")
        if inline is None and reference is None:
            raise doc.invalid(("spec", "indicator"), "set one of indicator or indicatorRef")
        if inline is not None:
            if not isinstance(inline, Mapping):
                raise doc.invalid(("spec", "indicator"), "expected a mapping (an SLI)")
            sli: Mapping[str, Any] = inline
        elif reference in slis:
            sli = slis[str(reference)].data
        else:
            return "unknown", [str(reference)], []
        spec = sli.get("spec")
        spec = spec if isinstance(spec, Mapping) else {}
        names = _strings(sli.get("metadata")) + _strings(spec.get("description"))
        if spec.get("ratioMetric") is not None:
            return "ratio", names, _strings(spec["ratioMetric"])
        if spec.get("thresholdMetric") is not None:
            return "threshold", names, []
        path: _Path = ("spec", "indicator", "spec") if inline is not None else ("spec",)
        target = doc if inline is not None else slis[str(reference)]
        raise target.invalid(path, "the SLI needs a ratioMetric or a thresholdMetric")

    def _window(self, doc: _Document) -> _Window:
        """The SLO's time window; warns where it differs from slamon's months."""
        key = "timeWindows" if doc.version == V1ALPHA else "timeWindow"
        windows = doc.get(("spec", key))
        if windows is None:
            return _Window(aligned=False, zone=None)
        if not isinstance(windows, list) or len(windows) != 1:
            raise doc.invalid(("spec", key), "expected a list of exactly one time window")
        path: _Path = ("spec", key, 0)
        window = windows[0]
        if not isinstance(window, Mapping):
            raise doc.invalid(path, "expected a mapping with the window's duration")
        count, unit = _window_length(doc, path, window)
        spelled = f"{count}{unit}"
        calendar = window.get("calendar")
        rolling = window.get("isRolling", calendar is None)
        if not isinstance(rolling, bool):
            raise doc.invalid((*path, "isRolling"), f"expected true or false, got {rolling!r}")
        if rolling:
            if (count, unit) != (30, "d"):
                self.warnings.append(
                    f"{doc.label()}: rolling {spelled} window: slamon measures the objective "
                    "per calendar month and over a rolling 30 days"
                )
            return _Window(aligned=False, zone=None)
        if (count, unit) != (1, "M"):
            self.warnings.append(
                f"{doc.label()}: calendar-aligned {spelled} window: slamon measures the "
                "objective per calendar month"
            )
        if calendar is None:
            return _Window(aligned=True, zone=None)
        if not isinstance(calendar, Mapping):
            raise doc.invalid((*path, "calendar"), "expected a mapping with startTime, timeZone")
        zone = doc.text((*path, "calendar", "timeZone"), required=True)
        assert zone is not None  # required=True never returns None
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise doc.invalid(
                (*path, "calendar", "timeZone"), f"unknown time zone {zone!r}"
            ) from None
        self._check_start(doc, (*path, "calendar", "startTime"))
        return _Window(aligned=True, zone=None if zone in _UTC_ZONES else zone)

    def _check_start(self, doc: _Document, path: _Path) -> None:
        start = doc.get(path)
        if start is None:
            raise doc.invalid(path, "required field is missing")
        try:
            moment = start if isinstance(start, datetime) else datetime.fromisoformat(str(start))
        except ValueError:
            raise doc.invalid(
                path, f"expected a date and time like 2024-01-01 00:00:00, got {start!r}"
            ) from None
        if (moment.day, moment.hour, moment.minute, moment.second) != (1, 0, 0, 0):
            self.warnings.append(
                f"{doc.label()}: window starts {moment:%Y-%m-%d %H:%M:%S}; slamon months "
                "start on the 1st at 00:00"
            )

    def _entry(self, service: _Service, calendars: dict[str, Any]) -> dict[str, Any]:
        """The slamon config mapping of `service`, adding the calendar its months need."""
        entry: dict[str, Any] = {"id": service.id, "name": service.name}
        if service.customer is not None:
            entry["customer"] = service.customer
        if not service.objectives:
            return entry
        chosen = max(service.objectives, key=lambda objective: objective.percent)
        for other in service.objectives:
            if other is not chosen:
                self.notes.append(
                    f"service {service.id!r}: availability {other.percent:g} % of "
                    f"{other.slo.label()} is weaker than {chosen.percent:g} % of "
                    f"{chosen.slo.label()}; kept the strictest"
                )
            if other.window.aligned and other.window.zone != chosen.window.zone:
                self.warnings.append(
                    f"service {service.id!r}: {other.slo.label()} counts months in "
                    f"{other.window.zone or 'UTC'}, but the service keeps the months of "
                    f"{chosen.slo.label()} ({chosen.window.zone or 'UTC'})"
                )
        zone = chosen.window.zone
        if zone is not None:
            calendar = f"always-{_slug(zone)}"
            calendars[calendar] = {
                "timezone": zone,
                "hours": {day.value: ["00:00-24:00"] for day in Weekday},
            }
            entry["service_hours"] = calendar
            self.notes.append(
                f"service {service.id!r}: calendar-aligned months in {zone}: "
                f"service_hours is the always-on calendar {calendar!r} in that time zone "
                f"({TWENTY_FOUR_SEVEN} counts UTC months)"
            )
        entry["objectives"] = {"availability": chosen.percent}
        return entry


def _yaml_documents(text: str) -> list[tuple[Node, Any]]:
    """The node and the constructed data of every non-empty document of `text`."""
    loader = yaml.SafeLoader(text)
    try:
        documents = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                documents.append((node, loader.construct_document(node)))
        return documents
    finally:
        loader.dispose()


def _objects(node: Node, data: Any) -> list[tuple[int | None, tuple[Node, Any]]]:
    """The OpenSLO objects of one document: itself, or each item of a list of objects."""
    if data is None:
        return []
    if isinstance(data, list) and isinstance(node, SequenceNode):
        return [(index, (node.value[index - 1], item)) for index, item in enumerate(data, 1)]
    return [(None, (node, data))]


def _check_header(doc: _Document) -> None:
    """`apiVersion`, `kind`, `metadata.name` and `spec` of an object we know how to read."""
    version = doc.data.get("apiVersion")
    if version is None:
        hint = ""
        if str(doc.data.get("version", "")).startswith("prometheus/"):
            hint = " (this is a Sloth prometheus/v1 spec, not OpenSLO)"
        raise doc.invalid(("apiVersion",), f"required field is missing{hint}")
    if version not in SUPPORTED_VERSIONS:
        raise doc.invalid(
            ("apiVersion",),
            f"unsupported apiVersion {version!r}: expected {' or '.join(SUPPORTED_VERSIONS)}",
        )
    kind = doc.data.get("kind")
    if kind is None:
        raise doc.invalid(("kind",), "required field is missing")
    kinds = _KINDS if version == V1 else ("Service", "SLO")
    if kind not in kinds:
        raise doc.invalid(
            ("kind",), f"unknown {version} kind {kind!r}: expected one of {', '.join(kinds)}"
        )
    if not isinstance(doc.data.get("metadata"), Mapping):
        raise doc.invalid(("metadata",), "required mapping is missing (with at least name)")
    doc.text(("metadata", "name"), required=True)
    if not isinstance(doc.data.get("spec"), Mapping):
        raise doc.invalid(("spec",), "required mapping is missing")


def _objectives_of(doc: _Document) -> list[Mapping[str, Any]]:
    objectives = doc.get(("spec", "objectives"))
    if objectives is None:
        raise doc.invalid(("spec", "objectives"), "required field is missing")
    if not isinstance(objectives, list) or not objectives:
        raise doc.invalid(("spec", "objectives"), "expected a list of at least one objective")
    for index, objective in enumerate(objectives):
        if not isinstance(objective, Mapping):
            raise doc.invalid(("spec", "objectives", index), "expected a mapping")
    return objectives


def _percent(doc: _Document, index: int) -> float:
    """The objective's target in percent, from `target` (a ratio) or `targetPercent`."""
    path: _Path = ("spec", "objectives", index)
    objective = _objectives_of(doc)[index]
    ratio, percent = objective.get("target"), objective.get("targetPercent")
    if doc.version == V1ALPHA and percent is not None:
        raise doc.invalid((*path, "targetPercent"), "openslo/v1alpha has target only")
    if ratio is not None and percent is not None:
        raise doc.invalid((*path, "targetPercent"), "set target or targetPercent, not both")
    if ratio is None and percent is None:
        raise doc.invalid(path, "set target (a ratio, 0.999) or targetPercent (99.9)")
    key = "target" if ratio is not None else "targetPercent"
    value = objective[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise doc.invalid((*path, key), f"expected a number, got {value!r}")
    if key == "target":
        if not 0 < value < 1:
            raise doc.invalid(
                (*path, key),
                f"must be a ratio above 0 and below 1 (0.999 for 99.9 %), got {value!r}",
            )
        # Decimal keeps 0.9995 as 99.95 rather than 99.95000000000002.
        return float(Decimal(str(value)) * 100)
    if not 0 < value <= 100:
        raise doc.invalid((*path, key), f"must be above 0 and at most 100, got {value!r}")
    return float(value)


def _window_length(doc: _Document, path: _Path, window: Mapping[str, Any]) -> tuple[int, str]:
    """(count, unit letter) of a v1 `duration` or a v1alpha `count` and `unit`."""
    if doc.version == V1ALPHA:
        unit, count = window.get("unit"), window.get("count")
        if unit not in _V1ALPHA_UNITS:
            raise doc.invalid(
                (*path, "unit"), f"must be one of {', '.join(_V1ALPHA_UNITS)}, got {unit!r}"
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise doc.invalid((*path, "count"), f"expected a positive integer, got {count!r}")
        return count, _V1ALPHA_UNITS[str(unit)]
    duration = window.get("duration")
    match = _SHORTHAND.fullmatch(str(duration)) if isinstance(duration, str) else None
    if match is None:
        raise doc.invalid(
            (*path, "duration"),
            f"expected a duration like 28d, 4w or 1M, got {duration!r}",
        )
    return int(match.group(1)), match.group(2)


def _customer(doc: _Document) -> str | None:
    """`customer` (or `<prefix>/customer`) from the labels or annotations, labels first."""
    for section in ("labels", "annotations"):
        entries = doc.get(("metadata", section))
        if not isinstance(entries, Mapping):
            continue
        for key, value in entries.items():
            if str(key).lower().rpartition("/")[2] != "customer":
                continue
            # Labels may hold a list of values; one customer is all a slamon service has.
            values = value if isinstance(value, list) else [value]
            if len(values) != 1 or not str(values[0]).strip():
                raise doc.invalid(
                    ("metadata", section, str(key)), f"expected one customer, got {value!r}"
                )
            return str(values[0])
    return None


def _strings(value: Any) -> list[str]:
    """Every string inside `value`, keys and nested values included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for key, item in value.items() for text in (str(key), *_strings(item))]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _slug(name: str) -> str:
    """A slamon id from an OpenSLO name: lowercase ASCII letters, digits, `.`, `_`, `-`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9._-]+", "-", ascii_name.lower())
    return re.sub(r"-{2,}", "-", slug).strip("-._")


def _yaml_problem(exc: yaml.YAMLError, filename: str) -> ConfigProblem:
    """A YAML syntax error at the position the parser reports."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return ConfigProblem(
            filename, mark.line + 1, mark.column + 1, "", f"invalid YAML: {exc.problem}"
        )
    return ConfigProblem(filename, 0, 0, "", f"invalid YAML: {exc}")


def render_yaml(result: OpenSloImport) -> str:
    """The imported config as YAML, with comments naming its sources and what did not map."""
    lines = [
        f"# slamon config imported from OpenSLO: {', '.join(result.files)}",
        "# Only services and availability objectives carry over: add probes (or another",
        "# outage source) so slamon can measure each objective. See docs/openslo.md.",
    ]
    for title, entries in (("Warnings", result.warnings), ("Notes", result.notes)):
        if entries:
            lines.append(f"# {title}:")
            lines.extend(f"#   - {entry}" for entry in entries)
    calendars = result.config.get("calendars")
    if calendars:
        # Flow style keeps each calendar's week on seven short lines.
        dumped = yaml.safe_dump({"calendars": calendars}, sort_keys=False, default_flow_style=None)
        lines.append(dumped.rstrip())
    services = result.config["services"]
    if not services:
        lines.append("services: []")
        return "\n".join(lines) + "\n"
    lines.append("services:")
    for service in services:
        lines.extend(f"  # from {origin}" for origin in result.origins.get(service["id"], []))
        dumped = yaml.safe_dump([service], sort_keys=False, allow_unicode=True)
        lines.extend(f"  {line}" for line in dumped.rstrip().splitlines())
    return "\n".join(lines) + "\n"
