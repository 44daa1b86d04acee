"""The YAML parser behind runbook.load.yamlsrc.parse: PyYAML's node graph → data + positions.

Kept apart from runbook.load.yamlsrc so that PyYAML is imported only when a file is
really parsed (a document-cache miss, a vars file, `runbook validate`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import yaml

from runbook.errors import Position
from runbook.load.yamlsrc import (
    BOOL,
    FLOAT,
    INT,
    MAX_NODES,
    NULL,
    DataPath,
    Document,
    YamlError,
    check_text,
    decode,
    parse_int,
)

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_KNOWN_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


class _CoreResolver(yaml.resolver.BaseResolver):
    """YAML 1.2 core schema; no timestamps, no yes/no/on/off booleans."""


for _tag, _regexp, _first in [
    ("tag:yaml.org,2002:null", NULL, ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", BOOL, list("tTfF")),
    ("tag:yaml.org,2002:int", INT, list("-+0123456789")),
    ("tag:yaml.org,2002:float", FLOAT, list("-+.0123456789")),
]:
    _CoreResolver.add_implicit_resolver(_tag, _regexp, _first)
_CoreResolver.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"])

_Parser = getattr(getattr(yaml, "cyaml", None), "CParser", None)


if _Parser is not None:

    class _Composer(_Parser, _CoreResolver):  # type: ignore[misc,valid-type]
        def __init__(self, stream: str) -> None:
            _Parser.__init__(self, stream)  # type: ignore[misc]
            _CoreResolver.__init__(self)

else:  # pragma: no cover - pure-Python fallback when libyaml is absent

    class _Composer(  # type: ignore[no-redef]
        yaml.reader.Reader,
        yaml.scanner.Scanner,
        yaml.parser.Parser,
        yaml.composer.Composer,
        _CoreResolver,
    ):
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _CoreResolver.__init__(self)


def _pos(mark: Any) -> Position:
    return Position(mark.line + 1, mark.column + 1)


def parse(path: str, raw: bytes) -> Document:
    """Parse one YAML document with positions; raise YamlError on any hazard."""
    text = decode(raw)
    check_text(text)
    doc = Document(path=path, text=text)
    try:
        composer = _Composer(text)
        try:
            root = composer.get_single_node()
        finally:
            composer.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _pos(mark) if mark is not None else Position(1, 1)
        if _char_at(text, where) == "\t":
            raise YamlError(
                "tab character used for indentation; YAML allows only spaces", where, "tab"
            ) from None
        message = exc.problem or str(exc)
        if "nesting depth" in message:
            # PyYAML 6.0.4+ refuses deep flow nesting itself, before Python's
            # recursion limit would: the same hazard, the same code.
            raise YamlError(
                f"document is nested too deeply: {message}", where, "too-deep"
            ) from None
        if exc.context:
            message = f"{exc.context}, {message}"
        if exc.context_mark is not None and exc.problem_mark is not None:
            opened = _pos(exc.context_mark)
            if opened != where:
                message += f" (started at line {opened.line}, column {opened.col})"
        raise YamlError(f"YAML syntax error: {message}", where, "yaml-syntax") from None
    except yaml.YAMLError as exc:
        raise YamlError(f"YAML error: {exc}", Position(1, 1), "yaml-syntax") from None
    except RecursionError:
        raise YamlError("document is nested too deeply", Position(1, 1), "too-deep") from None
    if root is None or (
        isinstance(root, yaml.ScalarNode) and root.tag.endswith(":null") and not root.value
    ):
        raise YamlError("file is empty: expected a mapping", Position(1, 1), "empty")
    if not isinstance(root, yaml.MappingNode):
        raise YamlError(
            f"the document must be a mapping (key: value), not a {_describe(root)}",
            _pos(root.start_mark),
            "not-mapping",
        )
    builder = _Builder(doc)
    try:
        _refuse_bombs(root)
        doc.data = builder.build(root, ())
    except RecursionError:
        raise YamlError("document is nested too deeply", Position(1, 1), "too-deep") from None
    return doc


def _refuse_bombs(root: yaml.MappingNode) -> None:
    """Count what aliases would expand to, in time linear in the file's size."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise YamlError(
                "an alias refers to a node that contains it", _pos(node.start_mark), "alias-loop"
            )
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        sizes[key] = min(total, 10 * MAX_NODES * MAX_NODES)
        return sizes[key]

    if size(root) <= MAX_NODES:
        return
    key_node, value_node = max(root.value, key=lambda pair: size(pair[1]))
    raise YamlError(
        f"{key_node.value!r} expands through aliases to about {size(value_node):,} values, "
        f"more than the {MAX_NODES:,} allowed (an alias bomb?); refusing the file",
        _pos(key_node.start_mark),
        "alias-bomb",
    )


def _char_at(text: str, where: Position) -> str:
    lines = text.splitlines()
    if where.line - 1 < len(lines):
        line = lines[where.line - 1]
        if where.col - 1 < len(line):
            return line[where.col - 1]
    return ""


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "list"
    if isinstance(node, yaml.ScalarNode):
        return "scalar value"
    return "mapping"


