"""llama-cpp-python's OpenAI-compatible server over the llama.cpp build `make install` makes:
`python -m kirag.llm.llamacpp_server --model M.gguf ...` takes llama_cpp.server's own arguments.
That build loads its CPU backend at run time from the wheel's library folder
(kirag.llm.llamacpp_backends); `python -m llama_cpp.server` alone looks beside the Python
executable, finds none and cannot load a model ("no backends are loaded").

One argument of kirag's own: `--no-prefix-reuse`. The binding's server keeps its previous
request's KV cache and evaluates only the rest of the next prompt, in other batches, which moves
llama.cpp's quantized arithmetic enough to flip a greedy near-tie (measured: 4-5 of 8 reader
prompts): its answers then depend on what was asked before. With the flag every request is
evaluated from an empty cache, as kirag's in-process engine with `reuse_prefix=False`, and greedy
answers are the same whatever ran before (slower: each prompt is evaluated whole)."""

from __future__ import annotations

import importlib
import sys

from kirag.errors import KiragError, MissingExtraError

NO_PREFIX_REUSE = "--no-prefix-reuse"


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
    arguments = list(sys.argv[1:] if argv is None else argv)
    if NO_PREFIX_REUSE in arguments:
        arguments.remove(NO_PREFIX_REUSE)
        evaluate_every_prompt_whole(llama_cpp.Llama)
    sys.argv = [sys.argv[0], *arguments]
    serve()


def evaluate_every_prompt_whole(llama_class: type) -> None:
    """Make `llama_class.generate` (every completion and chat of the server) start from an empty
    cache: `reset()` first, so the binding finds no cached prefix to reuse."""
    generate = llama_class.generate

    def generate_from_an_empty_cache(self, tokens, *args, **kwargs):
        self.reset()
        return generate(self, tokens, *args, **kwargs)

    llama_class.generate = generate_from_an_empty_cache


if __name__ == "__main__":
    try:
        main()
    except KiragError as exc:  # a missing extra or a variant this CPU cannot run: one line
        sys.exit(f"kirag.llm.llamacpp_server: {exc}")
