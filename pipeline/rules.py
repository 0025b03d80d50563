"""Prometheus alerting and recording rules for the configured services, and their promtool tests.

The service level indicator behind the burn-rate alerts is the share of agreed-service-time
samples in which the service was down: `slamon:service_down` is recorded only while the
service is in agreed service time, so `avg_over_time` of it over a window averages exactly the
agreed samples, and a window without agreed time has no ratio and cannot alert.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import yaml

from sla.config import ServiceConfig, SlamonConfig
from sla.durations import format_duration
from sla.errors import ConfigError

Severity = Literal["page", "ticket"]

DAY = 86_400
DEFAULT_PERIOD = 30 * DAY
"""The error budget period the SRE workbook's burn factors (14.4, 6, 3, 1) are stated for."""
EXHAUSTION_HORIZON = 14 * DAY
CERTIFICATE_HORIZON = 14 * DAY
BUDGET_NEARLY_SPENT = 0.10
PIPELINE_LAG_LIMIT = 300
PIPELINE_ABSENT_FOR = 5 * 60
NO_EVENTS_LIMIT = 30 * 60
REJECTED_WINDOW = 15 * 60

DOWN_RECORD = "slamon:service_down"
TEST_INTERVAL = 60
"""Seconds between the samples (and rule evaluations) of the generated promtool tests."""


def error_ratio_record(window: int) -> str:
    """The recorded error ratio of every service over `window` seconds."""
    return f"slamon:service_error_ratio:avg{format_duration(window)}"


def burn_rate_record(window: int) -> str:
    """The recorded burn rate (error ratio / (1 - objective)) over `window` seconds."""
    return f"slamon:service_burn_rate:avg{format_duration(window)}"


@dataclass(frozen=True)
class BurnCondition:
    """The error ratio over a long and a short window both above `factor` x the allowed ratio."""

    long_window: int
    short_window: int
    budget_share: float
    """The share of the period's error budget that burning at `factor` spends in long_window."""

    def factor(self, period: int) -> float:
        """Burn rate that spends `budget_share` of the budget in the long window."""
        return self.budget_share * period / self.long_window


@dataclass(frozen=True)
class BurnAlert:
    """A multiwindow multi-burn-rate alert: either condition fires it (SRE workbook, ch. 5)."""

    name: str
    severity: Severity
    pace: str
    conditions: tuple[BurnCondition, ...]


FAST_BURN = BurnAlert(
    "SlamonErrorBudgetBurnFast",
    "page",
    "fast",
    (BurnCondition(3600, 300, 0.02), BurnCondition(6 * 3600, 1800, 0.05)),
)
SLOW_BURN = BurnAlert(
    "SlamonErrorBudgetBurnSlow",
    "ticket",
    "slowly",
    (BurnCondition(DAY, 2 * 3600, 0.10), BurnCondition(3 * DAY, 6 * 3600, 0.10)),
)
BURN_ALERTS = (FAST_BURN, SLOW_BURN)
SLI_WINDOWS = tuple(
    sorted(
        {
            w
            for alert in BURN_ALERTS
            for c in alert.conditions
            for w in (c.long_window, c.short_window)
        }
    )
)


@dataclass(frozen=True)
class Links:
    """Where alert annotations point: the runbook and the Grafana dashboards."""

    runbook_url: str
    dashboard_url: str
    """The per-service dashboard; `var-service=<id>` is appended."""
    pipeline_dashboard_url: str | None = None

    def runbook(self, alert: str) -> str:
        """The runbook section of `alert` (a `## <alert>` heading, so its anchor is lowercase)."""
        return f"{self.runbook_url}#{alert.lower()}"

    def service_dashboard(self, service_id: str) -> str:
        """The per-service dashboard with its `$service` variable set."""
        joiner = "&" if "?" in self.dashboard_url else "?"
        return f"{self.dashboard_url}{joiner}var-service={service_id}"


@dataclass(frozen=True)
class Firing:
    """An alert a test expects: the labels of its expression result and that result's value."""

    labels: dict[str, str]
    value: float | None = None
    """Only needed when the annotations show `$value`."""


@dataclass(frozen=True)
class Case:
    """One promtool test: input series, then at `eval_minutes` exactly the `firing` alerts."""

    title: str
    series: dict[str, str]
    eval_minutes: int
    firing: tuple[Firing, ...] = ()
    quiet_before: int | None = None
    """An earlier minute at which nothing may fire yet (before the onset, or within `for`)."""


