"""Where a `{{ value }}` stands in a /bin/sh command line, and whether it stays one word.

A shell step's values never enter the command text: each becomes an
environment variable, RUNBOOK_V<n>, and the text refers to it. Whether that
reference expands to exactly one word, read literally, depends on the quoting
around it, so the command is lexed as the shell lexes it (single and double
quotes, backslashes, `$'…'`, `$(…)`, `${…}`, `$((…))`, backquotes, comments,
operators, redirections, here-documents) and each value is placed by where it
stands:

* outside quotes, in an argument or a redirection's target: `"${RUNBOOK_Vn}"`;
* inside double quotes, not nested in anything: `${RUNBOOK_Vn}`.

Everywhere else a value is refused, because it would be literal text (inside
single quotes), could be split, globbed or read as code (inside `$(…)`,
backquotes, `${…}`, arithmetic, `[[ … ]]`, a here-document, right after `$` or
`\\`), would name the command to run, or goes to a command that runs its
arguments as code (a shell, `eval`, `ssh`, `su`, `awk`, `sed`, an interpreter
given `-c`/`-e`…). Past a construct the lexer cannot follow exactly (a
here-document, backquotes, `case` inside `$(…)`, quotes inside `${…}`) every
later value is refused. What a command does with its own variables later
(passing "$X" to eval, using it in bash arithmetic) is its author's business.

`analyse` works on a sequence of text, holes (values) and tags (Jinja `{% %}`
tags, at validation): a block's tags must all stand in the same quoting
context, so that every path through the template quotes the values alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from runbook.actions import shellcommands

HOLE = "\x00"
TAG = "\x01"

_KEEP_POSITION = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\+?=")
_DIGITS = re.compile(r"^[0-9]+$")
_TOP_LIKE = ("top", "cmdsub")


@dataclass
class Verdict:
    """Per hole (in order): "bare" (unquoted), "dq" (inside double quotes), or
    why it is refused; and problems with tags (offset, message)."""

    holes: list[str] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    tag_problems: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class _Ctx:
    kind: str  # top, cmdsub, sq, dq, param, arith
    depth: int = 0  # parens (cmdsub, arith) or braces (param) still open
    locale: bool = False  # $"…"
    in_word: bool = False
    comment: bool = False
    word: list[str] = field(default_factory=list)

    def signature(self) -> tuple[str, int, bool, bool]:
        return (self.kind, self.depth, self.locale, self.comment)


@dataclass
class _Command:
    """The simple command being read at the top level."""

    words: list[str] = field(default_factory=list)
    holes: list[int] = field(default_factory=list)
    named: bool = False
    dynamic_name: bool = False
    word_holes: list[int] = field(default_factory=list)
    word_dynamic: bool = False
    redirect: bool = False


class _Scanner:
    def __init__(self, text: str, tags: list[tuple[str, int]]) -> None:
        self.text = text
        self.tags = tags  # (name, offset) of each TAG, in order
        self.stack = [_Ctx("top")]
        self.verdict = Verdict()
        self.unknown: str | None = None
        self.cmd = _Command()
        self.dbracket = False
        self.blocks: list[tuple[str, tuple[object, ...], int]] = []
        self.tag_index = 0
        # Values among the words of the pipeline's commands so far (a | b | …).
        self.piped: list[int] = []

    # -- driving ---------------------------------------------------------------

    def run(self) -> Verdict:
        i = 0
        while i < len(self.text):
            i = self._step(i) + 1
        self._end_word()
        self._end_command()
        for name, _, offset in self.blocks:
            self.verdict.tag_problems.append((offset, f"{{% {name} %}} is never closed"))
        return self.verdict

    def _step(self, i: int) -> int:
        c = self.text[i]
        if c == TAG:
            self._tag()
            return i
        if c == HOLE:
            self._hole()
            return i
        ctx = self.stack[-1]
        if ctx.kind in _TOP_LIKE:
            return self._top(i, c, ctx)
        if ctx.kind == "sq":
            if c == "'":
                self.stack.pop()
            elif len(self.stack) == 2:
                self.stack[0].word.append(c)  # the word as the command will see it
            return i
        if ctx.kind == "dq":
            return self._dq(i, c)
        return self._nested(i, c, ctx)

    # -- holes and tags ---------------------------------------------------------

    def _hole(self) -> None:
        number = len(self.verdict.holes)
        ctx = self.stack[-1]
        self.verdict.holes.append("dq" if ctx.kind == "dq" else "bare")
        if self.unknown:
            self._refuse(number, self.unknown)
            return
        if ctx.kind in _TOP_LIKE and ctx.comment:
            return  # never expanded
        why = self._context_refusal()
        if why:
            self._refuse(number, why)
            return
        if self.dbracket:
            self._refuse(number, "inside [[ … ]], where bash may evaluate it as arithmetic")
            return
        base = self.stack[0]
        base.in_word = True
        self.cmd.word_holes.append(number)
        self.cmd.holes.append(number)

    def _context_refusal(self) -> str | None:
        kinds = [c.kind for c in self.stack[1:]]
        if kinds and kinds[-1] == "sq":
            return "inside single quotes, where it would be literal text"
        if "cmdsub" in kinds:
            return "inside a $( … ) command substitution"
        if "param" in kinds:
            return "inside a ${ … } expansion"
        if "arith" in kinds:
            return "inside arithmetic, where it would be evaluated"
        if self.stack[-1].locale:
            return 'inside a $"…" string'
        return None

    def _refuse(self, number: int, why: str) -> None:
        self.verdict.refused.setdefault(number, why)

    def _tag(self) -> None:
        name, offset = self.tags[self.tag_index]
        self.tag_index += 1
        # The quotes and nesting, and whether the command has its name yet:
        # every path through the block must leave them as they were.
        signature = (*(c.signature() for c in self.stack), self.cmd.named, self.dbracket)
        if name in ("if", "for", "with"):
            self.blocks.append((name, signature, offset))
        elif name in ("elif", "else", "endif", "endfor", "endwith"):
            if not self.blocks:
                return  # a Jinja syntax error, reported as one
            opened, before, _ = self.blocks[-1]
            if before != signature:
                self.verdict.tag_problems.append(
                    (
                        offset,
                        f"{{% {name} %}} stands in other quotes, or another place in a command, "
                        f"than its {{% {opened} %}}: a block must close every quote it opens "
                        "and not decide which word names the command, or values could end up "
                        "unquoted or run",
                    )
                )
            if name.startswith("end"):
                self.blocks.pop()

    # -- contexts ----------------------------------------------------------------

    def _top(self, i: int, c: str, ctx: _Ctx) -> int:
        text = self.text
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if ctx.comment:
            if c == "\n":
                ctx.comment = False
                self._boundary(ctx, command=True)
            return i
        if c == "\\":
            if nxt == HOLE:
                self._refuse_next("right after a backslash")
            elif nxt != "\n":
                self._word_char(ctx, nxt)
            return i + 1
        if c == "'":
            self._word_char(ctx, "")
            self.stack.append(_Ctx("sq"))
            return i
        if c == '"':
            self._word_char(ctx, "")
            self.stack.append(_Ctx("dq"))
            return i
        if c == "`":
            self.unknown = "after a `…` command substitution (write $( … ) instead)"
            return i
        if c == "$":
            self._dynamic(ctx)
            return self._dollar(i, nxt, top_like=True)
        if c == "#" and not ctx.in_word:
            ctx.comment = True
            return i
        if c in " \t":
            self._boundary(ctx, command=False)
            return i
        if c in "\n;&|":
            top = ctx is self.stack[0]
            pipe = top and c == "|" and nxt != "|"
            if top:
                self._end_word()  # a redirection's target is not what the pipe carries
            feeding = list(self.cmd.holes) if pipe else []
            self._boundary(ctx, command=True)
            if top:
                self.piped = [*self.piped, *feeding] if pipe else []
            if c in ";&|" and nxt == c:
                return i + 1
            return i
        if c in "<>":
            return self._redirect(i, c, nxt, ctx)
        if c == "(":
            if not ctx.in_word and not self._named(ctx) and nxt == "(":
                self.stack.append(_Ctx("arith", depth=2))
                return i + 1
            self._boundary(ctx, command=True)
            if ctx.kind == "cmdsub":
                ctx.depth += 1
            return i
        if c == ")":
            self._boundary(ctx, command=True)
            if ctx.kind == "cmdsub":
                if ctx.depth == 0:
                    self.stack.pop()
                else:
                    ctx.depth -= 1
            return i
        self._word_char(ctx, c)
        return i

    def _dq(self, i: int, c: str) -> int:
        nxt = self.text[i + 1] if i + 1 < len(self.text) else ""
        if c == '"':
            self.stack.pop()
        elif c == "\\":
            if nxt == HOLE:
                self._refuse_next("right after a backslash")
                return i + 1
            if nxt and nxt in '$`"\\\n':
                self._literal(nxt)
                return i + 1
            self._literal(c)
        elif c == "`":
            self.unknown = "after a `…` command substitution (write $( … ) instead)"
        elif c == "$":
            self._dynamic(self.stack[0])
            return self._dollar(i, nxt, top_like=False)
        else:
            self._literal(c)
        return i

    def _literal(self, c: str) -> None:
        """A quoted character of a top-level word (`"sh"` is the word sh)."""
        if len(self.stack) == 2 and c != HOLE:
            self.stack[0].word.append(c)

    def _nested(self, i: int, c: str, ctx: _Ctx) -> int:
        """Inside ${…} or arithmetic: only their end matters, and what nests."""
        nxt = self.text[i + 1] if i + 1 < len(self.text) else ""
        if c in "'\"`\\":
            self.unknown = f"after quotes or escapes inside {'${ … }' if ctx.kind == 'param' else 'arithmetic'}"
            return i
        if c == "$":
            return self._dollar(i, nxt, top_like=False)
        opening, closing = ("{", "}") if ctx.kind == "param" else ("(", ")")
        if c == opening:
            ctx.depth += 1
        elif c == closing:
            ctx.depth -= 1
            if ctx.depth == 0:
                self.stack.pop()
        return i

    def _dollar(self, i: int, nxt: str, top_like: bool) -> int:
        text = self.text
        if nxt == HOLE:
            self._refuse_next("right after a $")
            return i + 1
        if nxt == "$":  # $$, the shell's pid: the second $ starts nothing
            return i + 1
        if nxt == "(":
            if i + 2 < len(text) and text[i + 2] == "(":
                self.stack.append(_Ctx("arith", depth=2))
                return i + 2
            self.stack.append(_Ctx("cmdsub"))
            return i + 1
        if nxt == "{":
            self.stack.append(_Ctx("param", depth=1))
            return i + 1
        if nxt == "[":  # old bash arithmetic; plain text to dash
            self.unknown = "after $[ … ], which shells read differently"
            return i + 1
        if top_like and nxt == "'":
            end = text.find("'", i + 2)
            if end < 0 or "\\" in text[i + 2 : end]:
                self.unknown = "after a $'…' string with a backslash, which shells read differently"
            self.stack.append(_Ctx("sq"))
            return i + 1
        if top_like and nxt == '"':
            self.stack.append(_Ctx("dq", locale=True))
            return i + 1
        return i

    def _redirect(self, i: int, c: str, nxt: str, ctx: _Ctx) -> int:
        digits = ctx.in_word and _DIGITS.match("".join(ctx.word))
        if digits and ctx is self.stack[0] and not self.cmd.word_holes:
            # `2>`: the digits are the descriptor, not a word
            ctx.in_word = False
            ctx.word.clear()
            self.cmd.word_dynamic = False
        self._boundary(ctx, command=False)
        if c == "<" and nxt == "<":
            self.unknown = "after a here-document, whose body the shell expands"
            return i + 1
        if ctx is self.stack[0]:
            self.cmd.redirect = True
        if nxt and (nxt in ">&|" or (c == "<" and nxt == ">")):
            return i + 1
        return i

    # -- words and commands (top level) -------------------------------------------

    def _refuse_next(self, why: str) -> None:
        number = len(self.verdict.holes)
        self.verdict.holes.append("bare")
        self._refuse(number, why)

    def _word_char(self, ctx: _Ctx, c: str) -> None:
        ctx.in_word = True
        ctx.word.append(c)

    def _dynamic(self, ctx: _Ctx) -> None:
        if ctx is self.stack[0]:
            self.cmd.word_dynamic = True
        ctx.in_word = True

    def _named(self, ctx: _Ctx) -> bool:
        return ctx is self.stack[0] and self.cmd.named

    def _boundary(self, ctx: _Ctx, command: bool) -> None:
        if ctx is self.stack[0]:
            self._end_word()
            if command:
                self._end_command()
        else:
            if ctx.in_word and "".join(ctx.word) in ("case", "esac"):
                self.unknown = "after `case` inside $( … )"
            ctx.in_word = False
            ctx.word.clear()

    def _end_word(self) -> None:
        base, cmd = self.stack[0], self.cmd
        if not base.in_word:
            return
        word = "".join(base.word)
        holes, dynamic = cmd.word_holes, cmd.word_dynamic
        base.in_word = False
        base.word.clear()
        cmd.word_holes, cmd.word_dynamic = [], False
        if cmd.redirect or (not cmd.named and _ASSIGNMENT.match(word)):
            # A file the shell opens, or a variable set for the command: the
            # value is not among the command's arguments.
            cmd.redirect = False
            cmd.holes = [h for h in cmd.holes if h not in holes]
            return
        if not cmd.named:
            if not holes and not dynamic and word in _KEEP_POSITION:
                return
            cmd.named = True
            if holes:
                for number in holes:
                    self._refuse(number, "it would name the command to run (use argv: for that)")
            cmd.dynamic_name = dynamic
            if word == "[[" and not holes and not dynamic:
                self.dbracket = True
        elif word == "]]":
            self.dbracket = False
        # A word holding a value says so (shellcommands looks at where values stand).
        cmd.words.append(word + HOLE if holes else word)

    def _end_command(self) -> None:
        cmd = self.cmd
        if cmd.holes:
            why = shellcommands.refusal(cmd.words, cmd.dynamic_name)
            if why:
                for number in cmd.holes:
                    self._refuse(number, why)
        if self.piped and cmd.words and shellcommands.reads_code(cmd.words):
            # `echo {{ q }} | psql`: the value is what psql reads, as SQL.
            for number in self.piped:
                self._refuse(number, f"it is piped into `{cmd.words[0]}`, which runs what it reads")
        self.cmd = _Command()


def analyse(text: str, tags: list[tuple[str, int]] | None = None) -> Verdict:
    """Text with HOLE for each value and TAG for each Jinja tag (names, offsets)."""
    return _Scanner(text, tags or []).run()


REFERENCE = re.compile(r'"\$\{RUNBOOK_V([0-9]+)\}"')


def requote(line: str) -> tuple[str, list[str]]:
    """A command line from `template.render_shell` with each value's reference
    placed for where it stands; and why values were refused (empty if none)."""
    if HOLE in line or TAG in line:
        return line, ["the command holds a NUL or \\x01 byte"]
    numbers = [m.group(1) for m in REFERENCE.finditer(line)]
    verdict = analyse(REFERENCE.sub(HOLE, line))
    refused = [f"value {{{{ #{i + 1} }}}}: {why}" for i, why in sorted(verdict.refused.items())]
    if refused:
        return line, refused
    pieces = REFERENCE.split(line)
    out = [pieces[0]]
    for k, number in enumerate(numbers):
        ref = f"${{RUNBOOK_V{number}}}"
        out.append(ref if verdict.holes[k] == "dq" else f'"{ref}"')
        out.append(pieces[2 * k + 2])
    return "".join(out), []
