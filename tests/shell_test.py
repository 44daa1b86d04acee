"""`shell`: a templated value reaches the command as exactly one word, byte for
byte, whatever the quoting around it; or the step is refused before anything runs."""

from __future__ import annotations

import http.server
import json
import re
import sys

import pytest

from runbook.actions import shellwords

from .conftest import Project
from .loopback import http_server

HOSTILE = [
    " *",
    "*",
    "?",
    "[a]",
    "a b",
    "  two  spaces  ",
    "'",
    '"',
    "a'b\"c",
    "$(touch pwned)",
    "`touch pwned`",
    "; touch pwned",
    "&& touch pwned",
    "|| touch pwned",
    "> pwned",
    "a\nb",
    "a\ttab",
    "-rf",
    "$HOME",
    "${IFS}",
    "\\",
    "\\n",
    "~",
    "{a,b}",
    "é ☃",
    "",
    "#not a comment",
    '"; touch pwned; "',
    "'; touch pwned; '",
]

# Every place a value may stand, each writing what its words were, bracketed:
# a value split in two, globbed or run would show.
SHAPES = {
    "bare": "printf '[%s]' {{ f }} > bare.out",
    "double quotes": "printf '[%s]' \"{{ f }}\" > dq.out",
    "inside a word": "printf '[%s]' pre-{{ f }}-post > word.out",
    "inside quoted text": "printf '[%s]' \"pre {{ f }} post\" > dqword.out",
    "the reported one": 'cd work && printf "[%s]" "old-{{ f }}" > ../report.out',
    "assignment": "X={{ f }}; printf '[%s]' \"$X\" > assign.out",
    "for list": "for x in {{ f }}; do printf '[%s]' \"$x\"; done > for.out",
    "case": "case {{ f }} in *) printf '[%s]' {{ f }};; esac > case.out",
    "redirect target": "printf '[%s]' x > out-{{ f }}.target",
    "twice": "printf '[%s]' {{ f }} \"{{ f }}\" > twice.out",
    "a comment": "printf '[%s]' ok > comment.out # {{ f }}",
    "a variable for a shell": 'X={{ f }} sh -c \'printf "[%s]" "$X"\' > envsh.out',
    "a shell reading a file": "sh -c 'cat' < pre-{{ f }}.in > shin.out",
    "after the pid": 'X=$$"{{ f }}"; printf \'[%s]\' "${X#$$}" > pid.out',
    "in a pipeline": "printf '%s' {{ f }} | od -An -c > /dev/null && printf '[%s]' {{ f }} > pipe.out",
}
EXPECTED = {
    "bare.out": "[{v}]",
    "dq.out": "[{v}]",
    "word.out": "[pre-{v}-post]",
    "dqword.out": "[pre {v} post]",
    "report.out": "[old-{v}]",
    "assign.out": "[{v}]",
    "for.out": "[{v}]",
    "case.out": "[{v}]",
    "twice.out": "[{v}][{v}]",
    "comment.out": "[ok]",
    "pipe.out": "[{v}]",
    "pid.out": "[{v}]",
    "envsh.out": "[{v}]",
    "shin.out": "[{v}]",
}


def _book(project: Project) -> None:
    steps = "".join(
        f"  - name: {name}\n    shell: {{command: {json.dumps(command)}}}\n"
        for name, command in SHAPES.items()
    )
    project.playbook(f"name: s\nkind: change\nvars: {{f: x}}\nsteps:\n{steps}")


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_a_hostile_value_arrives_as_one_word_byte_for_byte(project: Project, value: str) -> None:
    _book(project)
    work = project.root / "work"
    work.mkdir()
    for name in ("a", "b", "old- *"):
        (work / name).write_text(name)
    (project.root / f"pre-{value}.in").write_text(f"[{value}]")
    assert project.run("validate").exit_code == 0
    result = project.run("run", "playbooks/p.yaml", "-e", json.dumps({"f": value}))
    assert result.exit_code == 0, result.output
    for name, template in EXPECTED.items():
        got = (project.root / name).read_bytes().decode()
        assert got == template.format(v=value), name
    target = [p.name for p in project.root.glob("out-*.target")]
    assert target == [f"out-{value}.target"]
    assert not (project.root / "pwned").exists()
    assert sorted(p.name for p in work.iterdir()) == ["a", "b", "old- *"]


