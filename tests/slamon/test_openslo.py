"""Importing OpenSLO: what becomes slamon config, what is warned about, what is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from sla.config import SlamonConfig
from sla.errors import ConfigError
from slamon.configfile import parse_config_text
from slamon.openslo import OpenSloError, import_openslo, render_yaml

# Not tests/slamon/openslo: pytest imports `slamon` as a namespace package rooted in
# tests/slamon, so a directory of that name would shadow the slamon.openslo module.
FIXTURES = Path(__file__).parent / "openslo-files"
SLOTH = FIXTURES / "sloth-k8s-apiserver.yaml"
WEB_SHOP = FIXTURES / "web-shop.yaml"
TIMESLICES = FIXTURES / "timeslices.yaml"

SLO_HEADER = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: {name}
spec:
  service: {service}
"""


def write(tmp_path: Path, text: str, name: str = "input.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(paths: list[Path]) -> list[tuple[int, int, str, str]]:
    """(line, column, field, message) of every problem importing `paths`."""
    with pytest.raises(OpenSloError) as caught:
        import_openslo(paths)
    return [(p.line, p.column, p.field, p.message) for p in caught.value.problems]


def with_file(warnings: list[str], path: Path) -> list[str]:
    """The warnings with the file name shortened, so expectations stay readable."""
    return [warning.replace(str(path), path.name) for warning in warnings]


def test_sloth_v1alpha_availability_imported_latency_warned() -> None:
    result = import_openslo([SLOTH])

    # No Service documents: the service is made from spec.service; target 0.999 is 99.9 %.
    # The 30-day rolling window is slamon's own rolling window, so it draws no warning.
    assert result.config == {
        "services": [
            {"id": "k8s-apiserver", "name": "k8s-apiserver", "objectives": {"availability": 99.9}}
        ]
    }
    assert with_file(result.warnings, SLOTH) == [
        "SLO 'requests-latency-openslo' (sloth-k8s-apiserver.yaml, document 2): not imported: "
        "a latency SLO; slamon has no latency objective (probe latency is recorded in the "
        "events as latency_ms)"
    ]


def test_multi_document_v1_file() -> None:
    result = import_openslo([WEB_SHOP])

    # Availability SLOs: checkout (indicatorRef to the SLI, target 0.9995 = 99.95 %) and the
    # main page (inline SLI, strictest of 99 and 99.5 = 99.5 %); the service keeps 99.95.
    # Checkout's window is calendar months in New York, hence the always-on NY calendar.
    assert result.config == {
        "calendars": {
            "always-america-new_york": {
                "timezone": "America/New_York",
                "hours": {
                    day: ["00:00-24:00"]
                    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
                },
            }
        },
        "services": [
            {
                "id": "web-shop",
                "name": "Web Shop",
                "customer": "retail",
                "service_hours": "always-america-new_york",
                "objectives": {"availability": 99.95},
            }
        ],
    }
    warnings = with_file(result.warnings, WEB_SHOP)
    assert [warning.split(": ", 1)[0] for warning in warnings] == [
        "DataSource 'prometheus-main' (web-shop.yaml, document 2)",
        "SLO 'checkout-availability' (web-shop.yaml, document 4)",  # its alertPolicies
        "SLO 'main-page-availability' (web-shop.yaml, document 5)",  # rolling 28d
        "SLO 'search-p99' (web-shop.yaml, document 6)",  # a thresholdMetric
        "AlertPolicy 'page-on-fast-burn' (web-shop.yaml, document 7)",
    ]
    assert "spec.alertPolicies not imported" in warnings[1]
    assert "rolling 28d window" in warnings[2]
    assert "thresholdMetric" in warnings[3]
    assert result.origins["web-shop"] == [
        f"Service 'web-shop' ({WEB_SHOP}, document 1)",
        f"SLO 'checkout-availability' ({WEB_SHOP}, document 4)",
        f"SLO 'main-page-availability' ({WEB_SHOP}, document 5)",
    ]
    assert any("kept the strictest, spec.objectives[1] = 99.5 %" in n for n in result.notes)


def test_timeslices_and_service_without_slo() -> None:
    result = import_openslo([TIMESLICES])

    # "Payments API" becomes the id payments-api; its customer comes from an annotation
    # with a prefix. The UTC calendar window needs no calendar of its own.
    assert result.config == {
        "services": [
            {
                "id": "payments-api",
                "name": "Payments API",
                "customer": "Bank of Example",
                "objectives": {"availability": 99.5},
            },
            {"id": "ledger", "name": "General ledger"},
        ]
    }
    warnings = with_file(result.warnings, TIMESLICES)
    assert warnings == [
        "SLO 'payments-uptime' (timeslices.yaml, document 2): window starts 2024-01-15 "
        "00:00:00; slamon months start on the 1st at 00:00",
        "SLO 'payments-uptime' (timeslices.yaml, document 2): budgetingMethod Timeslices: "
        "the target is imported as the availability percentage; timeSliceTarget, "
        "timeSliceWindow, op and value are dropped (slamon counts downtime from outages, "
        "not per time slice)",
    ]


@pytest.mark.parametrize(
    "paths", [[SLOTH], [WEB_SHOP], [TIMESLICES], [WEB_SHOP, SLOTH, TIMESLICES]]
)
def test_rendered_yaml_is_a_valid_config_equal_to_the_import(paths: list[Path]) -> None:
    result = import_openslo(paths)

    loaded = parse_config_text(render_yaml(result), "imported.yaml")

    assert loaded == SlamonConfig.model_validate(result.config)
    assert [service.id for service in loaded.services] == [
        service["id"] for service in result.config["services"]
    ]


def test_rendered_yaml_comments_name_the_sources_and_warnings() -> None:
    text = render_yaml(import_openslo([SLOTH]))

    assert text.startswith(f"# slamon config imported from OpenSLO: {SLOTH}\n")
    assert "#   - SLO 'requests-latency-openslo'" in text
    assert f"  # from SLO 'requests-availability-openslo' ({SLOTH}, document 1)\n" in text


def test_bad_documents_are_errors_with_file_line_and_document() -> None:
    bad = FIXTURES / "bad" / "mixed.yaml"

    assert problems([bad]) == [
        # spec exists (line 6) but has no service
        (6, 3, "document 1 (SLO 'no-service') spec.service", "required field is missing"),
        (
            11,
            13,
            "document 2 (SLO 'from-the-future') apiVersion",
            "unsupported apiVersion 'openslo/v2alpha': expected openslo/v1 or openslo/v1alpha",
        ),
        (
            26,
            15,
            "document 3 (SLO 'percent-as-ratio') spec.objectives[0].target",
            "must be a ratio above 0 and below 1 (0.999 for 99.9 %), got 99.9",
        ),
        (28, 3, "document 4, item 1", "expected an OpenSLO object (a mapping), got str"),
    ]


def test_errors_are_config_errors_naming_the_file() -> None:
    bad = FIXTURES / "bad" / "not-yaml.yaml"

    with pytest.raises(ConfigError, match=rf"^{bad}:5:23: invalid YAML: expected ','"):
        import_openslo([bad])


def test_sloth_native_spec_is_recognised() -> None:
    bad = FIXTURES / "bad" / "sloth-native.yaml"

    assert problems([bad]) == [
        (
            1,
            1,
            "document 1 apiVersion",
            "required field is missing (this is a Sloth prometheus/v1 spec, not OpenSLO)",
        )
    ]


def test_missing_and_empty_files(tmp_path: Path) -> None:
    empty = write(tmp_path, "# nothing here\n---\n")

    assert problems([tmp_path / "absent.yaml", empty]) == [
        (0, 0, "", "file not found"),
        (0, 0, "", "holds no OpenSLO documents"),
    ]


def test_invalid_fields(tmp_path: Path) -> None:
    text = SLO_HEADER.format(name="both", service="web") + (
        "  indicatorRef: ok\n"
        "  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.99, targetPercent: 99}]\n"  # line 9
    )
    text += (
        "---\n"
        + SLO_HEADER.format(name="no-method", service="web")
        + ("  indicatorRef: ok\n  objectives: [{target: 0.99}]\n")
    )
    text += (
        "---\n"
        + SLO_HEADER.format(name="bad-zone", service="web")
        + (
            "  indicatorRef: ok\n"
            "  budgetingMethod: Occurrences\n"
            "  timeWindow: [{duration: 1M, calendar: {startTime: 2024-01-01 00:00:00, "
            "timeZone: Europe/Berln}}]\n"  # line 28
            "  objectives: [{target: 0.99}]\n"
        )
    )
    path = write(tmp_path, text)

    assert problems([path]) == [
        (
            9,
            46,  # the second of the two targets
            "document 1 (SLO 'both') spec.objectives[0].targetPercent",
            "set target or targetPercent, not both",
        ),
        # a missing field is reported at its parent, the spec mapping (line 16)
        (16, 3, "document 2 (SLO 'no-method') spec.budgetingMethod", "required field is missing"),
        (
            28,
            84,
            "document 3 (SLO 'bad-zone') spec.timeWindow[0].calendar.timeZone",
            "unknown time zone 'Europe/Berln'",
        ),
    ]


def test_unresolved_indicator_ref_is_assumed_availability(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        SLO_HEADER.format(name="api-uptime", service="api")
        + "  indicatorRef: defined-elsewhere\n"
        + "  budgetingMethod: Occurrences\n"
        + "  objectives: [{targetPercent: 99.9}]\n",
    )

    result = import_openslo([path])

    assert result.config["services"] == [
        {"id": "api", "name": "api", "objectives": {"availability": 99.9}}
    ]
    assert with_file(result.warnings, path) == [
        "SLO 'api-uptime' (input.yaml, document 1): its indicator is not among the imported "
        "documents; taken as an availability ratio because nothing in its names speaks of "
        "latency"
    ]


def test_indicator_ref_resolves_across_files(tmp_path: Path) -> None:
    sli = write(
        tmp_path,
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: api-speed}\n"
        "spec: {thresholdMetric: {metricSource: {type: Prometheus, spec: {query: x}}}}\n",
        "sli.yaml",
    )
    slo = write(
        tmp_path,
        SLO_HEADER.format(name="api-fast", service="api")
        + "  indicatorRef: api-speed\n  budgetingMethod: Occurrences\n"
        + "  objectives: [{op: lte, value: 0.2, target: 0.95}]\n",
        "slo.yaml",
    )

    result = import_openslo([slo, sli])

    # The SLI in the other file is a thresholdMetric: nothing becomes an objective.
    assert result.config["services"] == [{"id": "api", "name": "api"}]
    assert "thresholdMetric" in result.warnings[0]