class _Builder:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.count = 0
        self.active: set[int] = set()

    def build(self, node: yaml.Node, path: DataPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlError(
                f"document expands to more than {MAX_NODES} values through aliases "
                "(an alias bomb?); refusing it",
                _pos(node.start_mark),
                "alias-bomb",
            )
        if id(node) in self.active:
            raise YamlError(
                "an alias refers to a node that contains it", _pos(node.start_mark), "alias-loop"
            )
        self.doc.values[path] = _pos(node.start_mark)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ:
                    raise YamlError(_tag_message(node.tag), _pos(node.start_mark), "tag")
                return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
            if node.tag != _MAP or not isinstance(node, yaml.MappingNode):
                raise YamlError(_tag_message(node.tag), _pos(node.start_mark), "tag")
            return self._mapping(node, path)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: DataPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, Position] = {}
        for key_node, value_node in self._pairs(node):
            key = self._key(key_node)
            where = _pos(key_node.start_mark)
            if key in seen:
                first = seen[key]
                raise YamlError(
                    f"duplicate key {key!r} (first defined at line {first.line}, "
                    f"column {first.col}); YAML would silently keep only the last one",
                    where,
                    "duplicate-key",
                )
            seen[key] = where
            self.doc.keys[(*path, key)] = where
            out[key] = self.build(value_node, (*path, key))
        # Merged-in pairs (`<<: *defaults`): explicit keys and earlier merges win.
        for key_node, value_node in self._merges(node):
            key = self._key(key_node)
            if key in out:
                continue
            self.doc.keys[(*path, key)] = _pos(key_node.start_mark)
            out[key] = self.build(value_node, (*path, key))
        return out

    def _pairs(self, node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == "tag:yaml.org,2002:merge":
                continue
            yield key_node, value_node

    def _merges(self, node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        """`<<: *defaults` and `<<: [*a, *b]`: pairs of the merged mappings, in order."""
        for key_node, value_node in node.value:
            if not (
                isinstance(key_node, yaml.ScalarNode) and key_node.tag == "tag:yaml.org,2002:merge"
            ):
                continue
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise YamlError("`<<` merges only mappings", _pos(source.start_mark), "merge")
                self.count += len(source.value)
                if self.count > MAX_NODES:
                    raise YamlError(
                        "document expands too far through merges (an alias bomb?)",
                        _pos(source.start_mark),
                        "alias-bomb",
                    )
                yield from source.value

    def _key(self, node: yaml.Node) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise YamlError("mapping keys must be plain strings", _pos(node.start_mark), "key")
        _refuse_nul(node)
        # Keys keep their source text: `on:` and `1:` are the strings "on" and "1".
        return str(node.value)

    def _scalar(self, node: yaml.ScalarNode, path: DataPath) -> Any:
        tag = node.tag
        value: str = node.value
        if tag not in _KNOWN_SCALAR_TAGS:
            raise YamlError(_tag_message(tag), _pos(node.start_mark), "tag")
        if tag == _STR:
            _refuse_nul(node)
            self.doc.styles[path] = node.style
            return value
        if tag == "tag:yaml.org,2002:null":
            if not NULL.match(value):
                raise YamlError(f"{value!r} is not null", _pos(node.start_mark), "tag")
            return None
        if tag == "tag:yaml.org,2002:bool":
            if not BOOL.match(value):
                raise YamlError(f"{value!r} is not a boolean", _pos(node.start_mark), "tag")
            return value.lower() == "true"
        if tag == "tag:yaml.org,2002:int":
            return _to_int(value, node)
        return _to_float(value, node)


def _refuse_nul(node: yaml.ScalarNode) -> None:
    """A NUL written as an escape ("\\0", "\\x00", "\\u0000"): the raw byte is
    refused with the text. No string of runbook's may hold one: PostgreSQL ends
    SQL text at it (what follows would be shown and journaled but never run),
    and the OS ends paths and arguments at it."""
    if "\x00" in node.value:
        raise YamlError(
            "NUL character (written as an escape) in a string; runbook refuses NUL in any "
            "value: PostgreSQL and the OS would silently cut the text there",
            _pos(node.start_mark),
            "nul",
        )


def _to_int(value: str, node: yaml.ScalarNode) -> int:
    try:
        return parse_int(value)
    except ValueError:
        raise YamlError(f"{value!r} is not an integer", _pos(node.start_mark), "tag") from None


def _to_float(value: str, node: yaml.ScalarNode) -> float:
    lowered = value.lower()
    if lowered.endswith(".inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    if lowered == ".nan":
        return math.nan
    try:
        return float(value)
    except ValueError:
        raise YamlError(f"{value!r} is not a number", _pos(node.start_mark), "tag") from None


def _tag_message(tag: str) -> str:
    shown = (
        "!!" + tag.removeprefix("tag:yaml.org,2002:")
        if tag.startswith("tag:yaml.org,2002:")
        else tag
    )
    return f"unsupported YAML tag {shown!r}; runbook reads plain data only"
