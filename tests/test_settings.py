"""One definition per setting: the settings classes declare name, default, range, choices, help
and what a setting affects; the CLI's flags, validation, keys and the docs page are derived.
This walks every registered class and every parser of the `kirag` command: a flag derived from a
setting must say what the setting says, and a hand-written flag that shares a setting's name
must be a different setting, listed below with the reason."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from kirag.cli import build_parser, main
from kirag.cli.settings import SETTINGS_CLASSES, render, settings_class
from kirag.core.ranges import COUNT, FRACTION
from kirag.core.settings import (
    add_arguments,
    as_record,
    changed_options,
    check_settings,
    declared,
    fingerprint,
    from_args,
    keyed,
    setting,
)
from kirag.errors import KiragError, SettingsError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "settings.md"

# (command, flag) -> why a hand-written flag of that name is another setting than the declared one
OTHER_SETTINGS = {
    ("kirag rerank", "--model"): "the reranker's model",
    ("kirag serve", "--model"): "the reranker's model",
    ("kirag bench reproduce", "--model"): "the LLM of every role",
    ("kirag bench quantize", "--model"): "the GGUF quantized",
    ("kirag bench rerank", "--model"): "the reranker every configuration of the benchmark loads",
    ("kirag quantize", "--context"): "the context the calibration prompts are fitted to",
    ("kirag bench rerank", "--batch-size"): "the benchmark's own grid value",
    ("kirag bench quantize", "--batch-size"): "the benchmark's own grid value",
    ("kirag bench serve", "--model-queue"): "the benchmark's server, sized for its load",
    ("kirag search", "--threads"): "search threads, not indexing threads",
    ("kirag quantize", "--threads"): "llama.cpp tools' threads",
    ("kirag bench quantize", "--threads"): "llama.cpp tools' threads",
    ("kirag bench kirag", "--encoder"): "a trained encoder folder for the ablation rows",
    ("kirag bench kirag", "--bm25"): "a BM25 index folder, not whether to build one",
    ("kirag bench kirag", "--dense"): "a dense index folder, not whether to build one",
    ("kirag bench gpu-check", "--encoder"): "the model encoded on GPU and CPU",
    ("kirag bench rerank", "--candidates"): "BM25 passages per question, not triples",
    ("kirag bench quantize", "--candidates"): "BM25 passages per question, not triples",
    ("kirag bench kirag-cv", "--turns"): "the list of turns the cross-validation tries",
    ("kirag search", "--k"): "hits per query of a search run, not documents per answer",
    ("kirag rerank", "--k"): "the first stage's hits reranked",
    ("kirag quantize", "--k"): "first-stage passages of a calibration query",
    ("kirag submit trec", "--k"): "the documents a TREC run keeps per topic",
    ("kirag submit validate", "--k"): "the documents a TREC run may keep per topic",
    ("kirag answer", "--demonstration-encoder"): "ranks the constructor's chain demonstrations "
    "(default: the index's encoder), not the reference extractor's",
}

# flag -> why classes that declare it under one field name declare it apart (else it is one
# declaration, shared with kirag.core.settings.same_as or other_default: one help, one range)
DECLARED_APART = {
    "--batch-size": "encoding, extraction and reranking batches: three settings of three commands",
    "--quantize": "the dense encoder's and the LLM engine's weights: other commands, other values",
    "--model": "the dense encoder and the extraction LLM: two models of kirag index triples",
    "--device": "where a dense index is encoded, where a model is trained: other commands",
    "--turns": "a per-mode flag: the reference mode states the reference's numbers",
    "--beam": "a per-mode flag: the reference mode allows only 1",
    "--candidates": "a per-mode flag: the reference's candidates enter a pool",
}


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("kirag",)):
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


CLASSES = {title: settings_class(target) for title, target in SETTINGS_CLASSES.items()}
DECLARED_FLAGS: dict[str, list] = {}  # flag -> the (class, declared field)s that have it
for _cls in CLASSES.values():
    for _item in declared(_cls):
        if _item.setting.cli:
            DECLARED_FLAGS.setdefault(_item.flag, []).append((_cls, _item))


def _flag_actions():
    for command, parser in _commands(build_parser()):
        for action in parser._actions:
            # a derived flag's aliases are its own spellings (kirag index dense's --encoder)
            flags = (
                action.option_strings[:1]
                if hasattr(action, "kirag_setting")
                else action.option_strings
            )
            for flag in flags:
                if flag in DECLARED_FLAGS:
                    yield command, flag, action


@pytest.mark.parametrize("title", list(SETTINGS_CLASSES))
def test_every_registered_class_declares_every_field(title):
    """A settings class's fields are all declared (help, range or choices, what they affect),
    and its defaults pass its own checks."""
    cls = CLASSES[title]
    names = [item.name for item in declared(cls)]
    assert names == list(cls.__dataclass_fields__)
    assert all(item.setting.help for item in declared(cls))
    check_settings(cls())


def test_derived_flags_say_what_the_setting_says():
    derived = 0
    for command, flag, action in _flag_actions():
        tag = getattr(action, "kirag_setting", (None, None))
        owners = [(cls, item) for cls, item in DECLARED_FLAGS[flag] if item.name == tag[1]]
        if isinstance(tag[0], tuple):  # one flag for sibling classes (modes): default per class
            assert {cls for cls, _ in owners} >= set(tag[0]), f"{command} {flag}"
            item = next(i for c, i in owners if c is tag[0][0])  # the first class's
            assert action.type is item.setting.range and action.default is None
            assert action.help.startswith(item.setting.help + " (default per mode: ")
            derived += 1
            continue
        if tag[0] not in [cls for cls, _ in owners]:  # written by hand
            cls, item = DECLARED_FLAGS[flag][0]
            assert (command, flag) in OTHER_SETTINGS, (
                f"{command} {flag} restates {cls.__name__}.{item.name}: derive it with "
                "add_arguments, or list it in OTHER_SETTINGS with the reason"
            )
            continue
        item = next(i for c, i in owners if c is tag[0])
        derived += 1
        assert action.default == item.default or action.kirag_default_differs, f"{command} {flag}"
        assert action.help == item.setting.help, f"{command} {flag}"
        assert action.type in (item.setting.range, None), f"{command} {flag}"
        if action.kirag_restricted:  # a command that runs fewer of the choices, declared
            assert set(action.choices) < set(item.setting.allowed()), f"{command} {flag}"
        else:
            assert action.choices == item.setting.allowed(), f"{command} {flag}"
    assert derived >= 30  # rerank, serve and quantize derive theirs


def test_a_flag_spelled_for_its_command_says_what_the_setting_says():
    """A derived flag a command spells its own way (add_arguments' `flags`) keeps the
    setting's help, range and default (or a declared command default)."""
    renamed = []
    for command, parser in _commands(build_parser()):
        for action in parser._actions:
            tag = getattr(action, "kirag_setting", None)
            if tag is None or isinstance(tag[0], tuple):
                continue
            item = {i.name: i for i in declared(tag[0])}[tag[1]]
            if action.option_strings[0] == item.flag:
                continue
            renamed.append((command, action.option_strings[0]))
            assert action.help == item.setting.help and action.type is item.setting.range
            assert action.default == item.default or action.kirag_default_differs
    assert renamed == [("kirag answer", "--rerank-budget")]


def test_every_declared_flag_is_on_some_command():
    flags = {flag for _, flag, action in _flag_actions()}
    missing = [
        f"{cls.__name__}.{item.name}"
        for flag, owners in DECLARED_FLAGS.items()
        for cls, item in owners
        if flag not in flags
    ]
    assert missing == []


def test_a_setting_two_classes_hold_is_declared_once():
    """One concept in two classes (the Ray cluster's address of kirag serve --ray and of the
    executors) is one declaration; a flag declared apart is listed with the reason."""
    apart = {
        flag
        for flag, owners in DECLARED_FLAGS.items()
        for name in {item.name for _, item in owners}
        if len({id(item.setting) for _, item in owners if item.name == name}) > 1
    }
    assert apart == set(DECLARED_APART)


def test_the_other_settings_listed_are_still_written_by_hand():
    by_hand = {
        (command, flag)
        for command, flag, action in _flag_actions()
        if not hasattr(action, "kirag_setting")
    }
    assert set(OTHER_SETTINGS) <= by_hand


def test_the_docs_page_is_the_commands_output(capsys):
    assert DOCS.read_text(encoding="utf-8") == render(), (
        "docs/settings.md is stale: run `kirag settings > docs/settings.md`"
    )
    assert main(["settings"]) == 0
    assert capsys.readouterr().out == render()


# ------------------------------------------------------------ the machinery on a small class


@dataclass(frozen=True)
class Toy:
    depth: int = setting(10, "how deep", range=COUNT)
    weight: float = setting(0.5, "of the first list", range=FRACTION, option="fusion_weight")
    mode: str = setting("fast", "how", choices=("fast", "exact"))
    prompt: str | None = setting(None, "added to each query", in_text=True)
    batch: int = setting(8, "per call", range=COUNT, affects="rounding")
    workers: int = setting(2, "processes", range=COUNT, affects="nothing")
    trace: bool = setting(False, "log each step", affects="nothing")

    def __post_init__(self):
        check_settings(self)


def test_flags_round_trip_to_the_same_settings():
    parser = argparse.ArgumentParser()
    add_arguments(parser, Toy, title="toy")
    assert from_args(Toy, parser.parse_args([])) == Toy()
    args = parser.parse_args(["--depth", "3", "--mode", "exact", "--trace", "--weight", "0.2"])
    assert from_args(Toy, args) == Toy(depth=3, mode="exact", trace=True, weight=0.2)
    assert parser.kirag_parameters == {"fusion_weight": "weight"}  # errors name the flag


def test_the_api_and_the_cli_refuse_with_the_same_words(capsys):
    with pytest.raises(SettingsError, match=r"^depth must be an integer >= 1 \(got 0\)$"):
        Toy(depth=0)
    with pytest.raises(SettingsError, match=r"^mode must be one of fast, exact \(got 'slow'\)$"):
        Toy(mode="slow")
    parser = argparse.ArgumentParser(prog="toy")
    add_arguments(parser, Toy)
    with pytest.raises(SystemExit):
        parser.parse_args(["--depth", "0"])
    assert "--depth: must be an integer >= 1 (got 0)" in capsys.readouterr().err


def test_keys_hold_what_changes_results():
    toy = Toy(prompt="Be brief.")
    assert set(keyed(toy)) == {"depth", "weight", "mode", "prompt", "batch"}
    assert set(keyed(toy, rounding=False, text=False)) == {"depth", "weight", "mode"}
    assert fingerprint(keyed(toy)) != fingerprint(keyed(Toy()))
    assert fingerprint(keyed(Toy(workers=8, trace=True))) == fingerprint(keyed(Toy()))
    assert as_record(toy)["workers"] == 2
    assert changed_options(Toy(weight=0.3, depth=10)) == {"fusion_weight": 0.3}


def test_a_python_api_build_writes_its_run_record(tmp_path, enwiki_slice_docs):
    """An index built through the Python API has its resolved settings beside it, as one built
    by `kirag index` does (kirag-config.json in the folder)."""
    import json

    from kirag.retrieval.bm25 import BM25Retriever, BM25Settings

    BM25Retriever.build(enwiki_slice_docs[:20], tmp_path / "bm25", k1=1.2)
    record = json.loads((tmp_path / "bm25" / "kirag-config.json").read_text())
    assert record["command"] == "BM25Retriever.build"
    assert record["settings"] == {"corpus": "list", **as_record(BM25Settings(k1=1.2))}
    assert "bm25s" in record["packages"]


def test_the_modes_share_one_name_per_setting_and_refuse_others():
    from kirag.rag.modes import (
        AlignerModeSettings,
        LLMModeSettings,
        ReferenceSettings,
        mode_of,
        mode_settings,
    )

    shared = {"max_turns", "beam_size", "num_candidates"}
    for cls in (AlignerModeSettings, LLMModeSettings, ReferenceSettings):
        assert shared <= {item.name for item in declared(cls)}
    assert mode_settings("llm", max_turns=4) == LLMModeSettings(max_turns=4)
    assert mode_of(LLMModeSettings()) == "llm" and mode_of(AlignerModeSettings()) == "aligner"
    with pytest.raises(KiragError, match="option 'graph_expansion' does not apply to reference"):
        mode_settings("reference", graph_expansion=False)
    with pytest.raises(SettingsError, match=r"beam_size=1"):
        mode_settings("reference", beam_size=2)


def test_the_train_commands_default_to_their_settings_classes(tmp_path):
    """kirag train aligner's defaults are the rows' source's class (the reference's, or the
    CPU-sized --from-corpus ones); kirag train encoder's are CorpusEncoderSettings'."""
    from kirag.cli.train import aligner_settings, encoder_settings
    from kirag.rag.aligner_training import TrainSettings
    from kirag.rag.corpus_training import CorpusAlignerSettings, CorpusEncoderSettings

    rows = tmp_path / "rows.json"
    rows.write_text("[]")
    out = ["--output", str(tmp_path / "out")]
    parse = build_parser().parse_args
    assert aligner_settings(parse(["train", "aligner", "--train", str(rows), *out])) == (
        TrainSettings()
    )
    corpus = parse(["train", "aligner", "--from-corpus", str(rows), *out, "--lr", "0.1"])
    assert aligner_settings(corpus) == CorpusAlignerSettings(learning_rate=0.1)
    encoder = parse(["train", "encoder", "--from-corpus", str(rows), *out])
    assert encoder_settings(encoder) == CorpusEncoderSettings()


def test_the_chain_retriever_has_no_defaults_of_its_own():
    """IterativeRetriever takes a beam-search mode's settings: no setting is also a parameter
    with a default of its own, and its checks are the settings' (before the index is read)."""
    import inspect

    from kirag.rag.chains import IterativeRetriever
    from kirag.rag.modes import AlignerModeSettings

    parameters = set(inspect.signature(IterativeRetriever).parameters)
    assert parameters & {item.name for item in declared(AlignerModeSettings)} == set()
    with pytest.raises(SettingsError, match=r"^beam_size must be an integer >= 1 \(got 0\)$"):
        IterativeRetriever(None, beam_size=0)


@pytest.mark.triple_index
def test_kirag_composes_the_retriever_its_settings_describe(slice_triple_index):
    from kirag.knowledge.triple_index import TripleIndex
    from kirag.rag.chains import IterativeRetriever
    from kirag.rag.modes import AlignerModeSettings
    from kirag.rag.pipeline import KiRAG

    plain = IterativeRetriever(TripleIndex(slice_triple_index))
    assert plain.settings == AlignerModeSettings()  # its defaults are the aligner mode's
    assert plain.settings.max_turns == 3

    kirag = KiRAG(slice_triple_index, settings=AlignerModeSettings(max_turns=1, beam_size=3))
    assert kirag.mode == "aligner"
    assert kirag.retriever.settings == AlignerModeSettings(max_turns=1, beam_size=3)
    over = KiRAG(slice_triple_index, settings=AlignerModeSettings(max_turns=1), beam_size=4)
    assert over.retriever.settings == over.settings == AlignerModeSettings(max_turns=1, beam_size=4)
