"""A render is bounded: work and memory past the budget end in a template error.

These shapes pass validation (their sizes come from values), so the render
itself must refuse them, promptly and without a traceback.
"""

from __future__ import annotations

from typing import Any

import pytest

from runbook.errors import TemplateError
from runbook.sqltemplate import template, tmplbudget

BIG = {"n": 10**15, "s": "x" * 10_000, "r": list(range(99_999)), "k": 40, "w": 10**9}


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}",
        "{% for i in r %}{% for j in r %}{{ j }}{% endfor %}{% endfor %}",
        "{% for i in r %}{{ s }}{% endfor %}",
        "{{ s * n }}",
        "{{ 10 ** n }}",
        "{{ [s] * n }}",
        "{{ s | replace('', s) }}",
        "{{ r | join(s) }}",
        "{{ s | center(w) }}",
        "{{ s.center(w) }}",
        "{{ s.ljust(w) }}",
        "{{ s.replace('x', s) }}",
        "{{ s | indent(w) }}",
        "{{ s | wordwrap(1, wrapstring=s) }}",
        "{{ r | slice(w) | list }}",
        "{{ r | batch(w, 0) | list }}",
        "{{ r | tojson(indent=w) }}",
        "{{ r | sum(start=[]) }}",
        "{{ '%0*d' % (w, 1) }}",
        "{{ ('%0' ~ w ~ 'd') % 1 }}",
        "{{ ('%' ~ w ~ 's') | format(1) }}",
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(k) }}",
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
        "{% set a = s * 1000 %}{% set b = a ~ a %}{% set c = b ~ b %}{% set d = c ~ c %}{{ d ~ d }}",
    ],
)
def test_unbounded_work_is_refused_when_rendering(source: str) -> None:
    with pytest.raises(TemplateError):
        template.render_text(source, BIG)


@pytest.mark.parametrize(
    "expression",
    ["s * n", "10 ** n", "r | join(s) | length", "s.zfill(w)", "(s ~ s) * n"],
)
def test_unbounded_expressions_are_refused(expression: str) -> None:
    with pytest.raises(TemplateError):
        template.evaluate(expression, BIG)


def test_sql_renders_are_bounded_too() -> None:
    with pytest.raises(TemplateError, match="loop iterations"):
        template.render_sql(
            "SELECT 1 {% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", BIG
        )
    with pytest.raises(TemplateError):
        template.render_sql("SELECT {{ s * n }}", BIG)


def test_ordinary_work_is_untouched() -> None:
    context: dict[str, Any] = {"rows": [{"a": i, "b": "x" * 10} for i in range(2000)]}
    text = template.render_text(
        "{% for r in rows %}{{ r.a }}:{{ r.b | upper }}{% if not loop.last %}, {% endif %}{% endfor %}",
        context,
    )
    assert text.count(",") == 1999
    assert template.evaluate("rows | map(attribute='a') | sum", context) == sum(range(2000))
    assert template.render_text("{{ '%.2f' | format(1.5) }} {{ '%5s' % 'a' }}", {}) == "1.50     a"
    assert template.render_text("{% filter upper %}text may{% endfilter %}", {}) == "TEXT MAY"


def test_a_render_without_its_budget_is_refused() -> None:
    with pytest.raises(TemplateError, match="budget"):
        template.TEXT_ENV.from_string("{{ range(3) | list }}").render()


def test_the_sandbox_refuses_unsafe_names_from_values() -> None:
    # A name that comes from a value cannot be checked before the run; the
    # sandbox refuses it then.
    with pytest.raises(TemplateError):
        template.evaluate("x | attr(k)", {"x": "", "k": "__class__"})
    with pytest.raises(TemplateError):
        template.evaluate("(x[k])[m]", {"x": "", "k": "__class__", "m": "__mro__"})


def test_weight_counts_shared_parts_and_stops_early() -> None:
    inner = ["x" * 100] * 100
    assert tmplbudget.weight(inner) == 1 + 100 * 100
    huge = [inner] * 10**6
    assert tmplbudget.weight(huge) == tmplbudget.VALUE_LIMIT + 1


def test_a_measured_iterator_is_still_used_whole() -> None:
    assert template.render_text("{{ '-'.join(range(4) | map('string')) }}", {}) == "0-1-2-3"
    assert template.render_text("{{ range(4) | map('string') | join('+') }}", {}) == "0+1+2+3"


def test_values_that_share_their_parts_are_measured_when_kept() -> None:
    doubling = "".join(f"{{% set a{i + 1} = [a{i}, a{i}] %}}" for i in range(40))
    with pytest.raises(TemplateError, match="value"):
        template.render_text("{% set a0 = 'x' %}" + doubling + "{{ a40 | string | length }}", {})
    macro = (
        "{% macro f(x, n) %}{% if n %}{{ f([x, x], n - 1) }}{% else %}{{ x | string | length }}"
        "{% endif %}{% endmacro %}{{ f('x', 40) }}"
    )
    with pytest.raises(TemplateError, match="value"):
        template.render_text(macro, {})
