"""The journal's events as the backends write them: rows in parts."""

from __future__ import annotations

from runbook.journal.events import in_parts


def test_rows_go_in_parts_of_a_few_sizes_each_a_power_of_two_and_none_lost() -> None:
    sizes: set[int] = set()
    for count in range(0, 300):
        rows = list(range(count))
        parts = [list(part) for part in in_parts(rows, 64)]
        assert [row for part in parts for row in part] == rows  # in order, none twice
        for part in parts:
            assert 0 < len(part) <= 64
            assert len(part) & (len(part) - 1) == 0  # 1, 2, 4 … 64
            sizes.add(len(part))
        # The fewest parts: each as large as what is left allows.
        assert len(parts) == count // 64 + bin(count % 64).count("1")
    assert sizes == {1, 2, 4, 8, 16, 32, 64}  # seven statement texts serve every batch


def test_a_size_not_a_power_of_two_caps_the_parts_below_it() -> None:
    assert [len(part) for part in in_parts(list(range(250)), 100)] == [64, 64, 64, 32, 16, 8, 2]