def test_the_reported_rm_deletes_only_its_file(project: Project) -> None:
    project.playbook(
        """name: s
kind: change
vars: {f: x}
steps:
  - name: Remove the old file
    shell: {command: 'cd work && rm -f "old-{{ f }}"'}
"""
    )
    work = project.root / "work"
    work.mkdir()
    for name in ("a", "b", "old- *"):
        (work / name).write_text(name)
    result = project.run("run", "playbooks/p.yaml", "-e", "f= *")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in work.iterdir()) == ["a", "b"]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_argv_items_are_one_element_each(project: Project, value: str) -> None:
    write = "import sys; open('argv.out', 'w').write(repr(sys.argv[1:]))"
    project.playbook(
        f"name: s\nkind: change\nvars: {{f: x}}\nsteps:\n"
        f"  - name: Args\n    shell: [{json.dumps(sys.executable)}, -c, {json.dumps(write)}, "
        '"{{ f }}", "pre {{ f }}"]\n'
    )
    result = project.run("run", "playbooks/p.yaml", "-e", json.dumps({"f": value}))
    assert result.exit_code == 0, result.output
    assert (project.root / "argv.out").read_text() == repr([value, f"pre {value}"])


REFUSED = {
    "single quotes": ("echo '{{ f }}'", "inside single quotes"),
    "single quotes inside double": ("echo \"it's\" 'a {{ f }}'", "inside single quotes"),
    "command substitution": ("echo $(cat {{ f }})", "command substitution"),
    "quoted command substitution": ('echo "$(cat "{{ f }}")"', "command substitution"),
    "backquotes": ("echo `date` {{ f }}", "`…` command substitution"),
    "backquotes around": ("echo `echo {{ f }}`", "`…` command substitution"),
    "parameter expansion": ("echo ${x:-{{ f }}}", "${ … }"),
    "arithmetic": ("echo $(( {{ f }} + 1 ))", "arithmetic"),
    "arithmetic command": ("(( {{ f }} ))", "arithmetic"),
    "double brackets": ("[[ 1 -eq {{ f }} ]] && echo yes", "[[ … ]]"),
    "here-document": ("cat <<EOF\n{{ f }}\nEOF", "here-document"),
    "after a here-document": ("cat <<EOF\nx\nEOF\necho {{ f }}", "here-document"),
    "eval": ("eval echo {{ f }}", "`eval`"),
    "sh -c": ('sh -c "echo {{ f }}"', "`sh`"),
    "bash -c by path": ('/bin/bash -c "echo {{ f }}"', "`bash`"),
    "quoted shell name": ('"ba"sh -c "echo {{ f }}"', "`bash`"),
    "behind a wrapper": ('timeout 5 sudo -u x sh -c "ls {{ f }}"', "`sh`"),
    "find -exec sh": ("find . -exec sh -c 'echo x' {{ f }} \\;", "`sh`"),
    "ssh": ("ssh host ls {{ f }}", "`ssh`"),
    "awk program": ('awk "BEGIN { print \\"{{ f }}\\" }"', "`awk`"),
    "python -c": ('python3 -c "print({{ f }})"', "code as an argument"),
    "psql -c": ('psql -c "select {{ f }}"', "code as an argument"),
    "psql flags clustered": ("psql -X -qc {{ f }}", "code as an argument"),
    "psql --command=": ("psql -X --command={{ f }}", "code as an argument"),
    "python -Ic": ("python3 -Ic {{ f }}", "code as an argument"),
    "node -p": ("node -p {{ f }}", "code as an argument"),
    "sqlite3 takes SQL as an argument": ("sqlite3 :memory: {{ f }}", "`sqlite3`"),
    "tar runs a checkpoint action": (
        "tar -cf /dev/null --checkpoint=1 --checkpoint-action=exec={{ f }} x",
        "runs a command or code",
    ),
    "find -exec": ("find . -exec {{ f }} \\;", "runs a command or code"),
    "git -c": ("git -c core.pager={{ f }} log", "runs a command or code"),
    "piped into psql": ("echo {{ f }} | psql -X", "piped into `psql`"),
    "piped into a shell further on": ("echo {{ f }} | grep x | sh", "piped into `sh`"),
    "command name": ("{{ f }} --version", "name the command"),
    "command name after and": ("true && {{ f }}", "name the command"),
    "command name in quotes": ('"{{ f }}" x', "name the command"),
    "command from a variable": ("$CMD {{ f }}", "not written out"),
    "command behind exec": ("exec {{ f }}", "after `exec`"),
    "command behind env": ("env X=1 {{ f }}", "after `env`"),
    "command behind timeout": ("timeout -s KILL 5 {{ f }}", "after `timeout`"),
    "source": (". {{ f }}", "`.` runs text as code"),
    "command eval": ("command eval {{ f }}", "`eval`"),
    "after a backslash": ("echo \\{{ f }}", "backslash"),
    "after a backslash in quotes": ('echo "\\{{ f }}"', "backslash"),
    "after a dollar": ("echo ${{ f }}", "right after a $"),
    "locale string": ('echo $"{{ f }}"', '$"…"'),
    "ansi-c string with escapes": ("echo $'\\'' {{ f }}", "$'…'"),
    "filter block": ("{% filter lower %}echo {{ f }}{% endfilter %}", "{% filter %}"),
    "set block": ("{% set x %}echo {{ f }}{% endset %}{{ x }}", "{% set %} block"),
    "macro": ("{% macro m() %}rm {{ f }}{% endmacro %}{{ m() }}", "{% macro %}"),
    "if block opening a quote": ('echo {% if f %}"{% endif %}{{ f }}"', "{% endif %}"),
    "for block opening a quote": ("echo {% for x in [1] %}'{% endfor %} {{ f }}", "{% endfor %}"),
    "if block deciding the command": ("{% if f %}echo {% endif %}{{ f }}", "{% endif %}"),
    "else branch naming the command": (
        "{% if f %}echo x{% else %}{% endif %}; {{ f }}",
        "name the command",
    ),
    "raw opening a quote": ("echo {% raw %}'{% endraw %}{{ f }}'", "single quotes"),
}


