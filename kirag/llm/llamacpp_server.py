"""llama-cpp-python's OpenAI-compatible server over the llama.cpp build `make install` makes:
`python -m kirag.llm.llamacpp_server --model M.gguf ...` takes llama_cpp.server's own arguments.
That build loads its CPU backend at run time from the wheel's library folder
(kirag.llm.llamacpp_backends); `python -m llama_cpp.server` alone looks beside the Python
executable, finds none and cannot load a model ("no backends are loaded")."""

from __future__ import annotations

import importlib
import sys

from kirag.errors import KiragError, MissingExtraError


def main(argv: list[str] | None = None) -> None:
    """Load the CPU backend this machine runs best, then run llama_cpp.server's own main."""
    from kirag.core.optional import require
    from kirag.llm.llamacpp_backends import ensure_backends

    llama_cpp = require("llama_cpp", "llamacpp", "the llama.cpp server")
    try:
        serve = importlib.import_module("llama_cpp.server.__main__").main
    except ImportError as exc:
        raise MissingExtraError(
            f"llama-cpp-python's server needs its [server] extra's packages "
            f"(pip install fastapi uvicorn sse-starlette starlette-context pydantic-settings): {exc}"
        ) from exc
    ensure_backends(llama_cpp)
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    serve()


if __name__ == "__main__":
    try:
        main()
    except KiragError as exc:  # a missing extra or a variant this CPU cannot run: one line
        sys.exit(f"kirag.llm.llamacpp_server: {exc}")
