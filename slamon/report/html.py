"""The review pack as one self-contained HTML page: inline CSS and SVG, no script, print-ready.

Every figure cell carries its table, column and exact value (`data-column`, `data-value`,
the CSV spelling), so the page can be checked against the CSV and `slamon compute`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from html import escape

from sla.service_levels import rfc3339
from slamon.report.build import ReviewPack, ServiceReview
from slamon.report.charts import Bar, DayPoint, capacity_chart, ratio_bars
from slamon.report.formats import duration, local_time, percent
from slamon.report.tables import Cell, Row, Table, cell_text

EMPTY_ACTION_ROWS = 6
# An en dash marks a figure that is not defined (no agreed time, no data, no objective).
NOT_DEFINED = "\u2013"

SECTIONS = (
    ("compliance", "SLA compliance"),
    ("availability", "Availability and outages"),
    ("reliability", "MTBF and MTRS"),
    ("tickets", "Incidents and requests"),
    ("changes", "Changes"),
    ("capacity", "Capacity"),
    ("continuity", "Continuity tests"),
    ("trend", "Trend over the previous six months"),
    ("actions", "Actions"),
)

_CSS = """
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; font-size: 10pt;
       color: #222; margin: 0 auto; max-width: 190mm; padding: 8mm 0; line-height: 1.35; }
