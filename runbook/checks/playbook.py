"""Checks of one playbook: ids, inventory references, schedule, severities, step rules."""

from __future__ import annotations

import math
from collections.abc import Iterator

from runbook import actions, plan
from runbook.checks import statements
from runbook.checks.approval import check_approval
from runbook.checks.common import Context, at, doc_at, get_path, suggest
from runbook.checks.drill import check_drill
from runbook.checks.includes import check_include
from runbook.checks.loops import check_loops
from runbook.checks.templates import TemplateCheck
from runbook.errors import Problem
from runbook.load import names
from runbook.load.yamlsrc import DataPath, Document, format_path
from runbook.model import Playbook, Scale, Step
from runbook.schedule import spec
from runbook.sqltemplate import sqltext


def check_playbook(
    pb: Playbook, ctx: Context, assumed: frozenset[str] = frozenset()
) -> list[Problem]:
    """Every meaning-level problem of `pb`; `assumed`: names taken as defined
    (registered by steps left out because their shape is wrong)."""
    assert pb.doc is not None
    problems: list[Problem] = []
    problems += _duplicate_ids(pb)
    problems += _inventory_refs(pb, ctx)
    problems += _schedule(pb, ctx)
    problems += _severities(pb, ctx.scale)
    problems += _step_rules(pb, ctx)
    problems += _reserved_names(pb)
    problems += check_loops(pb)
    problems += check_drill(pb)
    problems += check_approval(pb, ctx)
    problems += _run_on(pb)
    problems += TemplateCheck(pb, ctx, assumed).run()
    return problems


# The steps that write through the target's connection (a shell command's
# writes go where the command says; an include is judged as writing, since
# its playbook may change later).
_SQL_WRITERS = frozenset({"sql", "sql_file", "include"})


def writes_sql(pb: Playbook) -> bool:
    """Whether a run of `pb` may write to its target through its connection."""
    return pb.kind != "check" and any(
        step.kind in _SQL_WRITERS and (step.kind == "include" or actions.writes(step))
        for step in pb.walk()
    )


def run_on(pb: Playbook) -> str:
    """Which servers `pb` runs on: its `run_on`, else primary if it writes
    through its connection, else any (so a playbook of shell steps for a server
    that is down asks nothing of it first)."""
    return pb.run_on or ("primary" if writes_sql(pb) else "any")


def _run_on(pb: Playbook) -> Iterator[Problem]:
    if pb.run_on in ("standby", "any") and writes_sql(pb):
        assert pb.doc is not None
        yield doc_at(
            pb.doc,
            ("run_on",),
            f"run_on: {pb.run_on}, but {pb.name} may write: a writing playbook runs on a "
            "primary only (run_on: primary, or leave it out)",
            "run-on-writes",
        )


def _duplicate_ids(pb: Playbook) -> Iterator[Problem]:
    first: dict[str, Step] = {}
    for step in pb.walk():
        if step.id is None:
            continue
        if step.id in first:
            other = first[step.id].loc
            yield at(
                step.loc,
                f"duplicate step id {step.id!r} (already used at line {other.line}); ids must be unique",
                "duplicate-id",
                format_path((*step.data_path, "id")),
            )
        else:
            first[step.id] = step


