"""Questions put to the person at the terminal: yes or no, or a name typed back.

These read the answer themselves instead of through `click.confirm`, which
turns Ctrl-C into `click.Abort`: inside a step that became "a step errored"
(exit 3). Here Ctrl-C stays a KeyboardInterrupt (the run is interrupted,
exit 130) and a closed input is a "no".
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
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


def yes_no(prompt: str) -> bool:
    """y/N: only a yes goes on."""
    while True:
        answer = _answer(f"{prompt} [y/N]: ")
        if answer is None:
            return False
        answer = answer.lower()
        if answer in ("y", "yes"):
            return True
        if answer in ("", "n", "no"):
            return False
        click.echo("answer y or n")


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

    def ask(ps: Any) -> bool:
        nonlocal go_on
        if go_on:
            return True
        while True:
            answer = _answer(f"step {ps.number} {ps.name!r} ({ps.kind}): run it? [y/n/c]: ")
            if answer is None:
                return False
            answer = answer.lower()
            if answer in ("y", "yes"):
                return True
            if answer in ("n", "no"):
                return False
            if answer in ("c", "continue"):
                go_on = True
                return True
            click.echo("answer y (run it), n (skip it) or c (run it and the rest)")

    return ask
