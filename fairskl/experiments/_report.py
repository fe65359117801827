"""A study report: ``report.md``, and ``report.html`` rendered from the same Markdown."""

import base64
import html
import mimetypes
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
from markdown_it import MarkdownIt

from fairskl._io import atomic_path, write_text

LIBRARIES = ("fairskl", "torch", "torchvision", "skorch", "scikit-learn", "fairlearn", "numpy",
             "pandas")

# The one stylesheet of report.html. Column alignment comes from the Markdown tables themselves.
STYLE = """\
body { font-family: system-ui, sans-serif; line-height: 1.5; max-width: 72em; margin: 2em auto;
       padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; }
td { white-space: nowrap; }
thead th { background: #f2f2f2; }
code { background: #f2f2f2; padding: 0 0.2em; border-radius: 3px; }
img { max-width: 100%; }
"""


class Report:
    """Headings, paragraphs, tables and figures, written as Markdown and as HTML.

    ``report.md`` is the Markdown; ``report.html`` is that same text rendered by markdown-it-py
    (CommonMark with tables), with the figures embedded as base64 data, so that the HTML is one
    file that can be e-mailed or opened anywhere. The figures must be saved into the output
    folder before :meth:`write`.

    Parameters
    ----------
    title : str
        The report's title, its first heading.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from fairskl.experiments._report import Report
    >>> report = Report("A study")
    >>> report.heading("Numbers")
    >>> report.table(pd.DataFrame({"a": [1.0]}))
    >>> paths = report.write(tempfile.mkdtemp())
    >>> sorted(p.name for p in paths)
    ['report.html', 'report.md']
    """

    def __init__(self, title):
        self.title = title
        self.blocks = []
        self.start = time.perf_counter()

    def heading(self, text):
        self.blocks.append(("heading", text))

    def text(self, text):
        """A paragraph of Markdown."""
        self.blocks.append(("text", text))

    def table(self, frame, floatfmt=".3f"):
        self.blocks.append(("table", (frame, floatfmt)))

    def figure(self, path, caption):
        self.blocks.append(("figure", (Path(path).name, caption)))

    def footer(self, config):
        """Configuration, seeds, library versions and wall time."""
        self.heading("Configuration")
        self.text(", ".join(f"`{k}={v}`" for k, v in config.items()))
        versions = ", ".join(f"{name} {_version(name)}" for name in LIBRARIES)
        self.text(f"Python {platform.python_version()} on {platform.machine()}; {versions}. "
                  f"Wall time {time.perf_counter() - self.start:.0f} s.")

    def write(self, out_dir):
        """Write ``report.md`` and ``report.html`` into ``out_dir``; return their paths."""
        out = Path(out_dir)
        md_path, html_path = out / "report.md", out / "report.html"
        markdown = self._markdown()
        write_text(md_path, markdown)
        write_text(html_path, markdown_to_html(markdown, self.title, out))
        return [md_path, html_path]

    def _markdown(self):
        lines = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "heading":
                lines += [f"## {value}", ""]
            elif kind == "text":
                lines += [value, ""]
            elif kind == "table":
                frame, floatfmt = value
                lines += [frame.to_markdown(floatfmt=floatfmt), ""]
            else:
                name, caption = value
                lines += [f"![{caption}]({name})", "", f"*{caption}*", ""]
        return "\n".join(lines)


def markdown_to_html(markdown, title, base_dir):
    """Render Markdown to a standalone HTML page whose images are embedded.

    Parameters
    ----------
    markdown : str
        CommonMark with tables (pipe tables, as :meth:`pandas.DataFrame.to_markdown` writes).
        Raw HTML in it is shown as text, not interpreted.
    title : str
        The page's ``<title>``.
    base_dir : path-like
        The folder that the images' relative paths start from.

    Returns
    -------
    str
        The HTML page, with :data:`STYLE` as its stylesheet and each image as a ``data:`` URI.

    Raises
    ------
    FileNotFoundError
        If an image of the Markdown is not in ``base_dir``.
    """
    renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = renderer.parse(markdown)
    for token in tokens:
        for child in token.children or ():
            if child.type == "image":
                child.attrSet("src", _data_uri(Path(base_dir) / unquote(child.attrGet("src"))))
    body = renderer.renderer.render(tokens, renderer.options, {})
    return (f"<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>\n{STYLE}</style>\n</head>\n"
            f"<body>\n{body}</body>\n</html>\n")


def _data_uri(path):
    if not path.is_file():
        raise FileNotFoundError(
            f"The report shows the figure {path.name}, but {path} does not exist: save each "
            f"figure into the report's folder before writing the report."
        )
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def save_figure(figure, path):
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, format=Path(path).suffix.lstrip("."))
    plt.close(figure)
    return Path(path)


def interval(mean, low, high, scale=1.0, fmt=".2f"):
    """``"12.34 [10.00, 14.00]"`` for a point estimate and its interval."""
    if pd.isna(mean):
        return "n/a"
    return f"{mean * scale:{fmt}} [{low * scale:{fmt}}, {high * scale:{fmt}}]"


class Cells:
    """The rows of a summary table, looked up by the values of its ``keys`` columns, and each
    row's interval formatted for a report (``"12.3 [10.0, 14.6]"``).

    Parameters
    ----------
    table : pandas.DataFrame
        Has the ``keys`` columns (one row per key) and ``value``, ``ci_low``, ``ci_high``.
    keys : list of str
    scale : float, default=100
        Percentage points by default.
    missing : str, default="n/a"
        The cell of a key that the table does not have.
    """

    def __init__(self, table, keys, *, scale=100, missing="n/a"):
        self.rows = dict(zip(table[keys].itertuples(index=False, name=None),
                             table.itertuples(index=False), strict=True))
        self.scale, self.missing = scale, missing

    def row(self, *key):
        """The row of ``key`` (a namedtuple of the table's columns), or None."""
        return self.rows.get(key)

    def __call__(self, *key, scale=None, arrow=False):
        """The interval of ``key``; ``arrow`` adds ↓ / ↑ where it excludes 0."""
        row = self.rows.get(key)
        if row is None:
            return self.missing
        text = interval(row.value, row.ci_low, row.ci_high,
                        scale=self.scale if scale is None else scale, fmt=".1f")
        if arrow:
            text += " ↓" if row.ci_high < 0 else " ↑" if row.ci_low > 0 else ""
        return text


def _version(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"