@pytest.mark.parametrize("shape", list(REFUSED))
def test_shapes_that_cannot_keep_a_value_one_word_are_refused_before_anything_runs(
    project: Project, shape: str
) -> None:
    command, why = REFUSED[shape]
    project.playbook(
        "name: s\nkind: change\nvars: {f: x}\nsteps:\n"
        "  - name: First\n    shell: {command: touch ran}\n"
        f"  - name: Hostile\n    shell:\n      command: {json.dumps(command)}\n"
    )
    result = project.run("validate")
    assert result.exit_code == 2, (shape, result.output)
    assert why in result.stdout, (shape, result.output)
    # file:line:col, on the command (line 9) or a line of it further down
    where = re.search(
        r"playbooks/p\.yaml:(\d+):(\d+): \$\.steps\[1\]\.shell\.command: ", result.stdout
    )
    assert where and int(where.group(1)) >= 9 and int(where.group(2)) > 1, result.stdout
    run = project.run("run", "playbooks/p.yaml", "-e", "f=x")
    assert run.exit_code == 2, run.output
    assert not (project.root / "ran").exists()


def test_argv_into_a_shell_is_refused(project: Project) -> None:
    project.playbook(
        'name: s\nkind: change\nvars: {f: x}\nsteps:\n  - name: S\n    shell: [sh, -c, "rm {{ f }}"]\n'
    )
    result = project.run("validate")
    assert result.exit_code == 2
    assert "playbooks/p.yaml:6:25: $.steps[0].shell[2]: a value here: `sh`" in result.stdout


@pytest.mark.parametrize(
    "shell",
    [
        '{argv: [psql, -X, -c, "{{ f }}"]}',
        '{argv: [psql, -X, "--command={{ f }}"]}',
        '{argv: [find, ., -exec, "{{ f }}", ";"]}',
        '{argv: ["{{ f }}", --version]}',
        '{argv: [psql, -X], stdin: "{{ f }}"}',
        '{command: "psql -X", stdin: "{{ f }}"}',
        '{argv: [python3], stdin: "print({{ f }})"}',
    ],
)
def test_argv_and_stdin_follow_the_same_rules(project: Project, shell: str) -> None:
    project.playbook(
        "name: s\nkind: change\nvars: {f: x}\nsteps:\n"
        "  - name: First\n    shell: {command: touch ran}\n"
        f"  - name: Hostile\n    shell: {shell}\n"
    )
    result = project.run("validate")
    assert result.exit_code == 2, result.output
    assert "playbooks/p.yaml:8:" in result.stdout, result.stdout
    assert project.run("run", "playbooks/p.yaml", "-e", "f=x").exit_code == 2
    assert not (project.root / "ran").exists()


