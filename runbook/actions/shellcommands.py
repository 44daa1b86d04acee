"""Which commands a shell step's value may not be an argument of, and why.

runbook.actions.shellwords finds where each value stands; this says whether the
command it ends up in would run it as code or as the command to run.
"""

from __future__ import annotations

import re

# Commands that run (part of) their arguments as code: a value among their
# words is refused, whatever its quoting.
_SHELLS = frozenset(
    {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "fish", "csh", "tcsh"}
)
REPARSERS = _SHELLS | frozenset(
    {
        "ssh", "su", "runuser", "watch", "script", "parallel", "expect",
        "awk", "gawk", "mawk", "nawk", "sed", "xargs",
        # SQL as a plain argument: `sqlite3 db.sqlite {{ q }}` runs q.
        "sqlite3", "redis-cli",
    }
)  # fmt: skip
# Builtins that do the same, as the command (or after `command`/`builtin`).
BUILTIN_REPARSERS = frozenset({"eval", "source", ".", "trap", "let", "alias"})
# Commands that run another command named among their arguments: which word
# is that command depends on each one's options, so a value is refused there.
WRAPPERS = frozenset(
    {
        "exec", "command", "builtin", "env", "nohup", "sudo", "doas", "nice", "ionice",
        "timeout", "stdbuf", "setsid", "chroot", "taskset", "chrt", "flock", "unbuffer",
        "time", "strace", "ltrace", "catchsegv", "firejail", "systemd-run", "nsenter",
    }
)  # fmt: skip
# Interpreters, refused only with a flag that takes code as an argument:
# alone (-c), in a cluster of short flags (-qc, -Ic), or with its value
# attached (--command=…, -c…). Each its own: psql's -p is a port, node's code.
_CODE_FLAGS = {
    "python": ("-c",), "pypy": ("-c",), "perl": ("-e", "-E"), "ruby": ("-e", "-r"),
    "node": ("-e", "--eval", "-p", "--print", "-r", "--require"), "deno": ("eval",),
    "php": ("-r", "-R", "-B", "-E"), "lua": ("-e", "-l"), "psql": ("-c", "--command"),
    "mysql": ("-e", "--execute"), "mariadb": ("-e", "--execute"), "mongo": ("--eval",),
    "mongosh": ("--eval",), "osascript": ("-e",), "Rscript": ("-e",),
    "julia": ("-e", "--eval", "-E", "--print"),
}  # fmt: skip
_VERSIONED = re.compile(r"^(python|pypy|lua|ruby|perl|php)[0-9.]*$")
_SCRIPT_ONLY = frozenset({"tclsh"})  # interpreters given code as a file, never a flag


def _interpreter(name: str) -> str | None:
    """The interpreter `name` runs (python3.11: python), None if it is none."""
    if name in _SCRIPT_ONLY:
        return name
    if name == "nodejs":
        return "node"
    versioned = _VERSIONED.match(name)
    return versioned.group(1) if versioned else (name if name in _CODE_FLAGS else None)


def _code_flag(interpreter: str, word: str) -> bool:
    """Whether `word` hands `interpreter` code (-c, -qc, -c…, --command=…)."""
    flags = _CODE_FLAGS.get(interpreter, ())
    head = word.split("=", 1)[0]
    if word in flags or head in flags:
        return True
    if word.startswith("-") and not word.startswith("--"):
        letters = {f[1] for f in flags if len(f) == 2 and f[0] == "-"}
        return any(letter in letters for letter in word[1:] if letter.isalpha())
    return False


# Other commands whose options run a command or code given with them: a
# value given to such an option (attached, or the word after it) is
# refused, and for find any value inside `-exec … ;` (_runs_by_option).
_RUNS_BY_OPTION = {
    "find": ("-exec", "-execdir", "-ok", "-okdir"),
    "tar": ("--checkpoint-action", "--to-command", "--use-compress-program", "--info-script",
            "--new-volume-script", "-I", "-F"),
    "git": ("-c", "--config-env", "--upload-pack", "--receive-pack", "--exec"),
    "rsync": ("-e", "--rsh", "--rsync-path"),
    "vim": ("-c", "--cmd", "+", "-S"), "vi": ("-c", "--cmd", "+", "-S"),
    "nvim": ("-c", "--cmd", "+", "-S"), "ex": ("-c", "--cmd", "+", "-S"),
    "gdb": ("-ex", "-x", "-iex", "--eval-command", "--command"),
    "less": ("+",), "man": ("-P", "--pager", "-H"),
    "zip": ("-T", "-TT", "--unzip-command"), "scp": ("-S", "-o"), "sftp": ("-S", "-o"),
    "make": ("--eval", "-E"), "dpkg": ("--pre-invoke", "--post-invoke"),
}  # fmt: skip


