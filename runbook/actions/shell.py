"""`shell`: run a command; an argv list runs with no shell at all."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from runbook import template
from runbook.actions.base import ANY, Field
from runbook.context import StepContext
from runbook.errors import StepError
from runbook.model import Step
from runbook.results import Result, ShellResult
from runbook.template import Kind

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
    if "argv" in spec:
        argv = [template.render_text(a, ctx.scope) for a in spec["argv"]]
    else:
        line, env = template.render_shell(spec["command"], ctx.scope)
        argv = ["/bin/sh", "-c", line]
    for key, value in spec.get("env", {}).items():
        env[key] = template.render_text(value, ctx.scope) if isinstance(value, str) else str(value)
    return argv, env, spec


def run(ctx: StepContext) -> Result:
    argv, extra_env, spec = _command(ctx)
    env = {**os.environ, **ctx.session_env, **extra_env}
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
            f"command timed out after {ctx.timeout:g}s and was killed: {argv[0]}"
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
    )
    ctx.note = f"exit status {proc.returncode}"
    if not result.ok:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        detail = ": " + " | ".join(tail) if tail else ""
        raise StepError(f"{argv[0]} exited with status {proc.returncode}{detail}", result=result)
    return result


def preview(ctx: StepContext) -> str:
    return "$ " + " ".join(_command(ctx)[0])
