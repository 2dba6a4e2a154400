"""The README's command-line synopsis and `workq`'s argparse parser, checked against each other in both directions,
so neither can drift: every command and option the README shows is accepted (taking a value exactly when the README
gives it one), and every command and option the parser accepts is in the README.

Adding a command or an option to the parser only needs its line (or its `[--option VALUE]`) in the block after the
`<!-- cli-synopsis -->` marker; options every command shares go on the `every command:` line."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from workq.cli import _build_parser

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- cli-synopsis"
COMMON = "every command:"
OPTION = re.compile(r"--[a-z][a-z0-9-]*")
POSITIONAL = re.compile(r"[A-Z][A-Z_]*(?::[A-Z][A-Z_]*)?")


@dataclass
class Line:
    """What one synopsis line shows: options (with whether each takes a value) and positional arguments."""

    text: str
    options: dict[str, bool] = field(default_factory=dict)
    positionals: list[str] = field(default_factory=list)


def _parse_line(text: str) -> Line:
    line = Line(text)
    tokens = [token for token in re.split(r"[\s\[\]()]+", text) if token]
    for index, token in enumerate(tokens):
        if OPTION.fullmatch(token):
            after = tokens[index + 1] if index + 1 < len(tokens) else ""
            line.options[token] = bool(after) and after not in ("|", "...") and not after.startswith("-")
        elif POSITIONAL.fullmatch(token) and not (index and OPTION.fullmatch(tokens[index - 1])):
            line.positionals.append(token)
    return line


def readme_synopsis() -> tuple[dict[str, Line], Line]:
    """{command: its line} ("--version" for `workq --version`) and the line of options every command takes."""
    text = README.read_text(encoding="utf-8")
    assert MARKER in text, f"README.md has no {MARKER} --> marker before its command-line synopsis"
    block = text.split(MARKER, 1)[1].split("```", 2)[1]
    commands: dict[str, Line] = {}
    common = Line("")
    for raw in block.splitlines():
        if raw.startswith(COMMON):
            common = _parse_line(raw[len(COMMON) :])
        elif raw.startswith("workq "):
            name, _, rest = raw[len("workq ") :].partition(" ")
            assert name not in commands, f"`workq {name}` has two lines in the README synopsis"
            commands[name] = _parse_line(rest if not name.startswith("--") else raw[len("workq ") :])
    return commands, common


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [subparsers] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return dict(subparsers.choices)


def _options(parser: argparse.ArgumentParser) -> dict[str, bool]:
    """Every documented option of a parser (long names) and whether it takes a value."""
    return {
        name: action.nargs != 0
        for action in parser._actions
        if action.help != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction)
        for name in action.option_strings
        if name.startswith("--")
    }


def _positionals(parser: argparse.ArgumentParser) -> list[str]:
    return [
        str(action.metavar or action.dest.upper())
        for action in parser._actions
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction)
    ]


PARSER = _build_parser()
COMMANDS, COMMON_LINE = readme_synopsis()
SUBCOMMANDS = _subcommands(PARSER)
SHARED = set.intersection(*(set(_options(sub)) for sub in SUBCOMMANDS.values()))


def test_the_readme_shows_every_command_and_no_other() -> None:
    assert sorted(name for name in COMMANDS if not name.startswith("--")) == sorted(SUBCOMMANDS)


def test_the_top_level_options_are_in_the_readme() -> None:
    top = {name for name in _options(PARSER) if name != "--help"}
    assert top == {name for name in COMMANDS if name.startswith("--")}


def test_options_every_command_takes_are_on_the_common_line() -> None:
    assert set(COMMON_LINE.options) == SHARED
    for name, takes_value in COMMON_LINE.options.items():
        assert all(_options(sub)[name] == takes_value for sub in SUBCOMMANDS.values()), name


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_each_commands_options_and_arguments_match_the_readme(command: str) -> None:
    line = COMMANDS.get(command)
    assert line is not None, f"`workq {command}` is missing from the README synopsis"
    parsed = {name: takes for name, takes in _options(SUBCOMMANDS[command]).items() if name not in SHARED}
    assert set(line.options) - set(parsed) == set(), f"the README shows options `workq {command}` does not accept"
    assert set(parsed) - set(line.options) == set(), f"`workq {command}` accepts options the README does not show"
    for name, takes_value in parsed.items():
        shown = "with a value" if line.options[name] else "without a value"
        assert line.options[name] == takes_value, f"the README shows `workq {command} {name}` {shown}"
    assert line.positionals == _positionals(SUBCOMMANDS[command])


def test_the_checker_reads_values_options_and_arguments() -> None:
    line = _parse_line(
        "MODULE:ATTR [--grace SECONDS] (--all | DIED_AT JOB_ID) [--allow-host NAME]... [--insecure] [--log-level A|B]"
    )
    assert line.options == {
        "--grace": True,
        "--all": False,
        "--allow-host": True,
        "--insecure": False,
        "--log-level": True,
    }
    assert line.positionals == ["MODULE:ATTR", "DIED_AT", "JOB_ID"]