@dataclass(frozen=True)
class Alert:
    """One alerting rule and the promtool cases that show it fires and stays quiet."""

    name: str
    severity: Severity
    expr: str
    summary: str
    description: str
    for_: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    dashboard: str | None = None
    cases: tuple[Case, ...] = ()

    def rule(self, links: Links) -> dict[str, Any]:
        """The rule as it appears in a Prometheus rules file."""
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_:
            rule["for"] = format_duration(self.for_)
        rule["labels"] = {"severity": self.severity, **self.labels}
        rule["annotations"] = self.annotations(links)
        return rule

    def annotations(self, links: Links) -> dict[str, str]:
        """Summary, description and the runbook and dashboard links."""
        annotations = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": links.runbook(self.name),
        }
        if self.dashboard is not None:
            annotations["dashboard_url"] = self.dashboard
        return annotations


def _number(value: float) -> str:
    """A threshold as PromQL reads it, without float noise (0.1 - 0.0999... style)."""
    return format(round(value, 12), ".12g")


def _percent(value: float) -> str:
    return f"{_number(value)}%"


def _literal(text: str) -> str:
    """Configured text placed in an annotation, unable to open a Go template action."""
    return text.replace("{{", "{ {").replace("}}", "} }")


def _selector(metric: str, **labels: str) -> str:
    matchers = ",".join(f'{name}="{value}"' for name, value in labels.items())
    return f"{metric}{{{matchers}}}"


def _values(*runs: tuple[float, int]) -> str:
    """promtool's series notation for runs of (value, samples): `1x2 0` is 1, 1, 1, 0."""
    spelled = [(str(int(v)) if float(v).is_integer() else repr(float(v)), n) for v, n in runs]
    return " ".join(value if count == 1 else f"{value}x{count - 1}" for value, count in spelled)


def _objective(service: ServiceConfig) -> float | None:
    """The availability objective as a ratio, None when the agreement sets none."""
    percent = service.objectives.availability
    return None if percent is None else percent / 100


def _threshold_cases(
    name: str, series: Callable[[bool], dict[str, float]], firing: Firing, for_: int
) -> tuple[Case, ...]:
    """Constant series over the threshold (`True`) and healthy (`False`): the first fires one
    evaluation after `for_` has passed, and not before; the second stays quiet."""
    minutes = for_ // TEST_INTERVAL + 1

    def constant(bad: bool) -> dict[str, str]:
        return {selector: _values((value, minutes + 1)) for selector, value in series(bad).items()}

    return (
        Case(
            f"{name} fires once over its threshold for {format_duration(for_)}"
            if for_
            else f"{name} fires at the first evaluation over its threshold",
            constant(True),
            minutes,
            (firing,),
            quiet_before=minutes - 2 if for_ else None,
        ),
        Case(f"{name} stays quiet on a healthy series", constant(False), minutes),
    )


