"""The documentation builds without a warning, and the gallery example draws its figure."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    # A fresh output directory (doctrees included) rebuilds every page. sphinx-gallery writes
    # into docs/auto_examples (gitignored) and skips an example whose source is unchanged since
    # the last build there; run_stale_examples makes it run the example against the current code.
    out = tmp_path / "html"
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html"]
    command += ["-D", "sphinx_gallery_conf.run_stale_examples=1", "docs", str(out)]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "MPLBACKEND": "Agg"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    page = out / "auto_examples" / "plot_audit_gridsearch.html"
    assert page.is_file()
    html = page.read_text(encoding="utf-8")
    assert "sphx_glr_plot_audit_gridsearch_001.png" in html
    assert (out / "_images" / "sphx_glr_plot_audit_gridsearch_001.png").stat().st_size > 10_000
