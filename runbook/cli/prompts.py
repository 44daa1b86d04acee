"""Questions put to the person at the terminal: yes or no, or a name typed back.

These read the answer themselves instead of through `click.confirm`, which
turns Ctrl-C into `click.Abort`: inside a step that became "a step errored"
(exit 3). Here Ctrl-C stays a KeyboardInterrupt (the run is interrupted,
exit 130) and a closed input is a "no".
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click


def attended() -> bool:
    """Whether a person can answer: input and output both a terminal."""
    return sys.stdin.isatty()


def _answer(prompt: str) -> str | None:
    click.echo(prompt, nl=False)
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:  # end of input: nobody is there to say yes
        click.echo("")
        return None
    return line.strip()


def _choose(prompt: str, answers: Mapping[str, str], hint: str) -> str | None:
    """Ask until an answer is one of `answers` (lower-cased): what it stands
    for; None at end of input."""
    while True:
        answer = _answer(prompt)
        if answer is None:
            return None
        meant = answers.get(answer.lower())
        if meant is not None:
            return meant
        click.echo(hint)


_YES_NO = {"y": "yes", "yes": "yes", "": "no", "n": "no", "no": "no"}


def yes_no(prompt: str) -> bool:
    """y/N: only a yes goes on."""
    return _choose(f"{prompt} [y/N]: ", _YES_NO, "answer y or n") == "yes"


def name_typed(name: str, prompt: str) -> bool:
    """The name typed back exactly (a y/N is too easy to give by habit)."""
    answer = _answer(f"{prompt}\nType {name!r} to go on, anything else stops: ")
    return answer == name


def step_prompter() -> Callable[[str, str | None], bool] | None:
    """What a `confirm` step asks through; None without a terminal (the step
    then needs --yes)."""
    if not attended():
        return None

    def ask(prompt: str, details: str | None) -> bool:
        if details:
            click.echo(details)
        return yes_no(prompt)

    return ask


def ask_before_start(lines: Sequence[str], names: Sequence[str]) -> bool:
    """Shown before a run that must be confirmed: the plan, then the question.
    With `names`, each must be typed back; otherwise y/N."""
    for line in lines:
        click.echo(line)
    if not names:
        return yes_no("Start?")
    return all(name_typed(name, f"{name} is protected.") for name in names)


def step_asker() -> Callable[[Any], bool]:
    """`--step`: before each step, y (run it), n (skip it) or c (run it and
    all the rest without asking)."""
    go_on = False
    answers = {"y": "yes", "yes": "yes", "n": "no", "no": "no", "c": "all", "continue": "all"}

    def ask(ps: Any) -> bool:
        nonlocal go_on
        if go_on:
            return True
        meant = _choose(
            f"step {ps.number} {ps.name!r} ({ps.kind}): run it? [y/n/c]: ",
            answers,
            "answer y (run it), n (skip it) or c (run it and the rest)",
        )
        go_on = meant == "all"
        return meant in ("yes", "all")

    return ask