def _inventory_refs(pb: Playbook, ctx: Context) -> Iterator[Problem]:
    inv = ctx.inventory
    if inv is None:
        return
    doc = pb.doc
    assert doc is not None
    names = set(inv.targets) | inv.group_names()
    for i, name in enumerate(pb.targets):
        if name not in names:
            path: DataPath = (
                ("targets", i) if isinstance(doc.data.get("targets"), list) else ("targets",)
            )
            yield doc_at(
                doc,
                path,
                f"unknown target or group {name!r}{suggest(name, names)}",
                "unknown-target",
            )
    for schedule in pb.schedules:
        for i, name in enumerate(schedule.targets):
            if name not in names:
                where: DataPath = (*schedule.data_path, "targets")
                if isinstance(get_path(doc.data, where), list):
                    where = (*where, i)
                yield doc_at(
                    doc,
                    where,
                    f"unknown target or group {name!r}{suggest(name, names)}",
                    "unknown-target",
                )
        # The scheduler lists its (schedule, target) pairs without connecting.
        found = [n for n in plan.source_names(pb, inv, schedule.targets) if n in inv.computed]
        if found:
            yield doc_at(
                doc,
                schedule.data_path,
                f"a schedule cannot use the computed group {found[0]!r} (targets_from): "
                "only `runbook run` finds its targets; schedule its targets or a listed group",
                "computed-group",
            )
    if pb.escalation and pb.escalation not in inv.policies:
        path = (
            ("escalation",) if isinstance(doc.data["escalation"], str) else ("escalation", "policy")
        )
        yield doc_at(
            doc,
            path,
            f"unknown escalation policy {pb.escalation!r}{suggest(pb.escalation, inv.policies)}",
            "unknown-policy",
        )
    for step in pb.walk():
        if step.kind == "notify":
            for i, channel in enumerate(step.body["channels"]):
                if channel not in inv.channels:
                    yield doc_at(
                        doc,
                        (*step.data_path, "notify", "channels", i),
                        f"unknown channel {channel!r}{suggest(channel, inv.channels)}",
                        "unknown-channel",
                    )
        if (
            step.kind == "escalate"
            and "policy" in step.body
            and step.body["policy"] not in inv.policies
        ):
            policy = step.body["policy"]
            yield doc_at(
                doc,
                (*step.data_path, "escalate", "policy"),
                f"unknown escalation policy {policy!r}{suggest(policy, inv.policies)}",
                "unknown-policy",
            )


def _schedule(pb: Playbook, ctx: Context) -> Iterator[Problem]:
    """Each schedule's problems (runbook.schedule.spec), located where written."""
    if not pb.schedules or pb.doc is None:
        return
    default = ctx.inventory.scheduler_timezone if ctx.inventory else None
    for schedule in pb.schedules:
        for path, message in spec.problems(schedule, default):
            yield doc_at(pb.doc, path, message, "schedule")
    for path, message in spec.duplicates(pb.schedules):
        yield doc_at(pb.doc, path, message, "schedule")


def _severity_refs(pb: Playbook) -> Iterator[tuple[DataPath, str]]:
    doc = pb.doc
    assert doc is not None
    if pb.escalation_threshold:
        yield ("escalation", "threshold"), pb.escalation_threshold
    for step in pb.walk():
        base = step.data_path
        raw = get_path(doc.data, base)
        gate = raw.get("gate")
        for i, g in enumerate(gate if isinstance(gate, list) else [gate] if gate else []):
            if "severity" in g:
                yield (
                    ((*base, "gate", i) if isinstance(gate, list) else (*base, "gate"))
                    + ("severity",),
                    g["severity"],
                )
        if step.kind == "classify":
            for i, t in enumerate(step.body["thresholds"]):
                yield (*base, "classify", "thresholds", i, "severity"), t["severity"]
            for key in ("default", "fail_at"):
                if key in step.body:
                    yield (*base, "classify", key), step.body[key]
        if step.kind in ("notify", "escalate") and "severity" in step.body:
            yield (*base, step.kind, "severity"), step.body["severity"]


def _severities(pb: Playbook, scale: Scale) -> Iterator[Problem]:
    assert pb.doc is not None
    for path, name in _severity_refs(pb):
        if "{{" in name:
            continue  # decided by a value: checked against the scale when it is rendered
        if scale.get(name) is None:
            yield doc_at(
                pb.doc,
                path,
                f"unknown severity {name!r}{suggest(name.upper(), scale.names())}; "
                f"the scale is {', '.join(scale.names())}",
                "unknown-severity",
            )