class _ServiceAlerts:
    """The alerts of one service, each with its test cases."""

    def __init__(self, service: ServiceConfig, links: Links, period: int) -> None:
        self.service = service
        self.period = period
        self.name = _literal(service.name)
        self.dashboard = links.service_dashboard(service.id)

    def alerts(self) -> Iterator[Alert]:
        """Every alert the service's configuration calls for."""
        objective = _objective(self.service)
        if objective is not None:
            for burn in BURN_ALERTS:
                yield self.burn_rate(burn, objective)
            yield self.availability_below_target(objective)
            yield self.error_budget_nearly_spent()
        if self.service.tickets is not None:
            yield self.tickets_at_risk(next(iter(self.service.tickets.goals)))
        if self.service.capacity:
            resource, threshold = next(iter(self.service.capacity.items()))
            yield self.capacity_over_critical(resource, threshold.warn, threshold.crit)
            yield self.capacity_exhaustion_soon(resource)
        if self.service.objectives.continuity_test_interval is not None:
            yield self.continuity_test_overdue()
        https = [p.name for p in self.service.probes if (p.http or "").startswith("https://")]
        if https:
            yield self.certificate_expiring_soon(https[0])

    def _alert(self, name: str, severity: Severity, expr: str, **kwargs: Any) -> Alert:
        return Alert(
            name,
            severity,
            expr,
            labels={"service": self.service.id},
            dashboard=self.dashboard,
            **kwargs,
        )

    def burn_rate(self, burn: BurnAlert, objective: float) -> Alert:
        """Error budget burning `burn.pace` in agreed service time."""
        budget = 1 - objective
        sid = self.service.id
        branches = []
        spelled = []
        for condition in burn.conditions:
            factor = condition.factor(self.period)
            limit = f"{_number(factor)} * {_number(budget)}"
            long_ratio = _selector(error_ratio_record(condition.long_window), service=sid)
            short_ratio = _selector(error_ratio_record(condition.short_window), service=sid)
            branches.append(f"(\n  {long_ratio} > {limit}\nand\n  {short_ratio} > {limit}\n)")
            spelled.append(
                f"{_number(factor)}x over {format_duration(condition.long_window)} and "
                f"{format_duration(condition.short_window)} "
                f"({_percent(condition.budget_share * 100)} of the budget in "
                f"{format_duration(condition.long_window)})"
            )
        description = (
            f"{self.name} ({sid}) was down in agreed service time faster than its "
            f"{_percent(objective * 100)} objective allows: error budget burn rate above "
            f"{' or '.join(spelled)}, over a {format_duration(self.period)} budget period."
        )
        return self._alert(
            burn.name,
            burn.severity,
            "\nor\n".join(branches) + "\n",
            summary=f"{self.name} is burning its error budget {burn.pace}",
            description=description,
            cases=self._burn_cases(burn, budget),
        )

    def _burn_cases(self, burn: BurnAlert, budget: float) -> tuple[Case, ...]:
        sid = self.service.id
        up = _selector("slamon_service_up", service=sid)
        agreed = _selector("slamon_agreed_service_time_active", service=sid)
        # Detection time of a full outage (workbook): factor x budget x long window; a
        # condition whose threshold is a ratio of 1 or more can never hold.
        detections = [
            c.factor(self.period) * budget * c.long_window / TEST_INTERVAL
            for c in burn.conditions
            if c.factor(self.period) * budget < 1
        ]
        if not detections:
            return ()
        # A full long window of healthy history first, so the ratios are the workbook's.
        onset = max(c.long_window for c in burn.conditions) // TEST_INTERVAL
        # With d of the window's W + 1 samples down it fires once d > factor x budget x (W + 1):
        # not with floor(detection) samples down, surely with ceil(detection) + 2.
        quiet = onset + math.floor(min(detections)) - 1
        within = math.ceil(min(detections)) + 1
        total = onset + within + 1
        return (
            Case(
                f"{burn.name} fires within {within}m of a full outage in agreed service time",
                {agreed: _values((1, total)), up: _values((1, onset), (0, total - onset))},
                onset + within,
                (Firing({"service": sid}),),
                quiet_before=quiet,
            ),
            # Two hours of history suffice: were it agreed time, the outage would fire the alert.
            Case(
                f"{burn.name} stays quiet while the service is down outside agreed service time",
                {
                    agreed: _values((1, 120), (0, within + 1)),
                    up: _values((1, 120), (0, within + 1)),
                },
                120 + within,
            ),
        )

    def availability_below_target(self, objective: float) -> Alert:
        """Month-to-date availability under the agreed objective."""
        name, for_ = "SlamonAvailabilityBelowTarget", 300
        labels = {"service": self.service.id, "window": "month"}
        # Twice the allowed downtime: clearly under target, and a clean percentage.
        low = 1 - 2 * (1 - objective)
        return self._alert(
            name,
            "ticket",
            f"{_selector('slamon_availability_ratio', **labels)} < {_number(objective)}",
            for_=for_,
            summary=f"{self.name} is under its availability objective this month",
            description=(
                f"{self.name} availability this month is {{{{ $value | humanizePercentage }}}}, "
                f"under the agreed {_percent(objective * 100)}: the agreement is breached."
            ),
            cases=_threshold_cases(
                name,
                lambda bad: {_selector("slamon_availability_ratio", **labels): low if bad else 1},
                Firing(labels, low),
                for_,
            ),
        )

    def error_budget_nearly_spent(self) -> Alert:
        """Less than BUDGET_NEARLY_SPENT of the month's error budget left."""
        name, for_ = "SlamonErrorBudgetNearlySpent", 300
        labels = {"service": self.service.id, "window": "month"}
        metric = _selector("slamon_error_budget_remaining_ratio", **labels)
        return self._alert(
            name,
            "ticket",
            f"{metric} < {_number(BUDGET_NEARLY_SPENT)}",
            for_=for_,
            summary=f"{self.name} has almost no error budget left this month",
            description=(
                f"{self.name} has {{{{ $value | humanizePercentage }}}} of this month's error "
                f"budget left (alert under {_percent(BUDGET_NEARLY_SPENT * 100)}); "
                "freeze risky changes until the month ends or availability recovers."
            ),
            cases=_threshold_cases(
                name,
                lambda bad: {metric: 0.05 if bad else 0.5},
                Firing(labels, 0.05),
                for_,
            ),
        )

    def tickets_at_risk(self, priority: str) -> Alert:
        """Open tickets past the at-risk share of their goal, not yet breached."""
        name = "SlamonTicketsAtRisk"
        labels = {"service": self.service.id, "priority": priority, "clock": "response"}
        return self._alert(
            name,
            "ticket",
            f"{_selector('slamon_tickets_at_risk', service=self.service.id)} > 0",
            summary=f"{self.name} has tickets about to breach their SLA",
            description=(
                f'{{{{ printf "%.0f" $value }}}} {{{{ $labels.priority }}}} tickets of '
                f"{self.name} are close to their {{{{ $labels.clock }}}} goal."
            ),
            cases=_threshold_cases(
                name,
                lambda bad: {_selector("slamon_tickets_at_risk", **labels): 2 if bad else 0},
                Firing(labels, 2),
                0,
            ),
        )

    def capacity_over_critical(self, resource: str, warn: float, crit: float) -> Alert:
        """A resource's utilization above its critical threshold."""
        name, for_ = "SlamonCapacityOverCritical", 300
        sid = self.service.id
        utilization = {"service": sid, "resource": resource, "host": "host-1"}
        high = crit + (1 - crit) / 2
        return self._alert(
            name,
            "page",
            f"{_selector('slamon_capacity_utilization_ratio', service=sid)}\n"
            "> on (service, resource) group_left ()\n"
            "max by (service, resource) ("
            f"{_selector('slamon_capacity_threshold_ratio', service=sid, level='crit')})\n",
            for_=for_,
            summary=f"{self.name} {{{{ $labels.resource }}}} is over its critical threshold",
            description=(
                f"{{{{ $labels.resource }}}} of {self.name} on {{{{ $labels.host }}}} is at "
                "{{ $value | humanizePercentage }} utilization, above the critical threshold."
            ),
            cases=_threshold_cases(
                name,
                lambda bad: {
                    _selector("slamon_capacity_utilization_ratio", **utilization): high
                    if bad
                    else warn,
                    _selector(
                        "slamon_capacity_threshold_ratio",
                        service=sid,
                        resource=resource,
                        level="crit",
                    ): crit,
                    _selector(
                        "slamon_capacity_threshold_ratio",
                        service=sid,
                        resource=resource,
                        level="warn",
                    ): warn,
                },
                Firing(utilization, high),
                for_,
            ),
        )

    def capacity_exhaustion_soon(self, resource: str) -> Alert:
        """A resource's trend reaching full capacity within EXHAUSTION_HORIZON."""
        name, for_ = "SlamonCapacityExhaustionSoon", 1800
        labels = {"service": self.service.id, "resource": resource, "host": "host-1"}
        metric = _selector("slamon_capacity_exhaustion_seconds", service=self.service.id)
        return self._alert(
            name,
            "ticket",
            f"{metric} < {EXHAUSTION_HORIZON}",
            for_=for_,
            summary=f"{self.name} {{{{ $labels.resource }}}} runs out within "
            f"{format_duration(EXHAUSTION_HORIZON)}",
            description=(
                f"At its current trend {{{{ $labels.resource }}}} of {self.name} on "
                "{{ $labels.host }} is exhausted in {{ $value | humanizeDuration }}."
            ),
            cases=_threshold_cases(
                name,
                lambda bad: {
                    _selector("slamon_capacity_exhaustion_seconds", **labels): 3 * DAY
                    if bad
                    else 30 * DAY
                },
                Firing(labels, 3 * DAY),
                for_,
            ),
        )

    def continuity_test_overdue(self) -> Alert:
        """No continuity test within the agreed test interval."""
        name, for_ = "SlamonContinuityTestOverdue", 600
        labels = {"service": self.service.id}
        interval = self.service.objectives.continuity_test_interval or 0
        metric = _selector("slamon_continuity_test_overdue", **labels)
        return self._alert(
            name,
            "ticket",
            f"{metric} == 1",
            for_=for_,
            summary=f"{self.name} continuity test is overdue",
            description=(
                f"{self.name} has had no continuity test within its agreed interval of "
                f"{format_duration(interval)}: schedule a recovery test."
            ),
            cases=_threshold_cases(
                name,
                lambda bad: {metric: 1 if bad else 0},
                Firing(labels, 1),
                for_,
            ),
        )

    def certificate_expiring_soon(self, check: str) -> Alert:
        """A probed TLS certificate expiring within CERTIFICATE_HORIZON."""
        name, for_ = "SlamonCertificateExpiringSoon", 600
        labels = {"service": self.service.id, "check": check}
        metric = "slamon_probe_certificate_expiry_timestamp_seconds"
        evaluated = (for_ // TEST_INTERVAL + 1) * TEST_INTERVAL
        # Test time starts at the Unix epoch: at the evaluation 7 days are left.
        soon = 7 * DAY + evaluated
        return self._alert(
            name,
            "ticket",
            f"{_selector(metric, service=self.service.id)} - time() < {CERTIFICATE_HORIZON}",
            for_=for_,
            summary=f"{self.name} TLS certificate expires within "
            f"{format_duration(CERTIFICATE_HORIZON)}",
            description=(
                f"The certificate {self.name} presents to the {{{{ $labels.check }}}} probe "
                "expires in {{ $value | humanizeDuration }}: renew it."
            ),
            cases=_threshold_cases(
                name,
                lambda bad: {_selector(metric, **labels): soon if bad else 90 * DAY},
                Firing(labels, 7 * DAY),
                for_,
            ),
        )


def _pipeline_alerts(links: Links) -> Iterator[Alert]:
    """The pipeline's own health: gone, storing nothing, storing late, rejecting events."""
    pipeline_alert = partial(
        Alert, labels={"component": "pipeline"}, dashboard=links.pipeline_dashboard_url
    )
    last_batch = "slamon_pipeline_last_batch_timestamp_seconds"
    # The lag gauge keeps its last value when nothing arrives and the service-level series
    # vanish with the pipeline: neither can tell that measurement itself has stopped.
    absent_for = format_duration(PIPELINE_ABSENT_FOR)
    yield pipeline_alert(
        "SlamonPipelineDown",
        "page",
        f"absent({last_batch})",
        for_=PIPELINE_ABSENT_FOR,
        summary="no slamon pipeline is scraped",
        description=(
            f"Prometheus has scraped no slamon pipeline for {absent_for}: no event is stored, "
            "service levels are not computed and the burn-rate alerts cannot fire."
        ),
        cases=(
            Case(
                f"SlamonPipelineDown fires once no pipeline was scraped for {absent_for}",
                {_selector(last_batch): "60 120 180 stale"},
                PIPELINE_ABSENT_FOR // TEST_INTERVAL + 4,
                (Firing({}),),
                quiet_before=PIPELINE_ABSENT_FOR // TEST_INTERVAL + 1,
            ),
            Case(
                "SlamonPipelineDown stays quiet while a pipeline is scraped",
                {_selector(last_batch): "0+60x10"},
                PIPELINE_ABSENT_FOR // TEST_INTERVAL + 4,
            ),
        ),
    )
    limit = format_duration(NO_EVENTS_LIMIT)
    minutes = NO_EVENTS_LIMIT // TEST_INTERVAL
    yield pipeline_alert(
        "SlamonNoEventsStored",
        "ticket",
        f"time() - {last_batch} > {NO_EVENTS_LIMIT}",
        for_=PIPELINE_ABSENT_FOR,
        summary="slamon stores no events",
        description=(
            "The slamon pipeline has stored no event for {{ $value | humanizeDuration }} "
            f"(alert over {limit}): probes, capacity samples and webhooks are not reaching "
            "it, so outages in that time are not measured."
        ),
        cases=(
            Case(
                f"SlamonNoEventsStored fires after {limit} without a stored event",
                # Batches every minute until minute 5, then none.
                {_selector(last_batch): f"0+60x5 300x{minutes + 10}"},
                minutes + 5 + PIPELINE_ABSENT_FOR // TEST_INTERVAL + 1,
                (Firing({}, NO_EVENTS_LIMIT + PIPELINE_ABSENT_FOR + TEST_INTERVAL),),
                quiet_before=minutes + 5 + PIPELINE_ABSENT_FOR // TEST_INTERVAL - 1,
            ),
            Case(
                "SlamonNoEventsStored stays quiet while batches are stored",
                {_selector(last_batch): f"0+60x{minutes + 10}"},
                minutes + 10,
            ),
        ),
    )
    lag_for = 600
    yield pipeline_alert(
        "SlamonPipelineLagHigh",
        "page",
        f"slamon_pipeline_lag_seconds > {PIPELINE_LAG_LIMIT}",
        for_=lag_for,
        summary="slamon stores events late",
        description=(
            "Events reach the slamon store {{ $value | humanizeDuration }} after they happened "
            f"(alert over {format_duration(PIPELINE_LAG_LIMIT)}): service levels and burn-rate "
            "alerts are behind reality."
        ),
        cases=_threshold_cases(
            "SlamonPipelineLagHigh",
            lambda bad: {"slamon_pipeline_lag_seconds": 600 if bad else 2},
            Firing({}, 600),
            lag_for,
        ),
    )
    rejected = _selector("slamon_events_rejected_total", reason="not_json")
    window = format_duration(REJECTED_WINDOW)
    yield pipeline_alert(
        "SlamonEventsRejected",
        "ticket",
        f"sum by (reason) (increase(slamon_events_rejected_total[{window}])) > 0",
        summary="slamon rejects incoming events",
        description=(
            "slamon sent events to the dead-letter topic in the last "
            f"{window} (reason {{{{ $labels.reason }}}}): their senders' data is missing from "
            "the service levels."
        ),
        cases=(
            Case(
                "SlamonEventsRejected fires on the first rejected event",
                {rejected: "0 0 0 1 1 1"},
                4,
                (Firing({"reason": "not_json"}),),
                quiet_before=2,
            ),
            Case("SlamonEventsRejected stays quiet without rejections", {rejected: "0x5"}, 4),
        ),
    )


def _recording_rules() -> list[dict[str, str]]:
    # Kept where agreed time is active; absent `slamon_service_up` (no evidence yet) counts
    # as up, because downtime comes only from outage evidence, never from missing data.
    down = (
        "max by (service) (\n"
        "  (1 - slamon_service_up) and (slamon_agreed_service_time_active == 1)\n"
        "  or\n"
        "  0 * (slamon_agreed_service_time_active == 1)\n"
        ")\n"
    )
    rules = [{"record": DOWN_RECORD, "expr": down}]
    rules += [
        {
            "record": error_ratio_record(w),
            "expr": f"avg_over_time({DOWN_RECORD}[{format_duration(w)}])",
        }
        for w in SLI_WINDOWS
    ]
    rules += [
        {
            "record": burn_rate_record(w),
            "expr": f"{error_ratio_record(w)}\n/ on (service)\n"
            "(1 - max by (service) (slamon_availability_target_ratio))\n",
        }
        for w in SLI_WINDOWS
    ]
    return rules


class RuleSet:
    """The recording rules and alerts for a configuration, as a rules file and as promtool tests."""

    def __init__(self, config: SlamonConfig, links: Links, period: int = DEFAULT_PERIOD) -> None:
        if period <= max(SLI_WINDOWS):
            raise ConfigError(
                f"error budget period {format_duration(period)} must be longer than the longest "
                f"burn-rate window ({format_duration(max(SLI_WINDOWS))})"
            )
        self.config = config
        self.links = links
        self.period = period

    def groups(self) -> Iterator[tuple[str, list[Alert]]]:
        """The alert groups: one per service with alerts, then the pipeline's."""
        for service in self.config.services:
            alerts = list(_ServiceAlerts(service, self.links, self.period).alerts())
            if alerts:
                yield f"slamon-service-{service.id}", alerts
        yield "slamon-pipeline", list(_pipeline_alerts(self.links))

    def rules(self) -> dict[str, Any]:
        """The rules file as a mapping."""
        groups: list[dict[str, Any]] = [{"name": "slamon-sli", "rules": _recording_rules()}]
        groups += [
            {"name": name, "rules": [alert.rule(self.links) for alert in alerts]}
            for name, alerts in self.groups()
        ]
        return {"groups": groups}

    def tests(self, rule_file: str) -> dict[str, Any]:
        """promtool unit tests: per alert kind, its cases for the first service that has it."""
        tested: set[str] = set()
        tests = []
        for _, alerts in self.groups():
            for alert in alerts:
                if alert.name in tested:
                    continue
                tested.add(alert.name)
                tests += [self._test(alert, case) for case in alert.cases]
        return {
            "rule_files": [rule_file],
            "evaluation_interval": format_duration(TEST_INTERVAL),
            "tests": tests,
        }

    def _test(self, alert: Alert, case: Case) -> dict[str, Any]:
        checks: list[dict[str, Any]] = []
        if case.quiet_before is not None:
            checks.append(_expect(alert.name, case.quiet_before, []))
        expected = []
        for firing in case.firing:
            labels = {**firing.labels, **alert.rule(self.links)["labels"]}
            annotations = {
                key: _expand(text, labels, firing.value)
                for key, text in alert.annotations(self.links).items()
            }
            expected.append({"exp_labels": labels, "exp_annotations": annotations})
        checks.append(_expect(alert.name, case.eval_minutes, expected))
        return {
            "name": case.title,
            "interval": format_duration(TEST_INTERVAL),
            "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
            "alert_rule_test": checks,
        }


def _expect(alert: str, minute: int, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "eval_time": format_duration(minute * TEST_INTERVAL),
        "alertname": alert,
        "exp_alerts": alerts,
    }


_ACTION = re.compile(r"\{\{\s*(.*?)\s*\}\}")


def _humanize_duration(seconds: float) -> str:
    """Go's humanizeDuration (Prometheus templates) for a minute or more."""
    if seconds < 60:
        raise ValueError(f"test values under a minute are not expanded ({seconds})")
    whole = int(seconds)
    days, hours, minutes, secs = whole // DAY, whole // 3600 % 24, whole // 60 % 60, whole % 60
    if days:
        return f"{days}d {hours}h {minutes}m {secs}s"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s"


def _expand(template: str, labels: dict[str, str], value: float | None) -> str:
    """The annotation Prometheus renders from `template`, for the few actions the rules use."""
    actions: dict[str, Callable[[float], str]] = {
        "$value | humanizePercentage": lambda v: f"{v * 100:.4g}%",
        "$value | humanizeDuration": _humanize_duration,
        'printf "%.0f" $value': lambda v: f"{v:.0f}",
    }

    def render(match: re.Match[str]) -> str:
        action = match.group(1)
        if action.startswith("$labels."):
            return labels[action.removeprefix("$labels.")]
        if value is None:
            raise ValueError(f"a test case shows {action!r} but expects no value")
        return actions[action](value)

    return _ACTION.sub(render, template)


class _Dumper(yaml.SafeDumper):
    """Writes multi-line PromQL as literal blocks, as a person would."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_text)


def _dump(document: dict[str, Any], header: str) -> str:
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
    return header + body


def generate_rules(
    config: SlamonConfig,
    *,
    runbook_url: str,
    dashboard_url: str,
    pipeline_dashboard_url: str | None = None,
    period: int = DEFAULT_PERIOD,
) -> dict[str, Any]:
    """The Prometheus rules file for `config` as a mapping (`{"groups": [...]}`)."""
    links = Links(runbook_url, dashboard_url, pipeline_dashboard_url)
    return RuleSet(config, links, period).rules()


def render_rules(
    config: SlamonConfig,
    *,
    runbook_url: str,
    dashboard_url: str,
    pipeline_dashboard_url: str | None = None,
    period: int = DEFAULT_PERIOD,
) -> str:
    """The Prometheus rules file for `config` as YAML; the same config gives the same text."""
    rules = generate_rules(
        config,
        runbook_url=runbook_url,
        dashboard_url=dashboard_url,
        pipeline_dashboard_url=pipeline_dashboard_url,
        period=period,
    )
    return _dump(rules, "# Generated by `slamon rules`; regenerate instead of editing.\n")


def generate_rule_tests(
    config: SlamonConfig,
    *,
    rule_file: str,
    runbook_url: str,
    dashboard_url: str,
    pipeline_dashboard_url: str | None = None,
    period: int = DEFAULT_PERIOD,
) -> str:
    """`promtool test rules` input for the rules of `config`, read from `rule_file` (a path
    relative to the test file); pass the same links and period as to `render_rules`."""
    links = Links(runbook_url, dashboard_url, pipeline_dashboard_url)
    tests = RuleSet(config, links, period).tests(rule_file)
    return _dump(tests, "# Generated by `slamon rules --tests`: run `promtool test rules`.\n")
