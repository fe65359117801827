"""The documentation builds without a warning, the gallery example draws its figure, and the
equations are typeset from the build itself, with no network (the docs are often read offline)."""

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory):
    """Build the docs once for the tests of this module; return the output folder."""
    # A fresh output directory (doctrees included) rebuilds every page. sphinx-gallery writes
    # into docs/auto_examples (gitignored) and skips an example whose source is unchanged since
    # the last build there; run_stale_examples makes it run the example against the current code.
    out = tmp_path_factory.mktemp("docs") / "html"
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
    return out


@pytest.mark.slow
def test_docs_build_without_warnings(built_docs):
    out = built_docs
    page = out / "auto_examples" / "plot_audit_gridsearch.html"
    assert page.is_file()
    html = page.read_text(encoding="utf-8")
    assert "sphx_glr_plot_audit_gridsearch_001.png" in html
    assert (out / "_images" / "sphx_glr_plot_audit_gridsearch_001.png").stat().st_size > 10_000

    # Every script of a page with equations, MathJax included, comes from the build folder: a
    # relative path to a file that is there, no URL of another host.
    page = out / "user_guide" / "nir.html"
    sources = _script_sources(page.read_text(encoding="utf-8"))
    assert any("mathjax" in src.lower() for src in sources), sources
    for src in sources:
        parts = urlsplit(src)
        assert not parts.scheme and not parts.netloc, f"{src} is not served by the build"
        assert (page.parent / parts.path).is_file(), f"{src} is missing from the build"


@pytest.mark.slow
def test_equations_typeset_in_browser(built_docs, dump_dom):
    # MathJax replaces each \( ... \) and \[ ... \] of the page by one <mjx-container>; this
    # machine reaches no CDN, so they are typeset only by the MathJax of the build.
    page = built_docs / "user_guide" / "nir.html"
    maths = re.findall(r'class="math[^"]*">(.*?)</(?:span|div)>', page.read_text("utf-8"), re.S)
    n_equations = sum(m.count(r"\(") + m.count(r"\[") for m in maths)
    assert n_equations >= 5  # the penalty's equations are on this page

    dom = dump_dom(page)
    assert dom.count("<mjx-container") == n_equations
    assert r"\frac" in page.read_text("utf-8") and r"\frac" not in dom  # no TeX left as text


def _script_sources(html):
    """The ``src`` of each ``<script>`` of an HTML page."""
    sources = []

    class Scripts(HTMLParser):
        def handle_starttag(self, tag, attrs):
            src = dict(attrs).get("src")
            if tag == "script" and src:
                sources.append(src)

    Scripts().feed(html)
    return sources
