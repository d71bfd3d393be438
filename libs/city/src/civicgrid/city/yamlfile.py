"""Reading YAML while remembering where every value came from.

The file is composed into a node tree first (yaml.compose keeps line marks) and then
constructed, so any later complaint about a value can name its line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from civicgrid.city.errors import CityConfigError, Problem

Loc = Sequence[str | int]
M = TypeVar("M", bound=BaseModel)

# How an item of a top-level collection is named in messages: "matters" -> "matter", ...
_NOUNS = {
    "matters": "matter",
    "units": "unit",
    "groups": "group",
    "escalation": "escalation level",
    "classes": "SLA class",
}
_LABEL_KEYS = ("code", "id")


@dataclass(frozen=True)
class YamlDocument:
    path: Path
    data: Any
    root: yaml.Node | None

    def line(self, loc: Loc) -> int | None:
        """1-based line of the deepest node on loc that exists (keys and list indices)."""
        node = self.root
        best = node
        for step in loc:
            if isinstance(node, yaml.MappingNode) and isinstance(step, str):
                node = next((v for k, v in node.value if k.value == step), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                node = node.value[step] if 0 <= step < len(node.value) else None
            else:
                node = None
            if node is None:
                break
            best = node
        return None if best is None else best.start_mark.line + 1

    def subject(self, loc: Loc) -> str | None:
        """How to name the item loc points into: "matter 'roads.road-damage'", or None."""
        if len(loc) < 2 or not isinstance(loc[0], str) or loc[0] not in _NOUNS:
            return None
        noun, key = _NOUNS[loc[0]], loc[1]
        if isinstance(key, str):
            return f"{noun} {key!r}"
        items = self.data.get(loc[0]) if isinstance(self.data, dict) else None
        item = items[key] if isinstance(items, list) and 0 <= key < len(items) else None
        if isinstance(item, dict):
            for label in _LABEL_KEYS:
                if isinstance(item.get(label), str):
                    return f"{noun} {item[label]!r}"
        return f"{noun} #{key + 1}"

    def problem(self, loc: Loc, reason: str) -> Problem:
        return Problem(self.path, reason, subject=self.subject(loc), line=self.line(loc))

    def validate(self, model: type[M]) -> M:
        """The document as model, or a CityConfigError naming each bad value's line."""
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            raise CityConfigError(self.validation_problems(exc)) from None

    def validation_problems(self, exc: ValidationError) -> list[Problem]:
        problems = []
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            # Inside a named item, say which field; subject() names the item itself.
            inner = loc[2:] if self.subject(loc) is not None else loc
            field = ".".join(str(step) for step in inner)
            message = _message(error["msg"], error.get("input"), error["type"])
            problems.append(self.problem(loc, f"{field}: {message}" if field else message))
        return problems


def _message(msg: str, value: Any, kind: str) -> str:
    # pydantic prefixes custom errors with "Value error, "; operators do not need that.
    msg = msg.removeprefix("Value error, ")
    if kind in ("missing", "extra_forbidden") or isinstance(value, dict | list):
        return msg
    return f"{msg} (got {value!r})"


# LibYAML's parser where PyYAML was built with it (the wheels are): the same documents, nodes
# and marks, about ten times faster than the pure-Python one. Every service loads the city at
# start, and the pure-Python parse of its YAML took ~0.8 s of that.
_SafeLoader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)


def read_yaml(path: Path) -> YamlDocument:
    """Parse path, refusing malformed YAML and mappings that repeat a key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CityConfigError([Problem(path, "file is missing")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CityConfigError([Problem(path, f"cannot read: {exc}")]) from None
    loader = _SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is not None:
            _refuse_repeated_keys(path, root)
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(p for p in (exc.context, exc.problem) if p)
        raise CityConfigError([Problem(path, f"malformed YAML: {reason}", line=line)]) from None
    except yaml.YAMLError as exc:
        raise CityConfigError([Problem(path, f"malformed YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        got = "nothing" if data is None else type(data).__name__
        raise CityConfigError([Problem(path, f"expected a mapping at the top, got {got}")])
    return YamlDocument(path, data, root)


def _refuse_repeated_keys(path: Path, root: yaml.Node) -> None:
    # PyYAML keeps the last of two equal keys without a word; in config that hides mistakes.
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                line = key.start_mark.line + 1
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        reason = (
                            f"key {key.value!r} appears twice (first on line {seen[key.value]})"
                        )
                        raise CityConfigError([Problem(path, reason, line=line)])
                    seen[key.value] = line
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
