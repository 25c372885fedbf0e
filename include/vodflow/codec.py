"""One codec for every typed value that crosses a task boundary (XCom) or is kept as JSON: a dataclass becomes the
dict of its fields, and is read back by its fields' type hints. Standard library only, so any layer may use it.

Why one codec: hand-written ``to_dict``/``from_dict`` pairs drift (a field added to one side only), and a new kind
of work item had to be registered in several places. Here a value's shape *is* its dataclass.

Shape (what ``dataclasses.asdict`` gives, so values stored before stay readable and readable by older code):
a dataclass is a dict of its fields (``init=False`` ones too: derived values a reader may want); a class that
declares ``kind: ClassVar[str]`` puts ``"kind"`` first — that tag is how a member of a union is told apart; lists
stay lists and tuples tuples; enums are their value; an aware datetime is ISO 8601 (UTC as ``Z``).

Reading (``decode(hint, data)``) follows the hint: nested dataclasses, ``list``/``tuple``/``dict``, ``X | None``,
unions of tagged dataclasses (by ``kind``; an unknown kind is an error, never a default), unions of plain types
(by the value's shape), enums and literals. A field missing from the data takes its default (values written
before the field existed); keys the class does not know are ignored (values written by a newer version).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any, Literal, Self, TypeVar, Union, get_args, get_origin

T = TypeVar("T")
TAG = "kind"


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data (the shape above)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data: dict[str, Any] = {}
        tag = _tag_of(type(value))
        if tag is not None:
            data[TAG] = tag
        for f in dataclasses.fields(value):
            data[f.name] = encode(getattr(value, f.name))
        return data
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, list | tuple):
        return type(value)(encode(v) for v in value)
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def decode(hint: Any, data: Any, what: str = "value") -> Any:
    """The value of type ``hint`` that ``data`` describes; ``what`` names it in errors (e.g. "work item")."""
    if hint is Any or hint is object:
        return data
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        return _decode_union(get_args(hint), data, what)
    if origin is Literal:
        if data not in get_args(hint):
            raise ValueError(f"{what}: {data!r} is none of {get_args(hint)}")
        return data
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _decode_dataclass(hint, data, what)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(data)
    if hint is datetime:
        return data if isinstance(data, datetime) else datetime.fromisoformat(data)
    if origin in (list, tuple, dict) or hint in (list, tuple, dict):
        return _decode_container(origin or hint, get_args(hint), data, what)
    return data


class Coded:
    """A dataclass's ``to_dict``/``from_dict`` through the codec: what callers of a value's own methods expect."""

    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return decode(cls, data)


def _tag_of(cls: type) -> str | None:
    """The ``kind`` a class declares as a ``ClassVar`` (a field of that name is data, not a tag)."""
    tag = None if TAG in _field_names(cls) else getattr(cls, TAG, None)
    return tag if isinstance(tag, str) else None


@cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else frozenset()


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@cache
def _tags(members: tuple[type, ...]) -> dict[str, type]:
    """A union's members by tag; two members with one tag could not be told apart, so that is a type error."""
    found: dict[str, type] = {}
    for member in members:
        tag = _tag_of(member)
        if tag is None:
            raise TypeError(f"{member.__name__} is in a union of dataclasses but declares no {TAG}: ClassVar[str]")
        if tag in found:
            raise TypeError(f"{found[tag].__name__} and {member.__name__} share the {TAG} {tag!r}")
        found[tag] = member
    return found


def _decode_dataclass(cls: type[T], data: Any, what: str) -> T:
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"{what}: {cls.__name__} from {type(data).__name__}, not a dict")
    hints = _hints(cls)
    kwargs = {f.name: decode(hints[f.name], data[f.name], what) for f in dataclasses.fields(cls)
              if f.init and f.name in data}
    return cls(**kwargs)


def _decode_union(members: tuple[Any, ...], data: Any, what: str) -> Any:
    if data is None and type(None) in members:
        return None
    members = tuple(m for m in members if m is not type(None))
    if len(members) == 1:
        return decode(members[0], data, what)
    classes = tuple(m for m in members if dataclasses.is_dataclass(m))
    if classes and len(classes) == len(members):
        tag = data.get(TAG) if isinstance(data, dict) else None
        member = _tags(classes).get(tag) if isinstance(tag, str) else None
        if member is None:
            raise ValueError(f"unknown {what} kind {tag!r}")
        return decode(member, data, what)
    for member in members:  # plain types: the first whose shape the data has
        if isinstance(data, _runtime_type(member)):
            return decode(member, data, what)
    return data


def _runtime_type(hint: Any) -> type | tuple[type, ...]:
    origin = get_origin(hint) or hint
    if origin in (list, tuple):
        return list | tuple  # JSON has lists only: either reads as either
    if dataclasses.is_dataclass(origin):
        return (dict, origin)
    if origin is float:
        return (int, float)
    return origin if isinstance(origin, type) else object


def _decode_container(origin: type, args: tuple[Any, ...], data: Any, what: str) -> Any:
    if origin is dict:
        value_hint = args[1] if len(args) == 2 else Any
        return {k: decode(value_hint, v, what) for k, v in data.items()}
    if origin is list:
        return [decode(args[0] if args else Any, v, what) for v in data]
    if (len(args) == 2 and args[1] is Ellipsis) or not args:
        return tuple(decode(args[0] if args else Any, v, what) for v in data)
    return tuple(decode(h, v, what) for h, v in zip(args, data, strict=True))


__all__ = ["TAG", "Coded", "decode", "encode"]