@pytest.mark.parametrize(
    "shell",
    [
        '{command: "psql -h localhost -p 5432 -d {{ f }} -f script.sql"}',
        '{command: "python3 script.py {{ f }}"}',
        "{command: \"find {{ f }} -name '*.log'\"}",
        '{command: "tar -czf {{ f }} dir"}',
        '{argv: [psql, -p, "5432", -d, "{{ f }}", -f, script.sql]}',
        '{argv: [python3, script.py], stdin: "{{ f }}"}',
        '{argv: [cat], stdin: "{{ f }}"}',
        '{command: "echo {{ f }} | wc -l"}',
        '{command: "echo {{ f }} | psql -X -f script.sql"}',
    ],
)
def test_values_an_interpreter_reads_as_data_are_allowed(project: Project, shell: str) -> None:
    project.playbook(
        f"name: s\nkind: change\nvars: {{f: x}}\nsteps:\n  - name: S\n    shell: {shell}\n"
    )
    result = project.run("validate")
    assert result.exit_code == 0, result.output


def test_a_line_refused_at_run_time_runs_nothing() -> None:
    # What validation cannot see (a line put together some other way) the run
    # still refuses: the rendered line is lexed again before it runs.
    line, refused = shellwords.requote("""echo '"${RUNBOOK_V0}"'""")
    assert refused and "single quotes" in refused[0]
    line, refused = shellwords.requote('''rm -f "old-"${RUNBOOK_V0}""''')
    assert refused == [] and line == 'rm -f "old-${RUNBOOK_V0}"'


def test_a_nul_given_with_e_is_refused_before_anything_runs(project: Project) -> None:
    project.playbook(
        "name: s\nkind: change\nvars: {f: x}\nsteps:\n"
        "  - name: S\n    shell: {command: \"printf '%s' {{ f }} > out\"}\n"
    )
    result = project.run("run", "playbooks/p.yaml", "-e", json.dumps({"f": "a\u0000b"}))
    assert result.exit_code == 2, result.output
    assert "NUL" in result.output
    assert not (project.root / "out").exists()


class _NulBody(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"f": "a\u0000b"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_nul_arriving_at_run_time_fails_the_step_cleanly(project: Project) -> None:
    # A JSON body may carry \u0000; the shell step refuses the rendered line.
    with http_server(_NulBody) as web:
        project.playbook(
            f"name: s\nkind: change\nsteps:\n"
            f"  - name: Fetch\n    http: {{url: '{web}/v'}}\n    register: h\n"
            "  - name: S\n    shell: {command: \"printf '%s' {{ h.json.f }} > out\"}\n"
        )
        result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code == 3, result.output
    assert "NUL" in result.output
    assert "Traceback" not in result.output
    assert not (project.root / "out").exists()


def test_the_bundled_playbooks_still_validate(project: Project) -> None:
    # The shapes the bundled playbooks use (values in arguments, --opt={{ v }},
    # redirection targets, {% for %} around words) are all kept.
    cases = [
        "mkdir -p {{ f }} && pg_dump --file={{ f }}/x-{{ f }}.dump {% for t in [1, 2] %} --table={{ t }}{% endfor %} && ls -l {{ f }}",
        "psql -X -v cutoff={{ f }} -f - > {{ f }} && wc -l < {{ f }}",
        "find {{ f }} -name '*.log' -mmin -60 -exec grep -l ERROR {} + | wc -l",
        'echo "{% if f %}{{ f }}{% endif %}" 2>&1',
        'psql -X -c "COPY t FROM STDIN WITH (FORMAT csv)" < {{ f }}',
    ]
    for command in cases:
        verdict_problems = list(
            __import__("runbook.actions.shell", fromlist=["x"]).shape_problems({"command": command})
        )
        assert verdict_problems == [], (command, verdict_problems)