header { border-bottom: 3px solid #1565c0; margin-bottom: 10pt; }
h1 { font-size: 19pt; margin: 0 0 2pt; color: #0d47a1; }
h2 { font-size: 14pt; margin: 18pt 0 6pt; color: #0d47a1; border-bottom: 1px solid #90a4ae;
     break-after: avoid; }
h3 { font-size: 11pt; margin: 12pt 0 4pt; break-after: avoid; }
p { margin: 3pt 0 6pt; }
.meta { color: #555; font-size: 9pt; }
nav ol { columns: 3; font-size: 9pt; margin: 4pt 0 8pt; }
nav a { color: #1565c0; text-decoration: none; }
table { border-collapse: collapse; width: 100%; margin: 4pt 0 8pt; font-size: 8.5pt; }
th, td { border-bottom: 1px solid #ddd; padding: 2.5pt 4pt; text-align: left;
         vertical-align: top; }
th { background: #eceff1; font-weight: bold; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr { break-inside: avoid; }
.met { color: #2e7d32; font-weight: bold; }
.breached { color: #c62828; font-weight: bold; }
.nodata { color: #777; }
figure { margin: 4pt 0 10pt; break-inside: avoid; }
figcaption { font-size: 8.5pt; color: #555; }
svg.chart { width: 100%; height: auto; display: block; }
.empty td { height: 18pt; }
.keep { break-inside: avoid; }
.none { color: #666; font-style: italic; }
footer { border-top: 1px solid #90a4ae; margin-top: 14pt; padding-top: 4pt; color: #555;
         font-size: 8pt; overflow-wrap: anywhere; }
.restated { color: #c62828; font-weight: bold; }
@media print {
  body { max-width: none; padding: 0; }
  h2.section { break-before: page; }
  nav { break-after: avoid; }
  a { color: inherit; }
}
"""

_INSTANTS = frozenset(
    {
        "start",
        "end",
        "started_at",
        "breach_at",
        "stopped_at",
        "exhaustion_at",
        "invoked_at",
        "restored_at",
        "data_restored_to",
        "next_due",
        "last_test_invoked_at",
    }
)
_AVAILABILITY = frozenset({"availability_ratio", "availability_24x7_ratio"})
# Ratios that are worse the higher they are: shown rounded up, so that used + headroom
# still adds up to the threshold and no utilization looks lower than it was.
_HIGH_IS_BAD = frozenset({"max_ratio", "p95_ratio", "last_ratio", "emergency_share"})


def _format(column: str, value: Cell, timezone: str) -> str:
    """A cell for people: percentages, durations, local times, yes/no."""
    if value is None:
        return NOT_DEFINED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column in _INSTANTS and isinstance(value, str):
        return local_time(int(datetime.fromisoformat(value).timestamp()), timezone)
    if isinstance(value, int | float):
        if column in _AVAILABILITY:
            return percent(value, 3)
        if column.endswith(("ratio", "share")) or column in {"headroom"}:
            return percent(value, 1, high_is_bad=column in _HIGH_IS_BAD)
        if column.endswith("_seconds") or column.startswith("seconds_"):
            return duration(value)
        if column.endswith("percent"):
            return f"{value:g} %"
    return str(value)


def _cell(table: str, column: str, value: Cell, text: str, *, css: str = "") -> str:
    """A figure as shown, carrying the exact value of its table cell."""
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    classes = " ".join(c for c in (css, "num" if numeric else "") if c)
    return (
        f'<td data-table="{table}" data-column="{column}" '
        f'data-value="{escape(cell_text(value))}"'
        + (f' class="{classes}"' if classes else "")
        + f">{escape(text)}</td>"
    )


def _grid(
    table: Table,
    rows: Iterable[Row],
    columns: Sequence[tuple[str, str]],
    zones: Mapping[str, str],
    *,
    cell: Callable[[Row, str], str] | None = None,
    empty: str = "None this month.",
) -> str:
    """An HTML table of the chosen columns (name, heading) of some rows of `table`."""
    rows = list(rows)
    if not rows:
        return f'<p class="none">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(heading)}</th>" for _, heading in columns)
    body = []
    for row in rows:
        tz = zones.get(str(row["service"]), "UTC")
        cells = "".join(
            cell(row, name)
            if cell is not None and name in {"achieved", "target"}
            else _cell(
                table.name, name, row[name], _format(name, row[name], tz), css=_css(name, row)
            )
            for name, _ in columns
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _css(column: str, row: Row) -> str:
    value = row[column]
    if column == "result":
        return {"met": "met", "breached": "breached"}.get(str(value), "nodata")
    if column in {"passed", "rto_met", "rpo_met"} and isinstance(value, bool):
        return "met" if value else "breached"
    if column == "overdue" and value is True:
        return "breached"
    return ""


def _compliance_cell(row: Row, column: str) -> str:
    """Target and achieved in the unit their row names."""
    value = row[column]
    unit = row["target_unit" if column == "target" else "achieved_unit"]
    if value is None:
        text = NOT_DEFINED
    elif unit == "percent":
        text = f"{value:g} %"
    elif unit == "ratio" and isinstance(value, float):
        text = percent(value, 3 if row["objective"] == "availability" else 1)
    else:
        text = duration(value if isinstance(value, int | float) else None)
        if row["objective"] in {"response", "resolution"} and column == "target":
            text += " per ticket"
    return _cell("sla_compliance", column, value, text)


class _Page:
    """Builds the page of one pack from its tables."""

    def __init__(self, pack: ReviewPack, tables: Mapping[str, Table]) -> None:
        self.pack = pack
        self.tables = tables
        self.zones = {r.service.id: r.timezone for r in pack.services}

    def grid(
        self,
        name: str,
        columns: Sequence[tuple[str, str]],
        *,
        service: str | None = None,
        empty: str = "None this month.",
    ) -> str:
        """Table `name` (only `service`'s rows when given) with the chosen columns."""
        table = self.tables[name]
        rows = [r for r in table.rows if service is None or r["service"] == service]
        cell = _compliance_cell if name == "sla_compliance" else None
        return _grid(table, rows, columns, self.zones, cell=cell, empty=empty)

    def heading(self, review: ServiceReview) -> str:
        s = review.service
        return f"<h3>{escape(s.name)} <span class=meta>({escape(s.id)})</span></h3>"

    def section(self, key: str, body: str) -> str:
        number = next(i for i, (k, _) in enumerate(SECTIONS, start=1) if k == key)
        title = dict(SECTIONS)[key]
        css = ' class="section"' if number > 1 else ""
        return f'<section id="{key}"><h2{css}>{number} {escape(title)}</h2>{body}</section>'

    # --- sections ------------------------------------------------------------------------

    def compliance(self) -> str:
        overview = self.grid(
            "summary",
            (
                ("service", "Service"),
                ("availability_ratio", "Availability"),
                ("downtime_seconds", "Downtime"),
                ("outages", "Outages"),
                ("error_budget_remaining_ratio", "Budget left"),
                ("credit_percent", "Credit"),
                ("tickets_met", "Ticket clocks met"),
                ("tickets_breached", "breached"),
                ("change_success_ratio", "Changes ok"),
                ("continuity_overdue", "Test overdue"),
            ),
        )
        table = self.grid(
            "sla_compliance",
            (
                ("service", "Service"),
                ("objective", "Objective"),
                ("subject", "For"),
                ("target", "Target"),
                ("achieved", "Achieved"),
                ("result", "Result"),
                ("credit_percent", "Credit"),
            ),
            empty="No objectives are configured.",
        )
        return self.section(
            "compliance",
            "<h3>Overview</h3>" + overview + "<h3>Objectives</h3>" + table,
        )

    def availability(self) -> str:
        parts = []
        for review in self.pack.services:
            sid = review.service.id
            (summary,) = [r for r in self.tables["summary"].rows if r["service"] == sid]
            daily = [r for r in self.tables["availability_daily"].rows if r["service"] == sid]
            chart = ratio_bars(
                [Bar(str(r["date"])[8:], _float(r["availability_ratio"])) for r in daily],
                title=f"Availability per day, {review.service.name}",
                target_percent=review.service.objectives.availability,
            )
            parts.append(
                '<div class="keep">'
                + self.heading(review)
                + "<p>Availability <strong>"
                + escape(percent(_float(summary["availability_ratio"]), 3))
                + "</strong>"
                + " in service hours ("
                + escape(review.service.service_hours)
                + "), "
                + escape(percent(_float(summary["availability_24x7_ratio"]), 3))
                + " around the clock; downtime "
                + escape(duration(_float(summary["downtime_seconds"])))
                + ".</p>"
                + f"<figure>{chart}<figcaption>Availability per local day "
                f"({escape(review.timezone)}); red: below target, grey: no service hours or no "
                "data.</figcaption></figure></div>"
                + self.grid(
                    "outages",
                    (
                        ("start", "Start"),
                        ("end", "End"),
                        ("duration_seconds", "Duration"),
                        ("service_seconds", "In service hours"),
                        ("service_hours", "Service hours"),
                        ("impact", "Impact"),
                        ("planned", "Planned"),
                        ("source", "Source"),
                        ("reference", "Reference"),
                    ),
                    service=sid,
                    empty="No outages this month.",
                )
            )
        return self.section("availability", "".join(parts))

    def reliability(self) -> str:
        return self.section(
            "reliability",
            "<p>MTBF = uptime in service hours / outages, MTRS = downtime / outages, MTBSI = "
            "agreed service time / outages; MTTR is the mean resolution time of incidents.</p>"
            + self.grid(
                "reliability",
                (
                    ("service", "Service"),
                    ("agreed_seconds", "Agreed service time"),
                    ("downtime_seconds", "Downtime"),
                    ("outages", "Outages"),
                    ("mtbf_seconds", "MTBF"),
                    ("mtrs_seconds", "MTRS"),
                    ("mtbsi_seconds", "MTBSI"),
                    ("mttr_seconds", "MTTR"),
                ),
            ),
        )

    def tickets(self) -> str:
        parts = []
        for review in self.pack.services:
            sid = review.service.id
            parts.append(
                self.heading(review)
                + self.grid(
                    "ticket_compliance",
                    (
                        ("kind", "Kind"),
                        ("priority", "Priority"),
                        ("clock", "Clock"),
                        ("goal_seconds", "Goal"),
                        ("met", "Met"),
                        ("breached", "Breached"),
                        ("in_flight", "In flight"),
                        ("ratio", "Compliance"),
                    ),
                    service=sid,
                    empty="No tickets this month.",
                )
                + "<p><strong>Breached tickets</strong></p>"
                + self.grid(
                    "breached_tickets",
                    (
                        ("ticket_id", "Ticket"),
                        ("kind", "Kind"),
                        ("priority", "Priority"),
                        ("clock", "Clock"),
                        ("goal_seconds", "Goal"),
                        ("elapsed_seconds", "Elapsed"),
                        ("started_at", "Opened"),
                        ("breach_at", "Breached at"),
                        ("stopped_at", "Stopped"),
                    ),
                    service=sid,
                    empty="No ticket breached its goals.",
                )
            )
        return self.section("tickets", "".join(parts))

    def changes(self) -> str:
        return self.section(
            "changes",
            self.grid(
                "changes",
                (
                    ("service", "Service"),
                    ("total", "Changes"),
                    ("implemented", "Implemented"),
                    ("failed", "Failed"),
                    ("rolled_back", "Rolled back"),
                    ("cancelled", "Cancelled"),
                    ("emergency", "Emergency"),
                    ("success_ratio", "Success"),
                    ("emergency_share", "Emergency share"),
                ),
            )
            + "<h3>Failed changes and changes that caused incidents</h3>"
            + self.grid(
                "change_issues",
                (
                    ("service", "Service"),
                    ("change_id", "Change"),
                    ("failed", "Failed or rolled back"),
                    ("caused_incident", "Caused incident"),
                ),
                empty="No change failed or caused an incident.",
            ),
        )

    def capacity(self) -> str:
        parts = []
        for review in self.pack.services:
            sid = review.service.id
            charts = []
            for c in review.month.figures.capacity:
                daily = [
                    DayPoint(d.window.start, d.window.end, s.p95_ratio, s.max_ratio)
                    for d in review.days
                    for s in d.figures.capacity
                    if (s.resource, s.host) == (c.resource, c.host)
                ]
                name = c.resource if c.host is None else f"{c.resource} on {c.host}"
                forecast = (
                    "no rising trend"
                    if c.exhaustion_at is None
                    else f"trend reaches 100 % on {rfc3339(c.exhaustion_at)[:10]}"
                )
                window = review.month.window
                chart = capacity_chart(
                    daily,
                    title=f"{name}, {review.service.name}",
                    start=window.start,
                    end=window.end,
                    warn=c.warn_ratio,
                    crit=c.crit_ratio,
                    exhaustion_at=c.exhaustion_at,
                )
                charts.append(
                    f"<figure>{chart}<figcaption>{escape(name)}: daily p95 (line) and peak "
                    f"(dots) utilization; forecast: {escape(forecast)}.</figcaption></figure>"
                )
            parts.append(
                self.heading(review)
                + self.grid(
                    "capacity",
                    (
                        ("resource", "Resource"),
                        ("host", "Host"),
                        ("p95_ratio", "p95"),
                        ("max_ratio", "Peak"),
                        ("warn_ratio", "Warn"),
                        ("crit_ratio", "Crit"),
                        ("seconds_above_warn", "Above warn"),
                        ("seconds_above_crit", "Above crit"),
                        ("headroom", "Headroom"),
                        ("exhaustion_at", "Full by trend"),
                    ),
                    service=sid,
                    empty="No capacity samples this month.",
                )
                + "".join(charts)
            )
        return self.section("capacity", "".join(parts))

    def continuity(self) -> str:
        return self.section(
            "continuity",
            self.grid(
                "continuity_plan",
                (
                    ("service", "Service"),
                    ("tests_in_window", "Tests this month"),
                    ("last_test_id", "Last test"),
                    ("last_test_passed", "Passed"),
                    ("next_due", "Next due"),
                    ("overdue", "Overdue"),
                ),
            )
            + "<h3>Tests this month</h3>"
            + self.grid(
                "continuity_tests",
                (
                    ("service", "Service"),
                    ("test_id", "Test"),
                    ("scenario", "Scenario"),
                    ("invoked_at", "Invoked"),
                    ("rto_seconds", "RTO"),
                    ("achieved_rto_seconds", "Achieved RTO"),
                    ("rto_met", "RTO met"),
                    ("rpo_seconds", "RPO"),
                    ("achieved_rpo_seconds", "Achieved RPO"),
                    ("rpo_met", "RPO met"),
                ),
                empty="No continuity test this month.",
            ),
        )

    def trend(self) -> str:
        parts = []
        for review in self.pack.services:
            sid = review.service.id
            rows = [r for r in self.tables["trend"].rows if r["service"] == sid]
            availability = ratio_bars(
                [Bar(str(r["month"]), _float(r["availability_ratio"])) for r in rows],
                title=f"Availability per month, {review.service.name}",
                target_percent=review.service.objectives.availability,
                height=150,
            )
            tickets = ratio_bars(
                [Bar(str(r["month"]), _float(r["ticket_compliance_ratio"])) for r in rows],
                title=f"Ticket compliance per month, {review.service.name}",
                floor=0.0,
                height=150,
            )
            parts.append(
                '<div class="keep">'
                + self.heading(review)
                + f"<figure>{availability}<figcaption>Availability per month against the "
                "target.</figcaption></figure>"
                + f"<figure>{tickets}<figcaption>Ticket compliance per month (response and "
                "resolution clocks).</figcaption></figure>"
                + self.grid(
                    "trend",
                    (
                        ("month", "Month"),
                        ("availability_ratio", "Availability"),
                        ("downtime_seconds", "Downtime"),
                        ("outages", "Outages"),
                        ("credit_percent", "Credit"),
                        ("response_compliance_ratio", "Response"),
                        ("resolution_compliance_ratio", "Resolution"),
                        ("ticket_compliance_ratio", "Tickets overall"),
                    ),
                    service=sid,
                )
                + "</div>"
            )
        return self.section("trend", "".join(parts))

    def actions(self) -> str:
        empty_rows = "".join(
            f'<tr class="empty"><td>{n}</td><td></td><td></td><td></td><td></td></tr>'
            for n in range(1, EMPTY_ACTION_ROWS + 1)
        )
        return self.section(
            "actions",
            "<h3>Suggested from this month's figures</h3>"
            + self.grid(
                "actions",
                (
                    ("service", "Service"),
                    ("topic", "Topic"),
                    ("action", "Suggested action"),
                    ("reference", "Reference"),
                ),
                empty="Nothing calls for action: every objective was met.",
            )
            + "<h3>Agreed in the review</h3>"
            + "<table><thead><tr><th>#</th><th>Action</th><th>Owner</th><th>Due</th>"
            + f"<th>Status</th></tr></thead><tbody>{empty_rows}</tbody></table>",
        )


def _float(value: Cell) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _periods(pack: ReviewPack) -> str:
    items = "".join(
        f"<li>{escape(r.service.name)} ({escape(r.service.id)}): "
        f"{escape(local_time(r.month.window.start, r.timezone))} to "
        f"{escape(local_time(r.month.window.end, r.timezone))}, figures as of "
        f"{escape(local_time(r.month.figures.at, r.timezone))}</li>"
        for r in pack.services
    )
    return f'<ul class="meta">{items}</ul>'


def _restated(pack: ReviewPack) -> str:
    p = pack.provenance
    if p.revision == 0:
        return ""
    return (
        f'<p class="restated">Restatement {p.revision}: replaces the pack '
        f"{escape(p.restates or '')} after late events changed its figures.</p>"
    )


def _footer(pack: ReviewPack) -> str:
    """The provenance of the figures, as in `provenance.json` (without the writing time)."""
    p = pack.provenance
    w = p.watermark
    return (
        f'<footer id="provenance" data-config-sha256="{p.config_sha256}" '
        f'data-events="{w.events}" data-max-ingested-at="{escape(w.max_ingested_at or "")}" '
        f'data-max-event-time="{escape(w.max_event_time or "")}">'
        f"<p><strong>Provenance</strong> &middot; config SHA-256 <code>{p.config_sha256}</code>"
        f" &middot; events up to {escape(rfc3339(w.through))}: {w.events} stored, the last "
        f"ingested at {escape(w.max_ingested_at or NOT_DEFINED)}, the newest from "
        f"{escape(w.max_event_time or NOT_DEFINED)} &middot; slamon {escape(p.slamon_version)}"
        f" &middot; revision {p.revision}</p></footer>"
    )


def render_html(
    pack: ReviewPack, tables: Mapping[str, Table], *, generated_at: datetime | None = None
) -> str:
    """The whole pack as one HTML document."""
    page = _Page(pack, tables)
    month = datetime.strptime(pack.month, "%Y-%m").strftime("%B %Y")
    who = "Customer" if pack.scope_kind == "customer" else "Service"
    generated = (
        ""
        if generated_at is None
        else f'<p class="meta">Generated {escape(generated_at.isoformat(timespec="seconds"))}</p>'
    )
    contents = "".join(f'<li><a href="#{key}">{escape(title)}</a></li>' for key, title in SECTIONS)
    title = f"Monthly service review: {pack.scope}, {month}"
    body = "".join(
        (
            page.compliance(),
            page.availability(),
            page.reliability(),
            page.tickets(),
            page.changes(),
            page.capacity(),
            page.continuity(),
            page.trend(),
            page.actions(),
        )
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        # Nothing may load from anywhere: the pack must read the same offline and in ten years.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>Monthly service review</h1><p><strong>{who} {escape(pack.scope)}"
        f"</strong> &middot; {escape(month)}</p>{_restated(pack)}{_periods(pack)}{generated}"
        "</header>"
        f"<nav><strong>Contents</strong><ol>{contents}</ol></nav>"
        f"{body}{_footer(pack)}</body></html>\n"
    )
