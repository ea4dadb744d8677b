"""The command line registers only the command it runs (a faster start), and all for --help."""

from __future__ import annotations

import argparse

import pytest

from emustore.cli import build_parser


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(action.choices)


def test_a_named_command_is_the_only_one_registered() -> None:
    assert _commands(build_parser("pull")) == {"pull"}


@pytest.mark.parametrize("first", [None, "--help", "no-such-command"])
def test_otherwise_every_command_is(first: str | None) -> None:
    commands = _commands(build_parser(first))
    assert {"pull", "images", "fsck", "save", "load"} <= commands and len(commands) > 10


def test_a_named_command_parses_as_with_all() -> None:
    argv = ["pull", "busybox", "--root", "/tmp/r", "--concurrency", "2"]
    assert vars(build_parser("pull").parse_args(argv)).keys() == vars(build_parser(None).parse_args(argv)).keys()