_HOLE = "\x00"  # where a value stands in a word (runbook.actions.shellwords.HOLE)


def _runs_by_option(name: str, words: list[str]) -> str | None:
    """A value given to an option that runs it (`--checkpoint-action=exec=…`,
    `git -c core.pager=…`), or inside find's `-exec … ;`."""
    options = _RUNS_BY_OPTION.get(name)
    if not options:
        return None
    why = f"`{name}` runs a command or code given with this option"
    clause = False
    for k, word in enumerate(words[1:], 1):
        if name == "find":
            if word in options:  # -exec, -execdir, -ok, -okdir
                clause = True
            elif word in (";", "\\;", "';'", '";"', "+"):
                clause = False
            elif clause and _HOLE in word:
                return why
            continue
        option = next((o for o in options if _given(word, o)), None)
        if option is None:
            continue
        following = words[k + 1] if k + 1 < len(words) else ""
        if _HOLE in word or (word == option and _HOLE in following):
            return why
    return None


def _given(word: str, option: str) -> bool:
    """`word` is `option`, or it with its value attached (--opt=…, -Xvalue, +cmd)."""
    if word == option or word.startswith(option + "="):
        return True
    short = len(option) == 2 and option[0] == "-" and option[1] != "-"
    return (short or option == "+") and word.startswith(option)


def refusal(words: list[str], dynamic_name: bool) -> str | None:
    """Why a value may not be among the arguments of the command `words`
    (its literal words, the name first), or None."""
    if dynamic_name:
        return "the command's name is not written out, so it may run its arguments as code"
    names = [w.rsplit("/", 1)[-1] for w in words]
    for name in names:
        if name in REPARSERS:
            return f"`{name}` in this command runs text as code"
    inner = names[1:] if names[:1] in (["command"], ["builtin"]) else names
    if inner and inner[0] in BUILTIN_REPARSERS:
        return f"`{inner[0]}` runs text as code"
    if names and names[0] in WRAPPERS:
        return f"after `{names[0]}`, a value could name the command it runs (use argv: for that)"
    for at, name in enumerate(names):
        interpreter = _interpreter(name)
        if interpreter and _given_code(interpreter, words[at + 1 :]):
            return "this command is given code as an argument"
    return _runs_by_option(names[0], words) if names else None


def _given_code(interpreter: str, words: list[str]) -> bool:
    """Whether a value is the code an interpreter is given: in the word of a
    code flag (-c…, --command=…) or the word after one (-c {{ q }}, -qc {{ q }}).
    A value after the code (python3 -c CODE {{ v }}) is its argument, data."""
    for k, word in enumerate(words):
        if not _code_flag(interpreter, word):
            continue
        following = words[k + 1] if k + 1 < len(words) else ""
        if _HOLE in word or _HOLE in following:
            return True
    return False


# Clients whose standard input is their code unless a file or a command is named.
_SQL_CLIENTS = {
    "psql": ("-c", "--command", "-f", "--file"), "mysql": ("-e", "--execute"),
    "mariadb": ("-e", "--execute"), "sqlite3": ("-cmd", "-init"), "mongo": ("--eval",),
    "mongosh": ("--eval", "-f", "--file"), "redis-cli": (),
}  # fmt: skip


def reads_code(words: list[str]) -> bool:
    """Whether the command `words` would run what its standard input holds as
    code: a shell or an interpreter given no script (or `-`), a SQL client
    given neither a command nor a file."""
    names = [w.rsplit("/", 1)[-1] for w in words]
    if not names:
        return False
    name, rest = names[0], words[1:]
    if name in _SQL_CLIENTS:
        given = _SQL_CLIENTS[name]
        return not any(_given(w, o) for w in rest for o in given) and not (
            name == "sqlite3" and sum(not w.startswith("-") for w in rest) > 1
        )
    if name in _SHELLS or _interpreter(name):
        script = [w for w in rest if not w.startswith("-") or w == "-"]
        flagged = any(_code_flag(_interpreter(name) or name, w) for w in rest) or (
            name in _SHELLS and "-c" in rest
        )
        return not flagged and (not script or script[0] == "-")
    return False
