"""Playbook + inventory + selection → what will run, in order. Pure: no I/O.

A plan is a tree: `include` and `transaction` steps carry their children; every
step, child or not, has a pre-order index that names it in the journal and in
`runbook resume`. Rollback steps are planned under the step they undo.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runbook.errors import UsageError
from runbook.model import Inventory, Playbook, Step, Target

BEFORE_START = "before the step --start-at-step begins at"


@dataclass(frozen=True)
class Selection:
    """What the command line chose."""

    targets: tuple[str, ...] = ()
    tags: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset()
    extra_vars: Mapping[str, Any] = field(default_factory=dict)
    start_at: int | None = None  # --start-at-step: the top-level position to begin at (1-based)


@dataclass(frozen=True)
class PlannedStep:
    index: int  # pre-order position; rollback steps have negative ones
    number: str  # shown to people: "3", "3.2", "3.r1"
    step: Step
    playbook: Playbook
    selected: bool = True
    children: tuple[PlannedStep, ...] = ()
    rollback: tuple[PlannedStep, ...] = ()
    skip_reason: str = "not selected by --tags / --skip-tags"  # when not selected

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def kind(self) -> str:
        return self.step.kind

    def walk(self) -> Iterator[PlannedStep]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class Plan:
    playbook: Playbook
    target: Target
    steps: tuple[PlannedStep, ...]
    selection: Selection

    def walk(self) -> Iterator[PlannedStep]:
        for step in self.steps:
            yield from step.walk()

    def by_index(self) -> dict[int, PlannedStep]:
        """Every planned step, rollback steps included, by index."""
        out: dict[int, PlannedStep] = {}
        for ps in self.walk():
            out[ps.index] = ps
            for undo in ps.rollback:
                for node in undo.walk():
                    out[node.index] = node
        return out

    @property
    def size(self) -> int:
        return sum(1 for _ in self.walk())


def target_sources(
    playbook: Playbook, inventory: Inventory, chosen: tuple[str, ...]
) -> list[tuple[str, list[Target]]]:
    """Each name the targets come from (a target or a group: -t, else the
    playbook's, else the inventory default) with the targets it stands for."""
    return [
        (name, [inventory.targets[t] for t in inventory.expand(name) or ()])
        for name in _names(playbook, inventory, chosen)
    ]


def _names(playbook: Playbook, inventory: Inventory, chosen: tuple[str, ...]) -> tuple[str, ...]:
    names = (
        chosen
        or playbook.targets
        or ((inventory.default_target,) if inventory.default_target else ())
    )
    if not names and len(inventory.targets) == 1:
        names = tuple(inventory.targets)  # the only target there is
    return tuple(names)


def resolve_targets(
    playbook: Playbook, inventory: Inventory, chosen: tuple[str, ...]
) -> list[Target]:
    """Targets in run order: -t names, else the playbook's, else the inventory default."""
    names = _names(playbook, inventory, chosen)
    if not names:
        raise UsageError(
            "no target: name one with -t, in the playbook (targets:), or as default_target in the inventory"
        )
    out: dict[str, Target] = {}  # by name: each once, in order
    for name in names:
        expanded = inventory.expand(name)
        if expanded is None:
            known = ", ".join(sorted([*inventory.targets, *inventory.groups]))
            raise UsageError(f"unknown target or group {name!r}; the inventory has {known}")
        for t in expanded:
            out.setdefault(t, inventory.targets[t])
    return list(out.values())


def _selected(step: Step, inherited: frozenset[str], selection: Selection) -> bool:
    tags = step.tags | inherited
    if tags & selection.skip_tags:
        return False
    if not selection.tags:
        return True
    return bool(tags & (selection.tags | {"always"}))


class _Numbering:
    def __init__(self) -> None:
        self.next = 0
        self.undo = 0

    def take(self) -> int:
        self.next += 1
        return self.next - 1

    def take_undo(self) -> int:
        self.undo += 1
        return -self.undo


def _plan_steps(
    steps: tuple[Step, ...],
    playbook: Playbook,
    includes: Mapping[Path, Playbook],
    selection: Selection,
    counter: _Numbering,
    prefix: str,
    inherited: frozenset[str],
) -> tuple[PlannedStep, ...]:
    planned = []
    for position, step in enumerate(steps, start=1):
        index = counter.take()
        number = f"{prefix}{position}"
        tags = inherited | step.tags
        children: tuple[PlannedStep, ...] = ()
        selected = _selected(step, inherited, selection)
        if step.kind == "transaction":
            children = _plan_steps(
                step.children, playbook, includes, selection, counter, f"{number}.", tags
            )
            # A transaction is all or nothing: a selected child selects the whole block.
            selected = selected or any(c.selected for c in children)
            children = tuple(_select_all(c) for c in children) if selected else children
        elif step.kind == "include":
            included = includes[(playbook.path.parent / step.body).resolve()]
            children = _plan_steps(
                included.steps, included, includes, selection, counter, f"{number}.", tags
            )
            selected = selected or any(c.selected for c in children)
        rollback = _plan_rollback(step, playbook, counter, number)
        node = PlannedStep(index, number, step, playbook, selected, children, rollback)
        if not prefix and selection.start_at is not None and position < selection.start_at:
            node = _before_start(node)  # --start-at-step: not run, nor any part of it
        planned.append(node)
    return tuple(planned)


def _before_start(ps: PlannedStep) -> PlannedStep:
    children = tuple(_before_start(c) for c in ps.children)
    return replace(ps, selected=False, children=children, skip_reason=BEFORE_START)


def _plan_rollback(
    step: Step, playbook: Playbook, counter: _Numbering, number: str
) -> tuple[PlannedStep, ...]:
    """The steps that undo `step`, numbered 3.r1, 3.r2 … with negative indexes."""
    out = []
    for i, undo in enumerate(step.rollback, start=1):
        own = f"{number}.r{i}"
        index = counter.take_undo()
        children = tuple(
            PlannedStep(counter.take_undo(), f"{own}.{j}", child, playbook)
            for j, child in enumerate(undo.children, start=1)
        )
        out.append(PlannedStep(index, own, undo, playbook, True, children))
    return tuple(out)


def _select_all(step: PlannedStep) -> PlannedStep:
    return PlannedStep(
        step.index,
        step.number,
        step.step,
        step.playbook,
        True,
        tuple(_select_all(c) for c in step.children),
        step.rollback,
    )


def build(
    playbook: Playbook,
    target: Target,
    includes: Mapping[Path, Playbook],
    selection: Selection,
) -> Plan:
    steps = _plan_steps(
        playbook.steps, playbook, includes, selection, _Numbering(), "", frozenset()
    )
    return Plan(playbook, target, steps, selection)


def include_paths(playbook: Playbook, includes: Mapping[Path, Playbook]) -> Iterator[Path]:
    """Every playbook file a plan of `playbook` reads (for sha256 checks on resume)."""
    for step in playbook.walk():
        if step.kind == "include":
            path = (playbook.path.parent / step.body).resolve()
            yield path
            if path in includes:
                yield from include_paths(includes[path], includes)
