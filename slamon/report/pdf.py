"""HTML to PDF with headless Chromium (Debian package `chromium`, see ops/report/install.sh).

Chromium prints exactly what the HTML shows on screen under its `@media print` rules, so
the PDF needs no second layout; the page has no script, so loading it is all there is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from sla.errors import SlamonError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless, offline and stateless: no sandbox (containers run as root), no GPU, no network
# chatter of its own, a throwaway profile.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
PRINT_TIMEOUT_S = 120.0


class RenderError(SlamonError):
    """A report could not be rendered to PDF: no Chromium, or Chromium failed."""


def find_chromium() -> str:
    """The Chromium to run: `$SLAMON_CHROMIUM`, else the first of `CHROMIUM_NAMES` on PATH."""
    configured = os.environ.get("SLAMON_CHROMIUM")
    if configured:
        return configured
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path is not None:
            return path
    raise RenderError(
        "no Chromium found for the PDF: run ops/report/install.sh (Debian package chromium) "
        "or set SLAMON_CHROMIUM to the browser's path"
    )


def chromium_command(profile: Path, *args: str) -> list[str]:
    """A headless Chromium command line with a throwaway profile in `profile`."""
    return [find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]


def print_pdf(html: Path, pdf: Path, *, timeout: float = PRINT_TIMEOUT_S) -> Path:
    """Print the HTML file `html` to `pdf` (A4 from the page's CSS, no browser header)."""
    pdf.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="slamon-chromium-") as profile:
        command = chromium_command(
            Path(profile),
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf.resolve()}",
            html.resolve().as_uri(),
        )
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise RenderError(f"{pdf}: Chromium did not finish within {timeout:g} s") from None
        except OSError as exc:
            raise RenderError(f"cannot run {command[0]}: {exc.strerror}") from None
    if done.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise RenderError(
            f"{pdf}: Chromium exited {done.returncode} without a PDF: {' | '.join(tail)}"
        )
    return pdf
