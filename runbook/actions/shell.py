"""`shell`: run a command; an argv list runs with no shell at all.

In `command:` every `{{ value }}` reaches /bin/sh as exactly one word, read
literally, or the step is refused (runbook.actions.shellwords says where a value may
stand); `shape_problems` refuses at validation what the run would refuse.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2

from runbook.actions import shellcommands, shellwords
from runbook.actions.base import ANY, Field
from runbook.context import StepContext
from runbook.errors import StepError
from runbook.model import Step
from runbook.pg import pgtools
from runbook.results import Result, ShellResult
from runbook.sqltemplate import template
from runbook.sqltemplate.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("shell", ANY), Kind.TEXT),
    Field(("shell", "argv"), Kind.TEXT),
    Field(("shell", "command"), Kind.TEXT),
    Field(("shell", "env", ANY), Kind.TEXT),
    Field(("shell", "stdin"), Kind.TEXT),
    Field(("shell", "cwd"), Kind.TEXT),
)


def may_write(step: Step) -> bool:
    return bool(step.options.get("writes", True))


OUTPUT_LIMIT = 1_000_000  # characters of stdout/stderr kept per step


def _command(ctx: StepContext) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    body = ctx.step.body
    spec: dict[str, Any] = {"argv": body} if isinstance(body, list) else body
    env: dict[str, str] = {}
    refused = [why for _, _, why in stdin_problems(spec)]
    if "argv" in spec:
        refused += [why for _, _, why in _argv_problems(spec["argv"])]
    if refused:
        raise StepError(f"refused: {refused[0]}")
    if "argv" in spec:
        argv = [template.render_text(a, ctx.scope) for a in spec["argv"]]
    else:
        rendered, env = template.render_shell(spec["command"], ctx.scope)
        line, refused = shellwords.requote(rendered)
        if refused:
            raise StepError(f"refused, nothing ran: {'; '.join(refused)}")
        argv = ["/bin/sh", "-c", line]
    for key, value in spec.get("env", {}).items():
        env[key] = template.render_text(value, ctx.scope) if isinstance(value, str) else str(value)
    if any("\0" in text for text in (*argv, *env.values())):
        # No argument or environment variable can carry one: refused rather than cut short.
        raise StepError("a value holds a NUL byte, which cannot be passed to a command")
    return argv, env, spec


def shape_problems(body: Any) -> Iterator[tuple[tuple[str | int, ...], int, str]]:
    """(path inside the step's `shell`, offset in that string, message) for each
    value that could not reach the command as one word, whatever the values."""
    if isinstance(body, list):
        yield from _argv_problems(body)
    elif isinstance(body, dict) and isinstance(body.get("argv"), list):
        for path, offset, why in _argv_problems(body["argv"]):
            yield ("argv", *path), offset, why
    elif isinstance(body, dict) and isinstance(body.get("command"), str):
        for offset, why in _command_problems(body["command"]):
            yield ("command",), offset, why
    yield from stdin_problems(body)


_ADVICE = '; pass it in `env:` and write "$NAME" in the command, or use argv:'


def _argv_problems(argv: list[Any]) -> Iterator[tuple[tuple[str | int, ...], int, str]]:
    """argv items are one element each whatever their values; but a program
    that runs an argument as code (sh -c, ssh, eval, psql -c, find -exec…)
    gets no templated item, by the rules a command line's words follow
    (runbook.actions.shellcommands)."""
    words = [_HOLES.sub(shellwords.HOLE, str(a)) for a in argv]
    dynamic = bool(argv) and template.is_template(str(argv[0]))
    why = shellcommands.refusal(words, dynamic)
    if why is None:
        return
    for i, item in enumerate(argv):
        if isinstance(item, str) and template.is_template(item):
            yield (i,), item.find("{"), f"a value here: {why}{_ADVICE}"


_HOLES = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


def stdin_problems(body: Any) -> Iterator[tuple[tuple[str | int, ...], int, str]]:
    """A templated `stdin:` for a program that runs what it reads as code."""
    if not isinstance(body, dict) or not isinstance(body.get("stdin"), str):
        return
    if not template.is_template(body["stdin"]):
        return
    if "argv" in body and isinstance(body["argv"], list):
        words = [str(a) for a in body["argv"]]
    elif isinstance(body.get("command"), str):
        words = []
        for word in body["command"].split():  # the line's first command reads stdin
            if word in ("|", "||", "&&", ";", "&"):
                break
            words.append(word)
    else:
        return
    if shellcommands.reads_code(words) or (words and template.is_template(words[0])):
        yield (
            ("stdin",),
            body["stdin"].find("{"),
            f"a value here goes to `{words[0]}` as code on its standard input{_ADVICE}",
        )


def _command_problems(source: str) -> list[tuple[int, str]]:
    """Lex the template: each {{ }} a hole, each {% %} a tag (runbook.actions.shellwords)."""
    if "\0" in source or "\x01" in source:
        return [(0, "a NUL or \\x01 byte in a shell command")]
    try:
        tokens = list(template.SHELL_ENV.lexer.tokeniter(source, None))
    except jinja2.TemplateSyntaxError:
        return []  # reported as a syntax error
    text: list[str] = []
    tags: list[tuple[str, int]] = []
    holes: list[int] = []
    problems: list[tuple[int, str]] = []
    offset = 0
    expect_tag = False
    for _, kind, value in tokens:
        at = source.find(value, offset)
        offset = at + len(value) if at >= 0 else offset
        if kind == "data":
            text.append(value)
        elif kind == "variable_begin":
            holes.append(at)
            text.append(shellwords.HOLE)
        elif kind == "block_begin":
            expect_tag = True
            tag_at = at
        elif expect_tag and kind == "name":
            expect_tag = False
            why = _tag_refusal(value, source, tag_at)
            if why:
                problems.append((tag_at, why))
            tags.append((value, tag_at))
            text.append(shellwords.TAG)
    verdict = shellwords.analyse("".join(text), tags)
    for number, why in sorted(verdict.refused.items()):
        problems.append(
            (holes[number], f"this value would not reach the shell as one word: {why}{_ADVICE}")
        )
    return problems + verdict.tag_problems


# Tags that print text they transform, or define what prints it: the command's
# quoting could no longer be read from the template.
_REFUSED_TAGS = frozenset(
    {"filter", "macro", "call", "include", "import", "from", "extends", "block", "autoescape"}
)


def _tag_refusal(name: str, source: str, at: int) -> str | None:
    if name in _REFUSED_TAGS:
        return f"{{% {name} %}} is not allowed in a shell command: it could change the command's quoting"
    if name == "set" and "=" not in source[at : source.find("%}", at)]:
        return "a {% set %} block is not allowed in a shell command: print values with {{ }}"
    return None


def _client(ctx: StepContext, spec: dict[str, Any]) -> pgtools.Choice | None:
    """The target's client programs, for a step whose command names one (pg_dump,
    psql …) or, once the run is connected anyway, for any step (a script may call
    them). Read from the step as written, so no value can make runbook connect."""
    tools = ctx.client_tools
    if tools is None:
        return None
    written = spec["command"] if "command" in spec else " ".join(map(str, spec["argv"]))
    if not (pgtools.mentions_client(written) or ctx.session.conn is not None):
        return None
    return tools.choice(lambda: ctx.session.server_version)


def run(ctx: StepContext) -> Result:
    argv, extra_env, spec = _command(ctx)
    client = _client(ctx, spec)
    env: dict[str, str] = {**os.environ, **ctx.session_env}
    if client is not None:
        env = pgtools.with_tools(env, client)
    env.update(extra_env)
    cwd = ctx.root / template.render_text(spec["cwd"], ctx.scope) if spec.get("cwd") else ctx.root
    stdin = template.render_text(spec["stdin"], ctx.scope) if spec.get("stdin") else None
    ctx.rendered = [" ".join(argv)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            errors="replace",
            env=env,
            cwd=Path(cwd),
            timeout=ctx.timeout,
            check=False,
        )
    except FileNotFoundError:
        raise StepError(f"command not found: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise StepError(
            f"command timed out after {ctx.timeout:g}s and was killed: {argv[0]}",
            mid_flight=True,  # it ran until then: what it did is unknown
        ) from None
    except OSError as exc:
        raise StepError(f"cannot run {argv[0]}: {exc.strerror}") from None
    ok_status = spec.get("ok_status", [0])
    result = ShellResult(
        argv,
        proc.returncode,
        proc.stdout[-OUTPUT_LIMIT:],
        proc.stderr[-OUTPUT_LIMIT:],
        (time.perf_counter() - started) * 1000,
        proc.returncode in ok_status,
        client.record() if client is not None else None,
    )
    ctx.note = f"exit status {proc.returncode}"
    if not result.ok:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        detail = ": " + " | ".join(tail) if tail else ""
        raise StepError(f"{argv[0]} exited with status {proc.returncode}{detail}", result=result)
    return result


def preview(ctx: StepContext) -> str:
    return "$ " + " ".join(_command(ctx)[0])
