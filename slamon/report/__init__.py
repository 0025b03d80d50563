"""Monthly service review packs: HTML, PDF, and every table as CSV and JSON."""

from slamon.report.build import ReviewPack, build_packs, last_closed_month, previous_month
from slamon.report.pdf import RenderError
from slamon.report.write import write_pack, write_report

__all__ = [
    "RenderError",
    "ReviewPack",
    "build_packs",
    "last_closed_month",
    "previous_month",
    "write_pack",
    "write_report",
]