def _step_rules(pb: Playbook, ctx: Context) -> Iterator[Problem]:
    doc = pb.doc
    assert doc is not None
    for step in pb.walk():
        action = actions.REGISTRY[step.kind]
        if "{{" in step.name or "{%" in step.name:
            # The name is the step's identity in the plan, the journal and a
            # resume: it is known before any value is, so it is never rendered.
            yield doc_at(
                doc,
                (*step.data_path, "name"),
                "step names are not templated (they identify the step before any value "
                "exists); put the value in a gate message or in the step's SQL instead",
                "templated-name",
            )
        if step.rollback and not action.may_write(step):
            hint = " (a query that writes says `writes: true`)" if step.kind == "query" else ""
            yield doc_at(
                doc,
                (*step.data_path, "rollback"),
                f"a {step.kind} step cannot change anything, so it has nothing to roll back{hint}",
                "rollback-on-read",
                key=True,
            )
        if pb.kind == "check" and action.may_write(step) and step.kind != "transaction":
            yield at(
                step.loc,
                f"playbook is kind: check (read-only) but this {step.kind} step may write; "
                "set `writes: false` if it only reads, or make the playbook kind: change",
                "write-in-check",
            )
        if pb.kind == "check":
            yield from statements.read_only_escape(doc, step, ctx.root)
        elif action.may_write(step) and not step.options.get("autocommit"):
            yield from statements.transaction_control(doc, step, ctx.root)
        if step.kind == "sql_file":
            yield from statements.sql_file(doc, step, ctx.root)
        if step.retries and step.backoff > 1:
            yield from _retry_schedule(doc, step)
        if step.kind == "include":
            yield from check_include(pb, step, ctx)
        if step.kind == "transaction":
            yield from statements.transaction_block(doc, step)
        elif step.kind in ("sql", "query", "sql_file") and not step.options.get("autocommit"):
            # An autocommit step runs its statements one at a time, so any
            # number of these may stand in it; any other step runs in a transaction.
            yield from statements.statements(
                doc,
                step,
                ctx.root,
                sqltext.needs_autocommit,
                "{statement} cannot run inside a transaction; mark the step `autocommit: true`",
                "needs-autocommit",
            )


# The longest a step may wait between two tries (the schema's duration maximum).
MAX_DELAY = 604800.0


def _retry_schedule(doc: Document, step: Step) -> Iterator[Problem]:
    """The last wait, delay × backoff^(retries-1), must stay a duration: with
    backoff 10 and 400 retries it overflows to infinity, and sleeping that fails
    in the middle of the run."""
    exponent = math.log10(step.delay) + (step.retries - 1) * math.log10(step.backoff)
    if exponent > math.log10(MAX_DELAY):
        yield doc_at(
            doc,
            (*step.data_path, "backoff"),
            f"with delay {step.delay:g}s, backoff {step.backoff:g} and {step.retries} retries "
            f"the last wait would be about 1e{exponent:.0f} seconds, more than the maximum "
            f"of {MAX_DELAY:g}; lower the retries or the backoff",
            "retry-schedule",
        )


def _reserved_names(pb: Playbook) -> Iterator[Problem]:
    """Names the playbook defines (vars, register, set) that runbook or Jinja
    already give every template: refused where they are written."""
    doc = pb.doc
    assert doc is not None
    defined: list[tuple[DataPath, str, bool]] = [(("vars", n), n, True) for n in pb.vars]
    for step in pb.walk():
        if step.register:
            defined.append(((*step.data_path, "register"), step.register, False))
        if step.kind == "set":
            defined += [((*step.data_path, "set", n), n, True) for n in step.body]
        defined += [((*step.data_path, "vars", n), n, True) for n in step.vars]
    for path, name, key in defined:
        why = names.reserved_why(name)
        if why:
            yield doc_at(doc, path, why, "reserved-name", key=key)
