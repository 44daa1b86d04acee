"""What a step's templates see: the run's values, registered results, its own vars.

A step's scope is the run's base values (builtins, playbook and target vars),
then the values of the include blocks it is in, then every result registered so
far, then the step's own `vars`, then `-e` values over all. What a step puts in
it (its vars, `result`) must not leak to the next step.

A run of a thousand checks registers a thousand results, so building each
step's scope anew (even as one C-level copy of the merged dict) made a step's
cost grow with the run: about 35,000 instructions a step by the thousandth.
The registered results are therefore kept merged over the base as they are
registered (`Registered.merged`), and an action step outside any include
borrows that very dict: its vars, the `-e` values and `result` are put in with
a note of what they hid, and taken out again when the step ends, so a
step costs the same whatever came before it. Blocks (include, transaction) and
steps inside includes get a copy of their own, as they are few and nest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runbook import variables
from runbook.plan import PlannedStep

_ABSENT = object()  # "no such key before the step"
_BLOCKS = frozenset({"include", "transaction"})


class Registered(dict[str, Any]):
    """Registered results (and `set` values), also written into `merged`: the
    base values with every registered result over them. `merged` is lent to one
    action step at a time as its scope (`lend`, `put`, `give_back`)."""

    def __init__(self, base: Mapping[str, Any]) -> None:
        super().__init__()
        self.merged: dict[str, Any] = dict(base)
        # While `merged` is lent: what the step's own values hid (key, old value),
        # and the keys registered meanwhile, which giving back leaves as they are.
        self._saved: list[tuple[str, Any]] | None = None
        self._touched: set[str] = set()

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.merged[key] = value
        if self._saved is not None:
            self._touched.add(key)

    def update(self, values: Mapping[str, Any], /) -> None:  # type: ignore[override]
        # Only a mapping: every way in goes through __setitem__, so `merged` follows.
        for key, value in values.items():
            self[key] = value

    def lend(self) -> dict[str, Any]:
        assert self._saved is None, "one step at a time borrows the run's scope"
        merged = self.merged
        # `result` is put in the scope by the engine once the step has one.
        self._saved = [("result", merged.get("result", _ABSENT))]
        return merged

    def put(self, values: Mapping[str, Any]) -> None:
        """Values of the step alone, over the run's, until `give_back`."""
        merged, saved = self.merged, self._saved
        assert saved is not None
        for key, value in values.items():
            saved.append((key, merged.get(key, _ABSENT)))
            merged[key] = value

    def give_back(self) -> None:
        """The run's scope as it was, plus what the step registered."""
        merged, saved, touched = self.merged, self._saved, self._touched
        self._saved = None
        for key, old in reversed(saved or ()):
            if key in touched:
                continue  # registered by the step: that is what later steps see
            if old is _ABSENT:
                merged.pop(key, None)
            else:
                merged[key] = old
        touched.clear()


def step_scope(
    ps: PlannedStep,
    base: Mapping[str, Any],
    registered: Registered,
    layers: tuple[dict[str, Any], ...],
    extra: Mapping[str, Any],
) -> tuple[dict[str, Any], bool]:
    """The step's scope, and whether it is the run's, lent: then the caller gives
    it back (`registered.give_back()`) when the step ends. If this raises,
    nothing is left to give back."""
    step = ps.step
    if layers or step.kind in _BLOCKS:
        scope = dict(base)
        for layer in layers:
            scope.update(layer)
        scope.update(registered)
        if step.vars:
            scope.update({k: variables.render_native(v, scope) for k, v in step.vars.items()})
        if extra:
            scope.update(extra)
        return scope, False
    scope = registered.lend()
    try:
        if step.vars:
            # Every var is rendered against the scope before any is put in.
            registered.put({k: variables.render_native(v, scope) for k, v in step.vars.items()})
        if extra:
            registered.put(extra)
    except BaseException:
        registered.give_back()
        raise
    return scope, True
