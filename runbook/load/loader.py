"""Files → model: read, parse with positions, validate against the schema, build.

Every problem is collected as a :class:`Problem` (`file:line:col: $.pointer:
message`); a file with problems yields no model object. Meaning-level checks
(names, templates, cron, files) are in `runbook.checks`.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.errors import Problem
from runbook.load import doccache, schema, yamlsrc
from runbook.load.yamlsrc import DataPath, Document
from runbook.model import (
    Approval,
    Blackout,
    DrillDef,
    EnvRef,
    Gate,
    Loc,
    Objectives,
    Playbook,
    Schedule,
    Step,
    Strategy,
    seconds,
)

KIND_KEYS = tuple(schema.step_kinds())
_KINDS = frozenset(KIND_KEYS)
_COMMON = {
    "name",
    "id",
    "description",
    "when",
    "register",
    "tags",
    "timeout",
    "retries",
    "delay",
    "backoff",
    "until",
    "on_failure",
    "vars",
    "gate",
    "rollback",
    "loop",
    "loop_var",
}


@dataclass
class Loaded:
    """The result of loading one file: a document and its problems."""

    path: Path
    doc: Document | None = None
    problems: list[Problem] = field(default_factory=list)


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working folder if inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read(path: Path, schema_name: str, cache: Path | None = None) -> Loaded:
    """Parse and check one file; `cache` is a folder for documents known to be valid."""
    shown = display_path(path)
    loaded = Loaded(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        loaded.problems.append(Problem(shown, 1, 1, "", f"cannot read file: {exc.strerror}", "io"))
        return loaded
    cache_key = doccache.key(schema_name, raw) if cache is not None else ""
    if cache is not None:
        text = raw.decode("utf-8-sig", errors="replace")
        loaded.doc = doccache.load(cache, cache_key, shown, text)
        if loaded.doc is not None:
            return loaded
    try:
        loaded.doc = yamlsrc.parse(shown, raw)
    except yamlsrc.YamlError as exc:
        loaded.problems.append(yamlsrc.to_problem(shown, exc))
        return loaded
    loaded.problems.extend(schema.check(loaded.doc, schema_name))
    if cache is not None and not loaded.problems:
        doccache.store(cache, cache_key, loaded.doc)
    return loaded


def cache_dir(root: Path) -> Path:
    return root / ".runbook" / "cache" / "documents"


def loc(doc: Document, path: DataPath, *, key: bool = False) -> Loc:
    return Loc(doc.path, path=path, doc=doc, key=key)


def env_or_value(value: Any) -> Any:
    if isinstance(value, dict) and "from_env" in value:
        default = value.get("default")
        return EnvRef(
            value["from_env"], None if default is None else str(default), value.get("secret", True)
        )
    return value


def _conditions(value: Any) -> tuple[str, ...] | bool | None:
    if value is None or isinstance(value, bool):
        return value
    return tuple(value) if isinstance(value, list) else (value,)


def _gates(doc: Document, data: Any, path: DataPath) -> tuple[Gate, ...]:
    if data is None:
        return ()
    items = data if isinstance(data, list) else [data]
    gates = []
    for i, g in enumerate(items):
        gpath = (*path, i) if isinstance(data, list) else path
        that = g["that"]
        gates.append(
            Gate(
                that=tuple(that) if isinstance(that, list) else (that,),
                severity=g.get("severity", "CRITICAL"),
                message=g.get("message"),
                name=g.get("name"),
                on_failure=g.get("on_failure"),
                loc=loc(doc, gpath),
            )
        )
    return tuple(gates)


def build_step(doc: Document, data: dict[str, Any], path: DataPath) -> Step:
    present = [k for k in data if k in _KINDS]
    # `gate` is a kind of its own and also a key of other steps.
    kind = present[0] if len(present) == 1 or present[0] != "gate" else present[1]
    get = data.get
    body = data[kind]
    children: tuple[Step, ...] = ()
    gates: tuple[Gate, ...] = ()
    if kind == "transaction":
        children = build_steps(doc, body, (*path, kind))
        body = None
    elif kind == "gate":
        gates = _gates(doc, body, (*path, "gate"))
    if kind != "gate" and "gate" in data:
        gates = _gates(doc, data["gate"], (*path, "gate"))
    options = {k: v for k, v in data.items() if k not in _COMMON and k != kind}
    variables = get("vars")
    rollback = get("rollback")
    timeout, delay = get("timeout"), get("delay")
    return Step(
        kind=kind,
        name=data["name"],
        body=body,
        loc=Loc(doc.path, path=path, doc=doc),
        data_path=path,
        id=get("id"),
        when=_conditions(get("when")),
        register=get("register"),
        tags=frozenset(get("tags", ())),
        timeout=None if timeout is None else seconds(timeout),
        retries=get("retries", 0),
        delay=(seconds(delay) if delay is not None else None) or 1.0,
        backoff=float(get("backoff", 1.0)),
        until=_conditions(get("until")),
        on_failure=get("on_failure"),
        vars={k: env_or_value(v) for k, v in variables.items()} if variables else {},
        gates=gates,
        rollback=build_steps(doc, rollback, (*path, "rollback")) if rollback else (),
        children=children,
        options=options,
        loop=get("loop"),
        loop_var=get("loop_var", "item"),
    )


def build_steps(doc: Document, items: list[dict[str, Any]], path: DataPath) -> tuple[Step, ...]:
    return tuple(build_step(doc, item, (*path, i)) for i, item in enumerate(items))


def build_playbook(path: Path, doc: Document, without: frozenset[int] = frozenset()) -> Playbook:
    """The playbook of a valid document; `without`: top-level steps left out
    (validate checks the rest of a file whose other steps have a wrong shape)."""
    data = doc.data
    escalation = data.get("escalation")
    if isinstance(escalation, str):
        escalation = {"policy": escalation}
    targets = data.get("targets")
    return Playbook(
        name=data["name"],
        kind=data["kind"],
        steps=tuple(
            build_step(doc, item, ("steps", i))
            for i, item in enumerate(data["steps"])
            if i not in without
        ),
        path=path.resolve(),
        sha256=hashlib.sha256(doc.text.encode("utf-8")).hexdigest(),
        description=data.get("description", ""),
        owner=data.get("owner"),
        tags=frozenset(data.get("tags", ())),
        targets=(targets,) if isinstance(targets, str) else tuple(targets or ()),
        schedules=_schedules(data.get("schedule")),
        escalation=escalation["policy"] if escalation else None,
        escalation_threshold=escalation.get("threshold") if escalation else None,
        objectives=_objectives(data.get("objectives")),
        drill=_drill(data.get("drill")),
        approval=approval_of(data.get("approval")),
        vars={k: env_or_value(v) for k, v in data.get("vars", {}).items()},
        secrets=frozenset(data.get("secrets", ())),
        on_failure=data.get("on_failure", "halt"),
        timeout=seconds(data.get("timeout")),
        lock_timeout=seconds(data.get("lock_timeout")),
        strategy=_strategy(data.get("strategy")),
        run_on=data.get("run_on"),
        on_worker_loss=data.get("on_worker_loss"),
        doc=doc,
    )


def _strategy(data: dict[str, Any] | None) -> Strategy:
    if not data:
        return Strategy()
    budget = data.get("max_failures")
    kind = next(iter(budget)) if budget else None
    return Strategy(
        forks=data.get("forks"),
        waves=tuple(data.get("waves", ())),
        max_failures=(kind, float(budget[kind])) if budget and kind else None,
        order=data.get("order", "inventory"),
    )


def _objectives(data: dict[str, Any] | None) -> Objectives | None:
    if data is None:
        return None
    steps = {str(k): seconds(v) or 0.0 for k, v in (data.get("steps") or {}).items()}
    return Objectives(
        respond=seconds(data.get("respond")),
        mitigate=seconds(data.get("mitigate")),
        recover=seconds(data.get("recover")),
        steps=steps,
    )


def approval_of(data: dict[str, Any] | None) -> Approval | None:
    """An `approval:` object (a playbook's, or a step's kept in its options)."""
    if data is None:
        return None
    glass = data.get("break_glass") or {}
    return Approval(
        quorum=data.get("quorum", 1),
        approvers=tuple(data.get("approvers", ())),
        forbid_self=data.get("forbid_self", True),
        timeout=seconds(data.get("timeout")) or 1800.0,
        on_timeout=data.get("on_timeout", "halt"),
        break_glass=bool(glass.get("allowed", False)),
        reason_required=bool(glass.get("reason_required", True)),
    )


def _drill(data: dict[str, Any] | None) -> DrillDef | None:
    if data is None:
        return None
    return DrillDef(
        exercise=data["exercise"],
        recovery=data.get("recovery"),
        severity=data.get("severity"),
        heartbeat=data.get("heartbeat"),
        copy=data.get("copy", "auto"),
        notify=data.get("notify", "route"),
    )


def _schedules(data: Any) -> tuple[Schedule, ...]:
    """The short form, one long form, or a list of either."""
    if data is None:
        return ()
    if isinstance(data, list):
        return tuple(_schedule(item, ("schedule", i)) for i, item in enumerate(data))
    return (_schedule(data, ("schedule",)),)


def _schedule(data: str | dict[str, Any], path: DataPath) -> Schedule:
    if isinstance(data, str):
        return Schedule(cron=data, data_path=path, short=True)
    targets = data.get("targets")
    return Schedule(
        cron=data.get("cron"),
        every=seconds(data.get("every")),
        timezone=data.get("timezone"),
        targets=(targets,) if isinstance(targets, str) else tuple(targets or ()),
        overlap=data.get("overlap", "skip"),
        catchup=data.get("catchup", "latest"),
        starting_deadline=seconds(data.get("starting_deadline")),
        max_duration=seconds(data.get("max_duration")),
        jitter=seconds(data.get("jitter")),
        blackout=tuple(
            Blackout(start=b.get("from"), end=b.get("to"), weekly=b.get("weekly"))
            for b in data.get("blackout", ())
        ),
        data_path=path,
    )


def load_playbook(path: Path, cache: Path | None = None) -> tuple[Playbook | None, list[Problem]]:
    loaded = read(path, schema.PLAYBOOK, cache)
    if loaded.problems or loaded.doc is None:
        return None, loaded.problems
    return build_playbook(path, loaded.doc), []


_STEP_POINTER = re.compile(r"^\$\.steps\[(\d+)\]")


def load_partial(
    path: Path, problems: list[Problem], cache: Path | None = None
) -> tuple[Playbook, frozenset[str]] | None:
    """For `validate`: when every schema problem of a playbook lies inside its
    steps, the playbook without those steps, and the names they register (to
    be taken as defined), so the rest is checked too. None otherwise."""
    faulty: set[int] = set()
    for problem in problems:
        found = _STEP_POINTER.match(problem.pointer)
        if found is None:
            return None  # a problem outside the steps: nothing else can be trusted
        faulty.add(int(found.group(1)))
    loaded = read(path, schema.PLAYBOOK, cache)
    doc = loaded.doc
    if doc is None or not isinstance(doc.data, dict) or not isinstance(doc.data.get("steps"), list):
        return None
    registered = frozenset(
        name
        for i in faulty
        if i < len(doc.data["steps"]) and isinstance(doc.data["steps"][i], dict)
        for name in _names_defined(doc.data["steps"][i])
    )
    try:
        return build_playbook(path, doc, frozenset(faulty)), registered
    except (KeyError, TypeError, ValueError):  # the document's top level is not sound after all
        return None


def _names_defined(raw: dict[str, Any]) -> Iterator[str]:
    """What a faulty step would define, its misspelt keys read as meant
    (`regster: c` defines c: the typo is reported once, not again at each use)."""
    for key, value in raw.items():
        meant = key if key in ("register", "set") else None
        if meant is None and isinstance(key, str):
            close = difflib.get_close_matches(key, ("register", "set"), n=1, cutoff=0.75)
            meant = close[0] if close else None
        if meant == "register" and isinstance(value, str):
            yield value
        elif meant == "set" and isinstance(value, dict):
            yield from (k for k in value if isinstance(k, str))
    for nested in ("transaction", "rollback"):
        for child in raw.get(nested) or []:
            if isinstance(child, dict):
                yield from _names_defined(child)
