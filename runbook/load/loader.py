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

from runbook.errors import InvalidFiles, Problem
from runbook.load import doccache, schema, yamlsrc
from runbook.load.yamlsrc import DataPath, Document
from runbook.model import (
    Approval,
    Blackout,
    Channel,
    ComputedGroup,
    Defaults,
    DrillDef,
    EmbeddedDb,
    EnvRef,
    Gate,
    Inventory,
    JournalConfig,
    Level,
    Loc,
    Objectives,
    Playbook,
    Policy,
    Recipient,
    Scale,
    Schedule,
    Severity,
    SeverityPolicy,
    Step,
    Strategy,
    Target,
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


def _signers(inventory: Path, relative: str | None) -> Path | None:
    return None if relative is None else (inventory.parent / relative).resolve()


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


def _pg_bin(inventory: Path, value: str | None) -> Path | None:
    """A target's `pg_bin`, relative to the inventory's folder; `~` expanded."""
    if not value:
        return None
    return inventory.parent / Path(value).expanduser()


def _target_dsn(value: Any) -> str | EnvRef | EmbeddedDb:
    if isinstance(value, dict) and value.get("embedded") is True:
        return EmbeddedDb(str(value["dbname"]))
    dsn: str | EnvRef = env_or_value(value)
    return dsn


def build_inventory(path: Path, doc: Document) -> Inventory:
    data = doc.data
    targets = {
        name: Target(
            name=name,
            dsn=_target_dsn(t["dsn"]),
            loc=loc(doc, ("targets", name), key=True),
            password=env_or_value(t.get("password")),
            description=t.get("description", ""),
            vars={k: env_or_value(v) for k, v in t.get("vars", {}).items()},
            tags=frozenset(t.get("tags", ())),
            connect_timeout=seconds(t.get("connect_timeout")),
            read_only=t.get("read_only", False),
            golden_copy=t.get("golden_copy"),
            protected=t.get("protected", False),
            pg_bin=_pg_bin(path, t.get("pg_bin")),
        )
        for name, t in data["targets"].items()
    }
    groups = {
        name: tuple(g["targets"] if isinstance(g, dict) else g)
        for name, g in data.get("groups", {}).items()
        if not (isinstance(g, dict) and "targets_from" in g)
    }
    computed = {
        name: ComputedGroup(
            name=name,
            loc=loc(doc, ("groups", name), key=True),
            cluster=g["targets_from"].get("cluster"),
            databases=g["targets_from"].get("databases"),
            file=g["targets_from"].get("file"),
            description=g.get("description", ""),
        )
        for name, g in data.get("groups", {}).items()
        if isinstance(g, dict) and "targets_from" in g
    }
    j = data.get("journal", {})
    d = data.get("defaults", {})
    defaults = Defaults()
    return Inventory(
        path=path.resolve(),
        targets=targets,
        groups=groups,
        computed=computed,
        default_target=data.get("default_target"),
        journal=JournalConfig(
            backend=j.get("backend", "postgres" if "dsn" in j else "sqlite"),
            path=j.get("path", ".runbook/journal.sqlite"),
            dsn=env_or_value(j.get("dsn")),
            schema=j.get("schema", "runbook"),
            row_sample=j.get("row_sample", 20),
        ),
        defaults=Defaults(
            timeout=seconds(d.get("timeout")) or defaults.timeout,
            lock_timeout=seconds(d.get("lock_timeout")) or defaults.lock_timeout,
            connect_timeout=seconds(d.get("connect_timeout")) or defaults.connect_timeout,
            escalation=d.get("escalation"),
            forks=d.get("forks", defaults.forks),
            per_server=d.get("per_server"),
        ),
        scale=_scale(data.get("severities")),
        channels={
            name: Channel(
                name,
                c["type"],
                {k: env_or_value(v) for k, v in c.items() if k != "type"},
                loc(doc, ("channels", name), key=True),
            )
            for name, c in data.get("channels", {}).items()
        },
        policies={name: _policy(doc, name, p) for name, p in data.get("policies", {}).items()},
        scheduler_timezone=data.get("scheduler", {}).get("timezone"),
        scheduler_dispatch=data.get("scheduler", {}).get("dispatch", "process"),
        people={k: tuple(v) for k, v in data.get("people", {}).items()},
        allowed_signers=_signers(path, data.get("approvers", {}).get("allowed_signers")),
        doc=doc,
    )


def _scale(items: list[dict[str, Any]] | None) -> Scale:
    if not items:
        return Scale.default()
    top = len(items) - 1
    return Scale(
        tuple(
            Severity(
                name=item["name"],
                rank=rank,
                aliases=tuple(item.get("aliases", ())),
                # Without a mapping: lowest OK, highest CRITICAL, between WARNING.
                nagios=item.get("nagios", 0 if rank == 0 else 2 if rank == top else 1),
                color=item.get("color"),
            )
            for rank, item in enumerate(items)
        )
    )


def _policy(doc: Document, name: str, data: dict[str, Any]) -> Policy:
    severities = {}
    for sev, sp in data["severities"].items():
        levels = tuple(
            Level(
                after=seconds(level["after"]) or 0.0,
                notify=tuple(
                    Recipient(r)
                    if isinstance(r, str)
                    else Recipient(r["channel"], tuple(r.get("to", ())))
                    for r in level["notify"]
                ),
                name=level.get("name"),
            )
            for level in sp["levels"]
        )
        repeat = sp.get("repeat") or {}
        severities[sev] = SeverityPolicy(
            levels=levels,
            acknowledge_within=seconds(sp.get("acknowledge_within")),
            mitigate_within=seconds(sp.get("mitigate_within")),
            repeat_every=seconds(repeat.get("every")),
            repeat_times=repeat.get("times"),
        )
    return Policy(
        name=name,
        severities=severities,
        loc=loc(doc, ("policies", name), key=True),
        threshold=data.get("threshold", "WARNING"),
        description=data.get("description", ""),
        flap_window=seconds(data.get("flap_window")),
        drill_route=tuple(data.get("drill_route", ())),
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


def load_inventory(path: Path, cache: Path | None = None) -> tuple[Inventory | None, list[Problem]]:
    loaded = read(path, schema.INVENTORY, cache)
    if loaded.problems or loaded.doc is None:
        return None, loaded.problems
    problems = _journal_problems(loaded.doc)
    if problems:
        return None, problems
    return build_inventory(path, loaded.doc), []


def _journal_problems(doc: Document) -> list[Problem]:
    """Journal settings that would be ignored are refused: a PostgreSQL
    journal needs its dsn; a SQLite one has no dsn or schema."""
    journal = doc.data.get("journal") if isinstance(doc.data, dict) else None
    if not isinstance(journal, dict):
        return []
    backend = journal.get("backend", "postgresql" if "dsn" in journal else "sqlite")
    wrong: list[tuple[DataPath, str]] = []
    if backend in ("postgres", "postgresql") and "dsn" not in journal:
        wrong.append((("journal",), f"journal: backend {backend} needs a dsn (or dsn: embedded)"))
    if backend in ("postgres", "postgresql") and "path" in journal:
        wrong.append(
            (("journal", "path"), "path is the SQLite journal's file; backend is PostgreSQL")
        )
    if backend == "sqlite":
        for name in ("dsn", "schema"):
            if name in journal:
                wrong.append(((("journal", name)), f"{name} is for backend postgresql, not sqlite"))
    if not wrong:
        return []
    from runbook.load.schemaerrors import problem  # jsonschema: only when there is a problem

    return [problem(doc, where, message, "journal", key=True) for where, message in wrong]


def require_inventory(path: Path) -> Inventory:
    inventory, problems = load_inventory(path, cache_dir(path.resolve().parent))
    if inventory is None:
        raise InvalidFiles(problems)
    return inventory
