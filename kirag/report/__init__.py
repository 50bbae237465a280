"""Self-contained HTML reports of what kirag did: KiRAG chains, Rank1 reasoning, evaluations."""

from kirag.report.build import ReportOptions, build_payload, detect_kind
from kirag.report.page import render_page, write_page

__all__ = ["ReportOptions", "build_payload", "detect_kind", "render_page", "write_page"]
