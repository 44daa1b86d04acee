"""What a step's templates see: the run's values, registered results, its own vars.

A step's scope is the run's base values (builtins, playbook and target vars),
then the values of the include blocks it is in, then every result registered so
far, then the step's own `vars`, then `-e` values over all. It is a fresh dict
per step (a step adds `result` to it, and its vars must not leak), and a run
of a thousand checks registers a thousand results: merging them anew each step
made a step's cost grow with the run. The registered results are therefore
kept merged over the base as they are registered, and a step outside any
include starts from one C-level copy of that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runbook import variables
from runbook.plan import PlannedStep


class Registered(dict[str, Any]):
    """Registered results (and `set` values), also written into `merged`: the
    base values with every registered result over them."""

    def __init__(self, base: Mapping[str, Any]) -> None:
        super().__init__()
        self.merged: dict[str, Any] = dict(base)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.merged[key] = value

    def update(self, values: Mapping[str, Any], /) -> None:  # type: ignore[override]
        # Only a mapping: every way in goes through __setitem__, so `merged` follows.
        for key, value in values.items():
            self[key] = value


def step_scope(
    ps: PlannedStep,
    base: Mapping[str, Any],
    registered: Registered,
    layers: tuple[dict[str, Any], ...],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    if layers:
        scope = dict(base)
        for layer in layers:
            scope.update(layer)
        scope.update(registered)
    else:
        scope = registered.merged.copy()
    if ps.step.vars:
        scope.update({k: variables.render_native(v, scope) for k, v in ps.step.vars.items()})
    if extra:
        scope.update(extra)
    return scope
