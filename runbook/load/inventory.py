"""The inventory file → model: targets, groups, the journal's settings,
defaults, severities, channels and escalation policies (the playbook's
building is runbook.load.loader's; both read and validate through it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runbook.errors import InvalidFiles, Problem
from runbook.load import schema
from runbook.load.loader import cache_dir, env_or_value, loc, read
from runbook.load.yamlsrc import DataPath, Document
from runbook.model import (
    Channel,
    ComputedGroup,
    Defaults,
    EmbeddedDb,
    EnvRef,
    Inventory,
    JournalConfig,
    Level,
    Policy,
    Recipient,
    Scale,
    Severity,
    SeverityPolicy,
    Target,
    seconds,
)


def _signers(inventory: Path, relative: str | None) -> Path | None:
    return None if relative is None else (inventory.parent / relative).resolve()


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
