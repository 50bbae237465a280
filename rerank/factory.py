"""Rerankers by name: a registry of "module:Class" targets (imported only when chosen) and
`load_reranker`, used by `kirag rerank`, `kirag answer --rerank` and the Python API alike."""

from __future__ import annotations

import inspect

from kirag.rerank.base import Reranker

from kirag.core.lazy import check_target, import_target
from kirag.errors import KiragError

# reranker name -> "module:Class" (a class taking the model as its first argument)
RERANKERS: dict[str, str] = {
    "rank1": "kirag.rerank.rank1:Rank1Reranker",
    "cross-encoder": "kirag.rerank.cross_encoder:CrossEncoderReranker",
    # any of the above fused with the first stage (as `kirag rerank --fusion`)
    "fused": "kirag.rerank.fused:FusedReranker",
}

# rerankers built over another reranker: the CLI spells these as flags (`kirag rerank --fusion`)
WRAPPERS = frozenset({"fused"})


def command_line_rerankers() -> list[str]:
    """The names `kirag rerank --reranker` offers: every registered reranker but the wrappers."""
    return [name for name in RERANKERS if name not in WRAPPERS]


def register_reranker(name: str, target: str) -> None:
    """Make `load_reranker(name, ...)` build `target` ("module:Class")."""
    RERANKERS[name] = check_target(target)


def reranker_class(name: str) -> type:
    if name not in RERANKERS:
        raise KiragError(f"unknown reranker {name!r}; known: {', '.join(RERANKERS)}")
    return import_target(RERANKERS[name])


def reranker_options(name: str) -> list[str]:
    """The keyword options a reranker takes (its constructor's parameters after the model)."""
    parameters = list(inspect.signature(reranker_class(name).__init__).parameters)
    return parameters[2:]  # self, model


def load_reranker(name: str = "rank1", model: str | None = None, **options) -> Reranker:
    """A reranker by registry name, for `model`; an option it does not take is an error."""
    unknown = sorted(set(options) - set(reranker_options(name)))
    if unknown:
        raise KiragError(
            f"the {name} reranker does not take {', '.join(unknown)}; "
            f"it takes: {', '.join(reranker_options(name))}"
        )
    cls = reranker_class(name)
    return cls(model, **options) if model is not None else cls(**options)
