"""The `openai` engine (the `openai` extra): a model served elsewhere behind an OpenAI-compatible
API (vLLM's `vllm serve`, llama-cpp-python's server, llama.cpp's llama-server, Ollama, TGI).

Every role keeps its prompts and token limits; what crosses the network:
  - Rank1's thinking pass is a /v1/completions request (greedy, `max_tokens` = the thinking
    budget, the reference's stop strings, the top `TOP_LOGPROBS` log-probabilities per token).
    The text comes back cut before the stop string; llama-cpp-python and vLLM also return the
    stop string's tokens with their log-probabilities, and the position where a stop string
    completes gives the scores (the position an in-process engine scores). A server that does
    not is asked again: a few greedy tokens after prompt + reasoning.
  - `next_token_logprobs` (the rethink fallback, budget 0): one token with the top
    `TOP_LOGPROBS` log-probabilities, the candidates favoured by a logit bias (servers cannot
    restrict the next token and report the restricted values; see `_next_one`).
  - chats (chain constructor, reader, triple extraction) go to /v1/chat/completions; an
    assistant prefill (reference mode's "Thought: ...") uses vLLM's `continue_final_message`,
    elsewhere /v1/completions on the chat template applied here (needs `tokenizer`).
Requests run `concurrency` at a time, with retries and backoff on 429 / 5xx / timeouts; the API
key is read from an environment variable and kept only in the request headers."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import cached_property

from kirag.errors import ServerError, SettingsError
from kirag.llm.base import (
    TOP_LOGPROBS,
    EngineTokens,
    Generation,
    chat_prompt_fallback,
    cut_at_stop,
)
from kirag.llm.server_client import ServerClient

log = logging.getLogger(__name__)

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
DEFAULT_CONTEXT = 4096  # when the server does not say (llama-cpp-python, Ollama)
# the extra tokens generated after a reasoning that ended in a stop string, to find the
# position where the stop string completes
STOP_PROBE_TOKENS = 8
# servers that return the tokens of the stop string that ended a generation
RETURNS_STOP_TOKENS = ("llama-cpp-python", "vllm")
LOGIT_BIAS = 100.0  # the bias that makes a candidate the chosen next token


@dataclass(frozen=True)
class ServerInfo:
    """What the server says about itself and the served model: recorded in run configs and in
    the Rank1 score-cache fingerprint (not the URL: a restarted server on another port scores
    the same)."""

    kind: str  # "vllm", "llama-cpp-python", "tgi", "ollama", "openai-compatible"
    version: str | None
    model: str
    max_model_len: int | None = None


def probe_server(client: ServerClient, model: str) -> ServerInfo:
    """The server's kind and version and the served model, with a one-line error when the model
    is not among those it serves (llama-cpp-python would silently answer with another)."""
    listed = client.get("models").get("data", [])
    ids = [m.get("id") for m in listed]
    if model not in ids:
        raise ServerError(
            f"{client.base_url} does not serve model {model!r}; it serves: "
            f"{', '.join(map(str, ids)) or 'nothing'} (pass one of them as model)",
            parameters=("model",),
        )
    entry = listed[ids.index(model)]
    max_len = entry.get("max_model_len")
    kind, version = "openai-compatible", None
    found = client.get_root("version")  # vLLM
    if found and "version" in found:
        kind, version = "vllm", str(found["version"])
    else:
        info = client.get_root("info")  # TGI
        if info and "model_id" in info:
            kind, version = "tgi", str(info.get("version"))
            max_len = max_len or info.get("max_input_tokens") or info.get("max_total_tokens")
        else:
            ollama = client.get_root("api/version")
            if ollama and "version" in ollama:
                kind, version = "ollama", str(ollama["version"])
            else:
                spec = client.get_root("openapi.json") or {}
                title = str(spec.get("info", {}).get("title", ""))
                if "llama.cpp" in title:
                    kind, version = "llama-cpp-python", str(spec["info"].get("version"))
    return ServerInfo(kind, version, model, int(max_len) if max_len else None)


class OpenAIEngine(EngineTokens):
    """An LLMEngine whose model runs behind an OpenAI-compatible server at `base_url`
    (e.g. http://127.0.0.1:8000/v1); `model_path` is the served model's name."""

    name = "openai"

    def __init__(
        self,
        model_path: str,
        base_url: str | None = None,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        concurrency: int = 4,
        timeout: float = 600.0,
        retries: int = 5,
        tokenizer: str | None = None,
        context_length: int | None = None,
        model_id: str | None = None,
    ):
        base_url = base_url or os.environ.get(BASE_URL_ENV)
        if not base_url:
            raise SettingsError(
                f"the openai engine needs the server's URL: base_url (or {BASE_URL_ENV}), "
                "e.g. http://127.0.0.1:8000/v1",
                parameters=("base_url",),
            )
        if concurrency < 1:
            raise SettingsError("concurrency must be >= 1", parameters=("concurrency",))
        self.client = ServerClient(
            base_url, os.environ.get(api_key_env) or None, timeout, retries, api_key_env
        )
        self.concurrency = concurrency
        self.server = probe_server(self.client, model_path)
        self.model_id = model_id or model_path
        self.served_model = model_path
        self.api_key_env = api_key_env
        self.tokenizer_path = tokenizer
        self.context_length = context_length or self.server.max_model_len or DEFAULT_CONTEXT
        # what a cached score depends on besides the model: the server and its version
        self.precision = f"served by {self.server.kind} {self.server.version or '?'}"
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="kirag-openai")
        self._token_cache: dict[str, int | None] = {}
        self._bos = self._server_prefix()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    @property
    def server_info(self) -> dict:
        return asdict(self.server)

    def _map(self, function: Callable, items: Sequence) -> list:
        """`function` over `items` with at most `concurrency` requests in flight, in order."""
        if len(items) <= 1:
            return [function(item) for item in items]
        return list(self._pool.map(function, items))

    # ------------------------------------------------------------------ tokens

    @cached_property
    def _local(self):
        """A local Hugging Face tokenizer (a folder, or a GGUF read by transformers) for
        tokens and the chat template, when `tokenizer` names one."""
        if not self.tokenizer_path:
            return None
        from pathlib import Path

        from kirag.core.optional import require

        transformers = require("transformers", "rerank", "a local tokenizer for the openai engine")
        path = Path(self.tokenizer_path)
        if path.suffix.lower() == ".gguf":
            return transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        return transformers.AutoTokenizer.from_pretrained(self.tokenizer_path)

    def _server_prefix(self) -> list[int]:
        """Tokens the server's tokenizer puts before any text (a BOS), dropped from counts."""
        if self.tokenizer_path or self.server.kind != "llama-cpp-python":
            return []
        return self._server_tokenize("")

    def _server_tokenize(self, text: str) -> list[int]:
        if self.server.kind == "llama-cpp-python":
            return self.client.post_root(
                "extras/tokenize", {"input": text, "model": self.served_model}
            )["tokens"]
        if self.server.kind == "vllm":
            body = {"model": self.served_model, "prompt": text, "add_special_tokens": False}
            return self.client.post_root("tokenize", body)["tokens"]
        raise SettingsError(
            f"the {self.server.kind} server has no tokenize endpoint kirag knows: pass the "
            "model's tokenizer (a GGUF file or Hugging Face folder) as tokenizer",
            parameters=("tokenizer",),
        )

    def token_ids(self, text: str) -> list[int]:
        if self._local is not None:
            return self._local(text, add_special_tokens=False)["input_ids"]
        ids = self._server_tokenize(text)
        skip = len(self._bos)
        return ids[skip:] if skip and ids[:skip] == self._bos else ids

    def detokenize(self, ids: Sequence[int]) -> str:
        if self._local is not None:
            return self._local.decode(list(ids))
        if self.server.kind == "llama-cpp-python":
            body = {"tokens": list(ids), "model": self.served_model}
            return self.client.post_root("extras/detokenize", body)["text"]
        if self.server.kind == "vllm":
            body = {"model": self.served_model, "tokens": list(ids)}
            return self.client.post_root("detokenize", body)["prompt"]
        return self._server_tokenize("")  # raises the error asking for a tokenizer

    def _token_id(self, text: str) -> int | None:
        """The id of a token string from a log-probability list (None: not one token)."""
        if text not in self._token_cache:
            ids = self.token_ids(text)
            self._token_cache[text] = ids[0] if len(ids) == 1 else None
        return self._token_cache[text]

    def apply_chat_template(self, messages: Sequence[dict[str, str]]) -> str:
        """The prompt a chat becomes: the local tokenizer's template; without one, a plain
        rendering (used only to count tokens: chats go to the server's chat endpoint)."""
        local = self._local
        if local is not None and getattr(local, "chat_template", None):
            return local.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=True
            )
        return chat_prompt_fallback(messages)

    # ------------------------------------------------------------------ completions

    def _greedy(self) -> dict:
        """Sampling fields of a greedy request: temperature 0 and no penalties (llama-cpp-python
        applies a repeat penalty of 1.1 unless told otherwise, which changes greedy choices)."""
        body = {"temperature": 0.0, "seed": 42, "frequency_penalty": 0.0, "presence_penalty": 0.0}
        if self.server.kind == "llama-cpp-python":
            body["repeat_penalty"] = 1.0
        return body

    def _complete(
        self, prompt: str, max_tokens: int, stop: Sequence[str] | None, logprobs: int | None
    ) -> dict:
        body = {
            "model": self.served_model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            **self._greedy(),
        }
        if stop:
            body["stop"] = list(stop)
        if logprobs is not None:
            body["logprobs"] = logprobs
        return self.client.post("completions", body)["choices"][0]

    def _top(self, entry: dict | None) -> dict[int, float]:
        """A position's top log-probabilities keyed by token id."""
        out: dict[int, float] = {}
        for text, value in (entry or {}).items():
            token = self._token_id(text)
            if token is not None and value is not None:
                out[token] = max(float(value), out.get(token, -math.inf))
        return out

    def _find_stop(
        self, tokens: Sequence[str], tops: Sequence[dict | None], stop: Sequence[str]
    ) -> tuple[dict[int, float], str, str] | None:
        """The top log-probabilities at the token where `tokens` first complete a stop string,
        the text up to that token and the stop string (None: no stop string completes)."""
        so_far = ""
        for token, top in zip(tokens, tops, strict=False):
            so_far += token
            found = cut_at_stop(so_far, stop)[1]
            if found is not None:
                return self._top(top), so_far, found
        return None

    def _stop_logprobs(
        self, prompt: str, text: str, stop: Sequence[str]
    ) -> tuple[dict[int, float], str, str] | None:
        """Where a server did not return the stop string's tokens: the greedy tokens after
        prompt + text asked for again, up to the one that completes a stop string (None: no stop
        string follows; the model ended on its end-of-sequence token)."""
        choice = self._complete(prompt + text, STOP_PROBE_TOKENS, None, TOP_LOGPROBS)
        data = choice.get("logprobs") or {}
        return self._find_stop(data.get("tokens") or [], data.get("top_logprobs") or [], stop)

    def _generate_one(self, args: tuple[str, int, tuple[str, ...]]) -> Generation:
        prompt, max_tokens, stop = args
        if max_tokens <= 0:
            return Generation("", [], {}, "length", None, 0)
        choice = self._complete(prompt, max_tokens, stop, TOP_LOGPROBS)
        text = choice.get("text", "")
        reason = choice.get("finish_reason") or "length"
        data = choice.get("logprobs") or {}
        tokens, tops = data.get("tokens") or [], data.get("top_logprobs") or []
        ids = self.token_ids(text) if text else []
        if reason == "length":
            return Generation(text, ids, self._top(tops[-1] if tops else None), "length")
        if stop:
            # llama-cpp-python and vLLM return the stop string's tokens with their
            # log-probabilities (the text is cut before it); other servers are asked again
            probed = self._find_stop(tokens, tops, stop)
            if probed is None and self.server.kind not in RETURNS_STOP_TOKENS:
                probed = self._stop_logprobs(prompt, text, stop)
            if probed is not None:
                final, through, found = probed
                # as in-process: the stop string's tokens count among the generated ones
                ids += self.token_ids(through[len(text) :] if through.startswith(text) else through)
                return Generation(text, ids, final, "stop", found)
        return Generation(text, ids, self._eos_top(prompt + text), "eos")

    def _eos_top(self, prompt: str) -> dict[int, float]:
        """The top log-probabilities where the model chose its end-of-sequence token, which
        servers do not return: that position asked for again with another token favoured (the
        values are the model's own; the favoured token is dropped unless in the top)."""
        favoured = self.token_ids("\n")[-1]
        top = self._biased_top(prompt, [favoured])
        if len(top) > TOP_LOGPROBS:
            top.pop(favoured, None)
        return top

    def generate_detailed(
        self, prompts: Sequence[str], max_tokens: int, stop: Sequence[str] | None = None
    ) -> list[Generation]:
        stop_tuple = tuple(stop or ())
        return self._map(self._generate_one, [(p, max_tokens, stop_tuple) for p in prompts])

    def generate(
        self, prompts: Sequence[str], max_tokens: int, stop: Sequence[str] | None = None
    ) -> list[str]:
        stop_tuple = tuple(stop or ())
        return self._map(
            lambda p: (
                self._complete(p, max_tokens, stop_tuple, None).get("text", "")
                if max_tokens > 0
                else ""
            ),
            list(prompts),
        )

    def _biased_top(self, prompt: str, favour: Sequence[int]) -> dict[int, float]:
        """One token after `prompt` with a +100 logit bias on the `favour` token ids: the chosen
        token is one of them (never the end of sequence, after which no log-probabilities come
        back), and its log-probability is returned with the top `TOP_LOGPROBS`."""
        body = {
            "model": self.served_model,
            "prompt": prompt,
            "max_tokens": 1,
            **self._greedy(),
            "logprobs": TOP_LOGPROBS,
            "logit_bias": {str(token): LOGIT_BIAS for token in favour},
        }
        choice = self.client.post("completions", body)["choices"][0]
        tops = (choice.get("logprobs") or {}).get("top_logprobs") or [None]
        return self._top(tops[0])

    def _next_one(self, args: tuple[str, tuple[str, ...]]) -> dict[str, float]:
        """The candidates' log-probabilities as the next token. Servers report the
        log-probabilities of the model's own distribution, before a logit bias (llama-cpp-python,
        vLLM's default raw log-probs): the candidates are favoured with a bias so that one of
        them is the token chosen, whose value always comes back; one still missing from the top
        `TOP_LOGPROBS` is favoured alone in one more request. (A server that reports biased
        values gives both candidates renormalised over the two: their ratio, hence P(true), is
        unchanged.)"""
        prompt, candidates = args
        ids = {c: self._token_id(c) for c in candidates}
        known = [i for i in ids.values() if i is not None]
        found = self._biased_top(prompt, known) if known else {}
        for token in known:
            if token not in found:
                found |= {token: self._biased_top(prompt, [token]).get(token, -math.inf)}
        return {c: found.get(i, -math.inf) if i is not None else -math.inf for c, i in ids.items()}

    def next_token_logprobs(
        self, prompts: Sequence[str], candidates: Sequence[str]
    ) -> list[dict[str, float]]:
        return self._map(self._next_one, [(p, tuple(candidates)) for p in prompts])

    # ------------------------------------------------------------------ chats

    def _chat_one(self, args: tuple) -> str:
        messages, max_tokens, stop, prefill = args
        if max_tokens <= 0:
            return ""
        if prefill:
            if self.server.kind != "vllm":  # no server-side continuation: the local template
                if self._local is None or not getattr(self._local, "chat_template", None):
                    raise SettingsError(
                        f"the {self.server.kind} server cannot continue a prefilled assistant "
                        "turn: pass the model's tokenizer (its GGUF file or Hugging Face "
                        "folder) as tokenizer, so kirag applies the chat template and uses "
                        "/v1/completions",
                        parameters=("tokenizer",),
                    )
                prompt = self.apply_chat_template(messages) + prefill
                return self._complete(prompt, max_tokens, stop, None).get("text", "")
            messages = [*messages, {"role": "assistant", "content": prefill}]
        body = {
            "model": self.served_model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            **self._greedy(),
        }
        if stop:
            body["stop"] = list(stop)
        if prefill:
            body["add_generation_prompt"] = False
            body["continue_final_message"] = True
        choice = self.client.post("chat/completions", body)["choices"][0]
        return (choice.get("message") or {}).get("content") or ""

    def generate_chat(
        self,
        conversations: Sequence[Sequence[dict[str, str]]],
        max_tokens: int,
        stop: Sequence[str] | None = None,
        prefills: Sequence[str] | None = None,
    ) -> list[str]:
        """Greedy replies to chats through the server's chat endpoint (the server applies the
        model's chat template); a prefill continues an assistant turn that starts with it."""
        prefills = list(prefills or [""] * len(conversations))
        stop_tuple = tuple(stop or ())
        return self._map(
            self._chat_one,
            [
                (list(m), max_tokens, stop_tuple, p)
                for m, p in zip(conversations, prefills, strict=True)
            ],
        )
