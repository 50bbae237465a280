"""GGUF k- and i-quants with an importance matrix from calibration text (`kirag quantize`).

llama.cpp's `llama-imatrix` runs the unquantized model over calibration text and records, for
every weight column, the mean square of the activations it multiplies (a diagonal Hessian
estimate); `llama-quantize --imatrix` then spends the few bits of each block where those
activations are large. Both tools are built from the llama.cpp sources vendored in the
llama-cpp-python sdist kirag's wheel is built from (`make llama-tools`): the binding's own
quantize call cannot take an importance matrix.

Calibration (what the matrix is measured on):
  none     no matrix (plain round-to-nearest per block);
  general  generic text: the bundled Wikipedia passages (wikitext-like), or a file of the user's;
  domain   the exact Rank1 prompts the reranker gives the model for the user's queries and their
           first-stage passages (instruction, query, passage, chat markup);
  cross    both, `domain_share` of the tokens from the domain and the rest general, shuffled
           together with a fixed seed.
An already quantized source (the packaged SmolLM2 is Q4_1) is first dequantized to f32, which
is then the base the new format is made from and compared with.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from kirag.core.cpus import usable_cpus
from kirag.core.ranges import COUNT, SEED, Range
from kirag.core.settings import check_settings, setting
from kirag.errors import KiragError, SettingsError
from kirag.llm.base import EngineTokens

CALIBRATIONS = ("none", "general", "domain", "cross")
CHUNKS = Range(2, integer=True)  # llama-imatrix needs at least 2 windows
OPEN_SHARE = Range(0, 1, low_open=True, high_open=True)
# llama-quantize's type names kirag offers (k-quants, i-quants, and the classic ones)
FORMATS = (
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q5_K_S",
    "Q4_K_M",
    "Q4_K_S",
    "Q4_0",
    "IQ4_NL",
    "IQ4_XS",
    "Q3_K_M",
    "Q3_K_S",
    "IQ3_XXS",
    "Q2_K",
    "Q2_K_S",
    "IQ2_XS",
    "IQ2_XXS",
)
# types llama-quantize refuses to make without an importance matrix
NEEDS_IMATRIX = ("IQ3_XXS", "Q2_K_S", "IQ2_XS", "IQ2_XXS")
UNQUANTIZED_FILE_TYPES = {0: "f32", 1: "f16", 32: "bf16"}  # GGUF general.file_type
TOOLS_ENV = "KIRAG_LLAMA_TOOLS"
MODEL_FILE = "model.gguf"
RECORD_FILE = "quantization.json"


@dataclass(frozen=True, slots=True)
class CalibrationSettings:
    """How the importance matrix is measured: `chunks` windows of `context` tokens (llama-imatrix
    needs at least two), `domain_share` of them from the domain prompts with `cross`."""

    kind: str = setting(
        "none",
        "calibration text: none, general (generic text), domain (the exact Rank1 prompts of "
        "your queries and passages) or cross (both, domain_share of it domain)",
        choices=CALIBRATIONS,
        flag="--calibration",
    )
    chunks: int = setting(
        16,
        "windows of context tokens measured (llama-imatrix needs 2)",
        range=CHUNKS,
        flag="--calibration-chunks",
    )
    context: int = setting(
        512, "tokens per calibration window", range=COUNT, flag="--calibration-context"
    )
    domain_share: float = setting(0.5, "with cross: the share of domain windows", range=OPEN_SHARE)
    seed: int = setting(42, "which windows are drawn", range=SEED, cli=False)  # --seed

    def __post_init__(self):
        check_settings(self)

    @property
    def tokens(self) -> int:
        return self.chunks * self.context


@dataclass(frozen=True, slots=True)
class QuantizationRecord:
    """What `kirag quantize` made and from what: written beside the model as quantization.json
    and summarised in the GGUF's own metadata (`kirag.quantization`), which the llama.cpp engine
    puts in its precision (run configs, score-cache fingerprints)."""

    source: str
    source_sha256: str
    base: str  # the unquantized weights the format was made from
    format: str
    calibration: dict
    calibration_texts: dict  # counts, tokens and the text's sha256 per part
    size_bytes: int
    base_size_bytes: int
    tools: str

    @property
    def summary(self) -> str:
        kind = self.calibration["kind"]
        if kind == "none":
            return f"{self.format}, no imatrix"
        digest = self.calibration_texts.get("sha256", "")[:12]
        return (
            f"{self.format}, imatrix {kind} {self.calibration['chunks']}x"
            f"{self.calibration['context']} tokens sha256:{digest}"
        )


# ---------------------------------------------------------------------------- llama.cpp tools


@dataclass(frozen=True, slots=True)
class LlamaTools:
    """The llama-imatrix and llama-quantize executables (built beside their ggml libraries)."""

    folder: Path

    @property
    def imatrix(self) -> Path:
        return self.folder / "llama-imatrix"

    @property
    def quantize(self) -> Path:
        return self.folder / "llama-quantize"

    @classmethod
    def find(cls, folder: str | Path | None = None) -> LlamaTools:
        """The tools in `folder`, else $KIRAG_LLAMA_TOOLS, else the newest `make llama-tools`
        build for the installed llama-cpp-python version under ~/.cache/kirag/wheels."""
        candidates = [Path(p) for p in (folder, os.environ.get(TOOLS_ENV)) if p]
        if not candidates:
            candidates = _cached_tool_folders()
        for candidate in candidates:
            tools = cls(candidate)
            if tools.imatrix.is_file() and tools.quantize.is_file():
                return tools
        where = ", ".join(map(str, candidates)) or "~/.cache/kirag/wheels/*/bin"
        raise KiragError(
            f"llama.cpp's llama-imatrix and llama-quantize are not built (looked in {where}): "
            f"run `make llama-tools`, or set {TOOLS_ENV} to the folder that holds them"
        )

    def run(self, args: Sequence[str], what: str) -> str:
        """Run one tool; its output on success, a one-line error naming the tool otherwise."""
        # the tools' own libraries first (their build-tree RUNPATH may point elsewhere once copied)
        paths = [str(self.folder), os.environ.get("LD_LIBRARY_PATH", "")]
        env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(p for p in paths if p)}
        result = subprocess.run(list(map(str, args)), capture_output=True, text=True, env=env)
        if result.returncode != 0:
            lines = [ln for ln in (result.stderr or result.stdout).splitlines() if ln.strip()]
            tail = lines[-1] if lines else f"exit status {result.returncode}"
            raise KiragError(f"{what} failed: {tail}")
        return result.stdout + result.stderr


def _cached_tool_folders() -> list[Path]:
    from importlib import metadata

    root = Path(os.environ.get("WHEEL_CACHE") or Path.home() / ".cache" / "kirag" / "wheels")
    try:
        version = metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        version = "*"
    found = root.glob(f"llama-cpp-python-{version}-*/build/bin")
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


# ---------------------------------------------------------------------------- GGUF facts


class GGUFVocab(EngineTokens):
    """A GGUF's tokenizer and metadata, loaded without its weights (vocab_only). Enough of an
    engine for a Rank1Reranker to build its exact prompts (tokens, context) without the model."""

    name = "llamacpp"

    def __init__(self, path: str | Path, context_length: int = 4096):
        from kirag.core.optional import require

        llama_cpp = require("llama_cpp", "llamacpp", "quantizing a GGUF")
        from llama_cpp import _internals
        from llama_cpp._logger import set_verbose

        from kirag.llm.llamacpp_backends import ensure_backends

        set_verbose(False)
        ensure_backends(llama_cpp)
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self._model = _internals.LlamaModel(path_model=str(path), params=params, verbose=False)
        self.metadata = dict(self._model.metadata())
        self.model_id = str(path)
        self.context_length = context_length

    def token_ids(self, text: str) -> list[int]:
        return self._model.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self._model.detokenize(list(ids)).decode("utf-8", "ignore")

    def count(self, text: str) -> int:
        """Tokens of `text` as llama-imatrix reads it (special tokens parsed, no BOS)."""
        return len(self._model.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    @property
    def file_type(self) -> int | None:
        value = self.metadata.get("general.file_type")
        return int(value) if value is not None else None

    def close(self) -> None:
        self._model.close()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unquantized_base(source: Path) -> tuple[Path, str]:
    """The unquantized weights to quantize from: the source itself when it is f32/f16/bf16,
    else its f32 dequantization (made once, cached; see requantized_gguf)."""
    from kirag.llm.convert import requantized_gguf

    vocab = GGUFVocab(source)
    try:
        file_type = vocab.file_type
    finally:
        vocab.close()
    if file_type in UNQUANTIZED_FILE_TYPES:
        return source, f"{source.name} as is ({UNQUANTIZED_FILE_TYPES[file_type]})"
    return requantized_gguf(source, "f32"), (
        f"f32 dequantization of {source.name} (GGUF file type {file_type}: already quantized)"
    )


# ---------------------------------------------------------------------------- calibration text


def calibration_text(
    settings: CalibrationSettings,
    count_tokens,
    domain: Sequence[str] = (),
    general: Sequence[str] = (),
) -> tuple[str, dict]:
    """The calibration file's text and what it holds. Texts are drawn in a seeded random order
    until each part has its share of `settings.tokens` (plus a margin, since llama-imatrix adds
    a BOS per chunk), then shuffled together (seeded); separated by blank lines."""
    if settings.kind == "none":
        return "", {}
    wanted = {
        "general": settings.tokens if settings.kind == "general" else 0,
        "domain": settings.tokens if settings.kind == "domain" else 0,
    }
    if settings.kind == "cross":
        wanted["domain"] = round(settings.tokens * settings.domain_share)
        wanted["general"] = settings.tokens - wanted["domain"]
    sources = {"general": list(general), "domain": list(domain)}
    rng = random.Random(settings.seed)
    units: list[str] = []
    info: dict = {}
    for part in ("domain", "general"):
        if not wanted[part]:
            continue
        pool = sources[part]
        if not pool:
            raise SettingsError(
                f"calibration {settings.kind!r} needs {part} text: "
                + (
                    "give domain (the Rank1 prompts of your queries and their first-stage passages)"
                    if part == "domain"
                    else "give general (plain text paragraphs)"
                ),
                parameters=(part,),
            )
        order = list(range(len(pool)))
        rng.shuffle(order)
        taken, tokens = [], 0
        for index in order:
            if tokens >= wanted[part] + settings.context:  # one window of margin
                break
            taken.append(pool[index])
            tokens += count_tokens(pool[index]) + 2
        if tokens < wanted[part]:
            raise SettingsError(
                f"the {part} calibration text has {tokens} tokens, {wanted[part]} are needed: "
                "give more text or lower chunks",
                parameters=("chunks",),
            )
        units.extend(taken)
        info[part] = {"texts": len(taken), "tokens": tokens, "available": len(pool)}
    rng.shuffle(units)
    text = "\n\n".join(units)
    info["sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text, info


# ---------------------------------------------------------------------------- quantize


def quantize_gguf(
    source: str | Path,
    fmt: str,
    output: str | Path,
    settings: CalibrationSettings,
    domain: Sequence[str] = (),
    general: Sequence[str] = (),
    threads: int | None = None,
    overwrite: bool = False,
    tools: LlamaTools | None = None,
    imatrix: str | Path | None = None,
) -> QuantizationRecord:
    """Make `output`/model.gguf in `fmt` from `source` (its unquantized base), with an importance
    matrix from the calibration the settings name; the folder also holds the calibration text,
    the matrix and quantization.json. `imatrix`: a matrix made earlier from the same calibration
    (reused, e.g. for several formats). Atomic: the folder appears whole or not at all."""
    from kirag.core.atomic import atomic_directory, write_json

    fmt = fmt.upper()
    if fmt not in FORMATS:
        raise SettingsError(f"unknown GGUF format {fmt!r}; known: {', '.join(FORMATS)}")
    if fmt in NEEDS_IMATRIX and settings.kind == "none":
        raise SettingsError(
            f"{fmt} needs an importance matrix: choose a calibration kind other than none",
            parameters=("kind",),
        )
    source = Path(source)
    if not source.is_file() or source.suffix.lower() != ".gguf":
        raise KiragError(
            f"{source}: not a GGUF file (kirag quantize takes a .gguf; convert an HF folder "
            "with llama.cpp's convert_hf_to_gguf.py first)"
        )
    tools = tools or LlamaTools.find()
    threads = threads or usable_cpus()
    base, base_note = unquantized_base(source)
    with atomic_directory(output, overwrite=overwrite, check_replace=_check_quantized) as tmp:
        texts: dict = {}
        matrix = None
        if settings.kind != "none":
            if imatrix is not None:  # made by an earlier call with the same calibration
                earlier = Path(imatrix).parent
                texts = json.loads((earlier / RECORD_FILE).read_text())["calibration_texts"]
                matrix = tmp / "imatrix.gguf"
                shutil.copy2(imatrix, matrix)
                shutil.copy2(earlier / "calibration.txt", tmp / "calibration.txt")
            else:
                vocab = GGUFVocab(base)
                try:
                    text, texts = calibration_text(settings, vocab.count, domain, general)
                finally:
                    vocab.close()
                calibration_file = tmp / "calibration.txt"
                calibration_file.write_text(text, encoding="utf-8")
                matrix = tmp / "imatrix.gguf"
                tools.run(
                    [
                        tools.imatrix,
                        "-m", base,
                        "-f", calibration_file,
                        "-o", matrix,
                        "-c", settings.context,
                        "--chunks", settings.chunks,
                        "--no-ppl",
                        "--parse-special",
                        "-t", threads,
                    ],
                    "llama-imatrix",
                )  # fmt: skip
        record = QuantizationRecord(
            source=str(source),
            source_sha256=sha256_file(source),
            base=base_note,
            format=fmt,
            calibration=asdict(settings),
            calibration_texts=texts,
            size_bytes=0,
            base_size_bytes=base.stat().st_size,
            tools=str(tools.folder),
        )
        command = [tools.quantize]
        if matrix is not None:
            command += ["--imatrix", matrix]
        command += ["--override-kv", f"kirag.quantization=str:{record.summary}"]
        command += [base, tmp / MODEL_FILE, fmt, threads]
        tools.run(command, "llama-quantize")
        size = (tmp / MODEL_FILE).stat().st_size
        record = QuantizationRecord(**{**asdict(record), "size_bytes": size})
        write_json(tmp / RECORD_FILE, {**asdict(record), "summary": record.summary})
    return record


def _check_quantized(path: Path) -> None:
    """Overwrite only a folder kirag quantize made."""
    from kirag.errors import OutputExistsError

    if not (path / RECORD_FILE).is_file():
        raise OutputExistsError(
            f"{path} is not a kirag quantize output (no {RECORD_FILE}); refusing to replace it"
        )
