"""The benchmarks' shared helpers: the generated sections of the docs."""

from __future__ import annotations

from pathlib import Path

from bench.common import write_section

DOC = """# Benchmarks

Intro.

<!-- bench.x: generated section, begin -->
old numbers
<!-- bench.x: generated section, end -->

Narrative after the section.
"""


def test_a_section_is_replaced_and_the_text_around_it_kept_as_it_was(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC)
    write_section(doc, "bench.x", "new numbers\n")
    write_section(doc, "bench.x", "newer numbers\n")
    assert doc.read_text() == DOC.replace("old numbers", "newer numbers")


def test_a_missing_section_is_appended_after_a_blank_line(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    write_section(doc, "bench.y", "numbers")
    assert doc.read_text() == (
        "# Benchmarks\n\n<!-- bench.y: generated section, begin -->\nnumbers\n"
        "<!-- bench.y: generated section, end -->\n"
    )
