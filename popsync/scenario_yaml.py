"""A scenario's YAML read safely and within bounds: a value, or a `yaml.YAMLError` saying what and where.

PyYAML's safe loader still lets a short file stop a run: deep nesting overflows its recursive composer
(`RecursionError`), a few aliases expand to billions of values (which every later step, down to a
message's `repr`, then walks), scalars such as `2023-13-45`, a 5,000-digit integer or `!!timestamp x`
raise `ValueError` or `AttributeError` from its constructors, and `"\\ud800"` makes a string that cannot
be printed or encoded. `read_yaml` turns each of those into a `MarkedYAMLError` with the line and column,
and bounds the rest.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["MAX_DEPTH", "MAX_VALUES", "WrittenInt", "read_yaml"]

MAX_DEPTH = 64  # a scenario nests five or six levels; 64 is the records' JSON limit too
MAX_VALUES = 100_000  # values after aliases are expanded; a scenario holds a few hundred
_SURROGATE = re.compile("[\ud800-\udfff]")


class WrittenInt(int):
    """An int YAML read from a 0-led scalar, with the text as written (YAML 1.1 reads `010` as octal 8)."""

    written: str


class _Loader(yaml.SafeLoader):
    """The safe loader with bounds (depth, expanded size), readable scalars only, and 0-led numbers
    remembered as written so a message can quote them back."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self._depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # untyped in the stubs
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: Node) -> Any:
        _check_expansion(node)
        return super().construct_document(node)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            value = super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:
            # PyYAML's constructors let through what they meet: ValueError for `2023-13-45` or an integer
            # past 4,300 digits, AttributeError for `!!timestamp x`, KeyError for `!!bool maybe`.
            raise ConstructorError(None, None, _unreadable(node, exc), node.start_mark) from None
        if isinstance(value, str) and _SURROGATE.search(value):
            raise ConstructorError(
                None, None, "a lone surrogate escape (such as \\ud800) is not text", node.start_mark
            )
        return value


def _unreadable(node: Node, exc: Exception) -> str:
    kind = str(node.tag).rsplit(":", 1)[-1]
    text = str(node.value) if isinstance(node, ScalarNode) else ""
    shown = text if len(text) <= 40 else f"{text[:20]}…({len(text):,} characters)"
    # Python's own words for an over-long integer name a setting of Python, not of the scenario.
    why = f": {exc}" if isinstance(exc, ValueError) and "integer string conversion" not in str(exc) else ""
    return f"{shown!r} is not a readable {kind}{why}"


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    value = loader.construct_yaml_int(node)
    if isinstance(node.value, str) and re.fullmatch(r"[-+]?0[0-9_]+", node.value):
        written = WrittenInt(value)
        written.written = node.value
        return written
    return value


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expansion(root: Node) -> None:
    """Refuse a document whose aliases make a cycle, nest it deeper than MAX_DEPTH or expand it past
    MAX_VALUES values. Walks each node once (sizes are memoised), without recursion."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            children = _children(node)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > MAX_VALUES:
                raise ComposerError(
                    None, None, f"aliases expand this to more than {MAX_VALUES:,} values", node.start_mark
                )
            if depth[key] > MAX_DEPTH:
                raise ComposerError(
                    None, None, f"aliases nest this deeper than {MAX_DEPTH} levels", node.start_mark
                )
            continue
        if key in size:
            continue
        if key in on_path:  # a descendant is the node itself: `&a [*a]`
            raise ComposerError(None, None, "an alias refers to a value that holds it", node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))


def read_yaml(text: str) -> Any:
    """The value of a YAML document (safe tags only); `yaml.YAMLError` for anything unreadable, with the
    line and column where the YAML says so (`problem_mark`)."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except RecursionError:  # the bounds above should prevent it; a message, not a traceback, if not
        raise yaml.YAMLError(f"nested too deeply (more than {MAX_DEPTH} levels)") from None
