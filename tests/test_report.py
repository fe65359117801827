"""report.html is report.md rendered by a Markdown renderer, figures embedded, and reads as a
document in a browser."""

import base64
import re
from html.parser import HTMLParser

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from PIL import Image

from fairskl.experiments._report import Report, markdown_to_html, save_figure


@pytest.fixture
def report_dir(tmp_path):
    """A report with emphasis, code, a table and two figures, written to ``tmp_path``."""
    for name, size in [("bars.png", (3, 2)), ("line.png", (4, 3))]:
        fig, ax = plt.subplots(figsize=size)
        ax.plot([0, 1], [1, 0])
        save_figure(fig, tmp_path / name)
    report = Report("A study")
    report.text("λ chosen by 3-fold cross-validation: **0.1** (`lambda_nir`), p < 0.05.")
    report.heading("Numbers")
    report.table(pd.DataFrame({"tpr": [0.12345, 0.5], "fpr": [0.25, 0.0625]},
                              index=pd.Index(["light", "dark"], name="group")))
    report.figure(tmp_path / "bars.png", "Rates per group")
    report.figure(tmp_path / "line.png", "A line")
    report.write(tmp_path)
    return tmp_path


def test_report_html_is_rendered_markdown(report_dir):
    page = _Page((report_dir / "report.html").read_text(encoding="utf-8"))

    # No Markdown markup is left in what a reader sees.
    for markup in ("**", "`", "|"):  # emphasis, code, the pipes of tables
        assert markup not in page.text, markup
    assert page.tags["strong"] == ["0.1"] and page.tags["code"] == ["lambda_nir"]
    assert "p < 0.05" in page.text  # shown as text, not read as a tag
    assert page.tags["h1"] == ["A study"] and page.tags["h2"] == ["Numbers"]

    # The table, cell by cell, with the default floatfmt=".3f".
    assert page.rows == [["group", "tpr", "fpr"], ["light", "0.123", "0.250"],
                         ["dark", "0.500", "0.062"]]

    # Each figure is embedded: its data is the PNG saved beside the report.
    assert [alt for alt, _ in page.images] == ["Rates per group", "A line"]
    for (_, src), name in zip(page.images, ["bars.png", "line.png"], strict=True):
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == (report_dir / name).read_bytes()


def test_missing_figure_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"gone\.png.*save each figure"):
        markdown_to_html("![a figure](gone.png)", "t", tmp_path)


@pytest.mark.slow
def test_report_shows_tables_and_images_in_browser(report_dir, dump_dom):
    # A probe appended to a copy of the report writes what the browser made of each image into
    # the DOM: its decoded size in pixels (0x0 for an image that did not load).
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    probe = ("<script>window.onload = () => { document.body.dataset.images = "
             "[...document.images].map(i => i.naturalWidth + 'x' + i.naturalHeight).join(' '); "
             "};</script>")
    (report_dir / "probe.html").write_text(html.replace("</body>", probe + "</body>"))

    dom = dump_dom(report_dir / "probe.html")
    sizes = re.search(r'data-images="([^"]*)"', dom).group(1).split()
    expected = [Image.open(report_dir / name).size for name in ["bars.png", "line.png"]]
    assert sizes == [f"{w}x{h}" for w, h in expected]
    assert _Page(dom).rows[1] == ["light", "0.123", "0.250"]


class _Page(HTMLParser):
    """The visible text, the text of some tags, the table rows and the images of a page."""

    def __init__(self, html):
        super().__init__()
        self.text, self.tags, self.rows, self.images = "", {}, [], []
        self._open = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append((dict(attrs)["alt"], dict(attrs)["src"]))
        if tag in ("img", "meta", "link", "br", "hr"):  # no end tag
            return
        self._open.append(tag)
        self.tags.setdefault(tag, []).append("")
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data):
        if {"style", "script", "title"} & set(self._open):
            return
        self.text += data
        for tag in set(self._open):
            self.tags[tag][-1] += data
        if self._open and self._open[-1] in ("td", "th"):
            self.rows[-1][-1] += data.strip()
