"""The collector around a run: off while loading, frozen out of the way while steps run."""

from __future__ import annotations

import gc

import pytest

from runbook.cli import collector


def test_off_while_loading_then_on_with_what_loading_built_frozen() -> None:
    before = gc.get_threshold()
    assert gc.isenabled()
    with collector.Quiet() as quiet:
        assert not gc.isenabled()
        loaded = [{"step": i} for i in range(1000)]
        quiet.steps_begin()
        assert gc.isenabled()
        assert gc.get_threshold()[0] == collector.YOUNG
        assert gc.get_freeze_count() >= len(loaded)
    assert gc.isenabled()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_restored_when_loading_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(ValueError), collector.Quiet():
        raise ValueError("a playbook that does not load")
    assert gc.isenabled()
    assert gc.get_threshold() == before


def test_cycles_made_while_steps_run_are_still_freed() -> None:
    class Node:
        pass

    with collector.Quiet() as quiet:
        quiet.steps_begin()
        for _ in range(3 * collector.YOUNG):
            a, b = Node(), Node()
            a.other, b.other = b, a  # type: ignore[attr-defined]
        alive = sum(isinstance(o, Node) for o in gc.get_objects())
    assert alive < 3 * collector.YOUNG  # collected as the run went, not only at its end


def test_a_run_collects_while_its_steps_run_even_when_the_command_paused_it() -> None:
    with collector.paused():
        assert not gc.isenabled()
        with collector.Quiet() as quiet:
            assert not gc.isenabled()
            quiet.steps_begin()
            assert gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
