"""PDF by printing the report's own HTML with a local headless Chromium (same page, so the
PDF and the HTML can never disagree). No Chromium, no PDF: a clear error, never a download."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from l4mon.faces.report.inputs import ReportError

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--disable-component-update", "--disable-sync",
         "--no-pdf-header-footer"]


def find_chromium(explicit: str | None = None) -> str:
    for name in (explicit,) if explicit else CANDIDATES:
        found = shutil.which(name) if name else None
        if found:
            return found
    raise ReportError("PDF needs a local Chromium (Debian: apt-get install chromium); none "
                      f"found as {', '.join((explicit,) if explicit else CANDIDATES)}. The "
                      "HTML report prints to PDF from any browser as well.")


def print_pdf(html_path: str | Path, pdf_path: str | Path, *, chromium: str | None = None,
              timeout_s: float = 120.0) -> Path:
    binary = find_chromium(chromium)
    html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path).resolve()
    with tempfile.TemporaryDirectory(prefix="l4mon-chromium-") as profile:
        command = [binary, *FLAGS, f"--user-data-dir={profile}",
                   f"--print-to-pdf={pdf_path}", html_path.as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise ReportError(f"Chromium did not print the PDF within {timeout_s:g} s") from None
    if done.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
        raise ReportError(f"Chromium failed to print the PDF (exit {done.returncode}): "
                          f"{done.stderr.strip()[-500:]}")
    return pdf_path
