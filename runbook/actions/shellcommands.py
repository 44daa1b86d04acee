"""Which commands a shell step's value may not be an argument of, and why.

runbook.actions.shellwords finds where each value stands; this says whether the
command it ends up in would run it as code or as the command to run.
"""

from __future__ import annotations

import re

# Commands that run (part of) their arguments as code: a value among their
# words is refused, whatever its quoting.
REPARSERS = frozenset(
    {
        "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "fish", "csh", "tcsh",
        "ssh", "su", "runuser", "watch", "script", "parallel", "expect",
        "awk", "gawk", "mawk", "nawk", "sed", "xargs",
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
# Interpreters, refused only with a flag that takes code as an argument.
INTERPRETERS = re.compile(r"^(python[0-9.]*|perl|ruby|node|php|lua|psql|sqlite3|tclsh|osascript)$")
CODE_FLAGS = frozenset({"-c", "-e", "-E", "--command", "--eval", "-r"})


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
    if any(INTERPRETERS.match(n) for n in names) and CODE_FLAGS & set(words):
        return "this command is given code as an argument"
    return None
