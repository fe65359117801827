"""A study report written twice from one list of blocks: ``report.md`` and ``report.html``."""

import html
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from fairskl._io import atomic_path, write_text

LIBRARIES = ("fairskl", "torch", "torchvision", "skorch", "scikit-learn", "fairlearn", "numpy",
             "pandas")


class Report:
    """Headings, paragraphs, tables and figures, rendered to Markdown and HTML.

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
        out = Path(out_dir)
        md_path, html_path = out / "report.md", out / "report.html"
        write_text(md_path, self._markdown())
        write_text(html_path, self._html())
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

    def _html(self):
        parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>"
                 f"{html.escape(self.title)}</title><style>body{{font-family:sans-serif;"
                 f"max-width:60em;margin:2em auto}}table{{border-collapse:collapse}}"
                 f"td,th{{border:1px solid #ccc;padding:2px 6px}}img{{max-width:100%}}"
                 f"</style></head><body><h1>{html.escape(self.title)}</h1>"]
        for kind, value in self.blocks:
            if kind == "heading":
                parts.append(f"<h2>{html.escape(value)}</h2>")
            elif kind == "text":
                parts.append(f"<p>{_inline(value)}</p>")
            elif kind == "table":
                frame, floatfmt = value
                parts.append(frame.to_html(float_format=lambda v, f=floatfmt: format(v, f)))
            else:
                name, caption = value
                parts.append(f"<figure><img src='{html.escape(name)}' alt='{html.escape(caption)}'>"
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        return "".join(parts) + "</body></html>\n"


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


def _inline(text):
    """Escape, then render Markdown's `code` spans."""
    pieces = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


def _version(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"
