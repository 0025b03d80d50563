"""Monthly service review packs: HTML, PDF, and every table as CSV and JSON."""

from slamon.report.build import (
    ReviewPack,
    build_packs,
    last_closed_month,
    month_end,
    previous_month,
)
from slamon.report.pdf import RenderError
from slamon.report.provenance import Provenance, Watermark, config_sha256, read_watermark
from slamon.report.restate import Restatement, restate_month
from slamon.report.write import write_pack, write_report

__all__ = [
    "Provenance",
    "RenderError",
    "Restatement",
    "ReviewPack",
    "Watermark",
    "build_packs",
    "config_sha256",
    "last_closed_month",
    "month_end",
    "previous_month",
    "read_watermark",
    "restate_month",
    "write_pack",
    "write_report",
]