def test_colliding_service_ids_are_made_unique(tmp_path: Path) -> None:
    service = "apiVersion: openslo/v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{}}\n"
    path = write(
        tmp_path,
        service.format(name="web-shop") + "---\n" + service.format(name="Web Shop"),
    )

    result = import_openslo([path])

    assert [s["id"] for s in result.config["services"]] == ["web-shop", "web-shop-2"]
    assert with_file(result.warnings, path) == [
        "Service 'Web Shop' (input.yaml, document 2): service 'Web Shop' gets id 'web-shop-2' "
        "because 'web-shop' is already the id of service 'web-shop'"
    ]


def test_v1alpha_calendar_window_in_a_time_zone(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "apiVersion: openslo/v1alpha\nkind: Service\n"
        "metadata: {name: billing, displayName: Billing, labels: {customer: [acme]}}\n"
        "spec: {description: Invoices}\n---\n"
        "apiVersion: openslo/v1alpha\nkind: SLO\nmetadata: {name: billing-availability}\n"
        "spec:\n  service: billing\n  budgetingMethod: Occurrences\n"
        "  timeWindows: [{unit: Month, count: 1, isRolling: false,"
        " calendar: {startTime: '2024-01-01 00:00:00', timeZone: Europe/Berlin}}]\n"
        "  objectives: [{target: 0.98, ratioMetrics: {good: {source: p, queryType: q, query: g},"
        " total: {source: p, queryType: q, query: t}}}]\n",
    )

    result = import_openslo([path])

    # One calendar month in Berlin: no warning, a Berlin always-on calendar; 0.98 = 98 %.
    assert result.warnings == []
    assert result.config["services"] == [
        {
            "id": "billing",
            "name": "Billing",
            "customer": "acme",
            "service_hours": "always-europe-berlin",
            "objectives": {"availability": 98.0},
        }
    ]
    assert result.config["calendars"]["always-europe-berlin"]["timezone"] == "Europe/Berlin"
