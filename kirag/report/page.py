"""One self-contained HTML file: the CSS and the renderer (assets/) inline, the data as JSON in a
script element, no request to anywhere. The same renderer draws the serve page's results."""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources
from pathlib import Path

from kirag.core.atomic import atomic_write


@cache
def asset(name: str) -> str:
    """An asset of the renderer (report.css, report.js), read from the package."""
    return resources.files("kirag.report").joinpath("assets", name).read_text(encoding="utf-8")


def script_json(data) -> str:
    """JSON safe inside a <script> element: no "</script>" or "<!--" can close or open it."""
    return (
        json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


# no network: a Content-Security-Policy that allows inline code and data only
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def render_page(payload: dict, title: str) -> str:
    """The report page of `payload` (kind, summary, items...)."""
    data = script_json(payload)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{asset("report.css")}</style>
</head>
<body>
<header class="top"><h1>{html.escape(title)}</h1>
<div class="muted">kirag report · {html.escape(payload.get("kind", ""))} · data {len(data.encode()) / 1e6:.2f} MB · generated {html.escape(payload.get("generated", ""))}</div></header>
<main id="report"></main>
<script id="report-data" type="application/json">{data}</script>
<script>{asset("report.js")}
KiragView.render(JSON.parse(document.getElementById("report-data").textContent), document.getElementById("report"));
</script>
</body>
</html>
"""


def write_page(payload: dict, title: str, path: str | Path) -> int:
    """Write the page atomically; its size in bytes."""
    text = render_page(payload, title)
    with atomic_write(path) as fh:
        fh.write(text)
    return len(text.encode("utf-8"))
