"""The report as a list of blocks, written out as Markdown (figures beside it) or as one
self-contained HTML page (figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass
from functools import singledispatch
from pathlib import Path

import pandas as pd


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    text: str  # `code` spans are the only markup


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    frame: pd.DataFrame  # the index is written as the first column


@dataclass
class Image:
    path: Path
    caption: str


Block = Heading | Text | Bullets | Table | Image

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       line-height: 1.45; color: #222; }
.table { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
figure { display: inline-block; vertical-align: top; margin: 0.5em 1em 0.5em 0; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
code { background: #f3f3f3; padding: 0 0.2em; }
"""


def number(value: object) -> str:
    """A table cell: whole numbers as such, else 4 significant digits (scientific notation for
    the very small or large)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.3e}" if not 1e-3 <= abs(value) < 1e6 else f"{value:.4g}"


def _cells(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    header = [str(frame.index.name or ""), *map(str, frame.columns)]
    rows = [
        [str(index), *map(number, row)]
        for index, row in zip(frame.index, frame.values, strict=True)
    ]
    return header, rows


@singledispatch
def _markdown(block: Block, folder: Path) -> str:
    raise TypeError(f"no Markdown for {type(block).__name__}")


@_markdown.register
def _(block: Heading, folder: Path) -> str:
    return f"{'#' * block.level} {block.text}"


@_markdown.register
def _(block: Text, folder: Path) -> str:
    return block.text


@_markdown.register
def _(block: Bullets, folder: Path) -> str:
    return "\n".join(f"- {item}" for item in block.items)


@_markdown.register
def _(block: Table, folder: Path) -> str:
    header, rows = _cells(block.frame)
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join(
        "| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in lines
    )


@_markdown.register
def _(block: Image, folder: Path) -> str:
    return f"![{block.caption}]({block.path.relative_to(folder).as_posix()})"


def markdown(blocks: list[Block], folder: Path) -> str:
    """Image links are relative to ``folder``, where the report is written."""
    return "\n\n".join(_markdown(block, folder) for block in blocks) + "\n"


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


@singledispatch
def _html(block: Block) -> str:
    raise TypeError(f"no HTML for {type(block).__name__}")


@_html.register
def _(block: Heading) -> str:
    return f"<h{block.level}>{_inline(block.text)}</h{block.level}>"


@_html.register
def _(block: Text) -> str:
    return f"<p>{_inline(block.text)}</p>"


@_html.register
def _(block: Bullets) -> str:
    return "<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>"


@_html.register
def _(block: Table) -> str:
    header, rows = _cells(block.frame)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="table">{table}</div>'


@_html.register
def _(block: Image) -> str:
    data = base64.b64encode(block.path.read_bytes()).decode("ascii")
    caption = html.escape(block.caption)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def page(blocks: list[Block], title: str) -> str:
    body = "\n".join(_html(block) for block in blocks)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )
