"""No flag's help text states a default that the code does not use.

The drift this guards against: `kirag answer --help` said "default per mode: aligner 2 turns,
beam 5" while the pipeline used 3 and 2. Every subcommand's parser is walked; a help text that
names a literal default (a number, or one of the flag's choices) must name the flag's actual
default, and the per-mode defaults of `kirag answer` must be what KiRAG builds in each mode."""

from __future__ import annotations

import argparse
import re

import pytest

from kirag.cli import build_parser

# "default: X", "default X", "(default X)": the clause up to the next , ; ( or )
DEFAULT_CLAUSE = re.compile(r"\bdefault\b[:\s]*(?P<clause>[^,;()]*)", re.IGNORECASE)
# "torch (default, ...)": a choice named as the default
CHOICE_DEFAULT = re.compile(r"(?P<word>[\w.-]+) \(default[,)]", re.IGNORECASE)
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
PER_MODE = re.compile(r"default per mode: (?P<pairs>[^)]*)")


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("kirag",)):
    """(command words, parser) for the parser and every subcommand below it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def flags():
    """(command, action) for every optional flag with a help text."""
    for path, parser in commands(build_parser()):
        for action in parser._actions:
            if action.option_strings and action.help and action.help != argparse.SUPPRESS:
                yield " ".join(path), action


def stated_literals(action: argparse.Action) -> list[set[str]]:
    """For each place the help states a default: the literal values it names there (numbers, or
    the flag's choices). An empty list: the help states no checkable default."""
    choices = {str(c) for c in action.choices or ()}
    found = []
    for match in DEFAULT_CLAUSE.finditer(action.help):
        if match.group(0).lower().startswith("default per mode"):
            continue  # checked against the pipeline below
        clause = match.group("clause")
        words = set(re.findall(r"[\w.-]+", clause))
        literals = set(NUMBER.findall(clause)) | (words & choices)
        if literals:
            found.append(literals)
    found += [{m.group("word")} for m in CHOICE_DEFAULT.finditer(action.help)]
    return found


def contradictions(command: str, action: argparse.Action) -> list[str]:
    """A line per stated default that is not the flag's actual default."""
    if action.default is None or isinstance(action.default, bool):
        return []  # a computed default ("the index's encoder") or a switch
    actual = str(action.default)
    return [
        f"{command} {action.option_strings[-1]}: help says default {sorted(literals)}, "
        f"the parser's default is {actual!r}: {action.help!r}"
        for literals in stated_literals(action)
        if actual not in literals
    ]


def test_no_help_text_states_a_default_the_parser_does_not_use():
    problems = [line for command, action in flags() for line in contradictions(command, action)]
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_drifted_help_text():
    parser = argparse.ArgumentParser()
    drifted = [
        parser.add_argument("--beam", type=int, default=2, help="chains kept (default 5)"),
        parser.add_argument("--budget", type=int, default=64, help="tokens; default: 8192"),
        parser.add_argument(
            "--engine", default="auto", choices=["auto", "vllm"], help="the engine (default: vllm)"
        ),
        parser.add_argument("--backend", default="onnx", help="torch (default, the reference)"),
    ]
    assert [len(contradictions("x", action)) for action in drifted] == [1, 1, 1, 1]
    agreeing = [
        parser.add_argument("--k", type=int, default=10, help="hits (default: 10)"),
        parser.add_argument(
            "--level",
            default="WARNING",
            choices=["INFO", "WARNING"],
            help="logging level (default: WARNING)",
        ),
        parser.add_argument("--pool", default=None, help="pool file (default: the shipped one)"),
        parser.add_argument("--systems", default="", help="a regular expression (default: all)"),
    ]
    assert [contradictions("x", action) for action in agreeing] == [[], [], [], []]


def answer_help_per_mode() -> dict[str, dict[str, int]]:
    """`kirag answer`'s "default per mode: aligner 3, llm 3, reference 5" texts, by flag."""
    stated = {}
    for command, action in flags():
        found = PER_MODE.search(action.help) if command == "kirag answer" else None
        if found:
            pairs = (pair.split() for pair in found.group("pairs").split(","))
            stated[action.option_strings[-1]] = {mode: int(value) for mode, value in pairs}
    return stated


def test_answer_states_per_mode_defaults_for_turns_beam_and_candidates():
    assert set(answer_help_per_mode()) == {"--turns", "--beam", "--candidates"}
    for per_mode in answer_help_per_mode().values():
        assert set(per_mode) == {"aligner", "llm", "reference"}


@pytest.mark.slow
def test_answer_per_mode_defaults_are_what_kirag_builds(slice_triple_index, smollm2_gguf):
    """The help's per-mode numbers against the chain retriever each mode really builds."""
    from kirag.models import DEFAULT_LLM
    from kirag.rag.pipeline import KiRAG

    generic = {"--turns": "max_turns", "--beam": "beam_size", "--candidates": "num_candidates"}
    built = {
        "aligner": KiRAG(slice_triple_index, mode="aligner").retriever,
        "llm": KiRAG(slice_triple_index, mode="llm", constructor_model=DEFAULT_LLM).retriever,
    }
    settings = KiRAG(slice_triple_index, mode="reference").retriever.settings
    for flag, per_mode in answer_help_per_mode().items():
        actual = {mode: getattr(r.settings, generic[flag]) for mode, r in built.items()}
        actual["reference"] = getattr(settings, generic[flag])  # one name in every mode
        assert per_mode == actual, flag
