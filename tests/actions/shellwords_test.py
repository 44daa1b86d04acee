"""The shell lexer against /bin/sh itself: whatever command text an author
writes, a value the lexer lets through never runs as code, never globs and
never splits; commands made of random shell fragments try it."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runbook.actions import shellwords

REFERENCE = '"${RUNBOOK_V0}"'  # what template.render_shell puts where a value stands
FRAGMENTS = [
    "printf '[%s]' ", " ", "'", '"', "$(", ")", "`", "\\", "#", ";", "${x:-", "}", "\n",
    REFERENCE, REFERENCE, REFERENCE, REFERENCE, REFERENCE, "printf '[%s]' ", "echo ",
    " > out ", "\n", "; ", "$", "(", "<<E\n", "E\n", "X=", "x", "eval ", "&&",
    "|", " > out", "$((", "))", "case ", " in ", "*) ", ";; esac", "[[ ", " ]]", "$'",
    "\\'", '\\"', "{", "sh -c ", "env ", "-", "a b", "*", "$$", "$\"",
]  # fmt: skip
# Its first word is in no fragment: "[v0word]" in the output can only be the
# value split (an author's own `x` after a redirection is printf's argument).
HOSTILE = "v0word $(touch P1) `touch P2` ; touch P3 ' ; touch P4 ; ' \" ; touch P5 ; \" *"


# /bin/sh runs the steps; bash is what /bin/sh is on other systems.
SHELLS = [s for s in ("/bin/sh", shutil.which("bash")) if s]


@pytest.mark.parametrize("shell", SHELLS)
@settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=12))
@example(["printf '[%s]' ", REFERENCE, " > out", " ", "x"])  # the author's x, not the value's
def test_no_value_the_lexer_lets_through_runs_as_code(
    tmp_path: Path, shell: str, pieces: list[str]
) -> None:
    line, refused = shellwords.requote("".join(pieces))
    if refused or "RUNBOOK_V0" not in line:
        return
    work = tmp_path / "w"
    work.mkdir(exist_ok=True)
    for old in work.iterdir():
        old.unlink()
    (work / "other").write_text("")
    env = {"PATH": os.environ["PATH"], "RUNBOOK_V0": HOSTILE}
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(
            [shell, "-c", line],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
    made = sorted(p.name for p in work.iterdir() if p.name.startswith("P"))
    assert made == [], (line, made)
    out = work / "out"
    if out.exists() and "[" in out.read_text(errors="replace"):
        # printf '[%s]' got the value whole or not at all, never in pieces.
        text = out.read_text(errors="replace")
        assert "[v0word]" not in text, (line, text)
        # "[other]": the value's `*` globbed. Unless the author's own command
        # text has a `*`, which may glob to the file `other` by itself.
        authors_glob = any("*" in piece for piece in pieces if piece != REFERENCE)
        assert authors_glob or "[other]" not in text, (line, text)
