"""Every vodflow exception is a ``VodflowError``, and its type says whether a retry can help (the DAG's retry
policy fails ``Permanent`` at once): the classes are read from the source, so a new exception outside the root
fails here. The texts and built-in bases callers rely on (HTTP details, ``except ValueError``) are kept."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

from vodflow import errors
from vodflow.catalog import AlreadyActive, AlreadyEncoded, BeingDeleted, OtherSource, Superseded
from vodflow.errors import BadInput, MediaToolError, Permanent, Refused, StandDown, VodflowError
from vodflow.integrations.netguard import DestinationRefused
from vodflow.pipeline import WorkItemsFailed
from vodflow.ranges import RangeNotSatisfiable
from vodflow.request import RequestError
from vodflow.storage import ObjectMissing
from vodflow.triggers.multipart import UploadConflict, UploadNotFound
from vodflow.triggers.reprocess import RangeRequired
from vodflow.triggers.uploads import UploadRequestError

PACKAGE = Path(__file__).resolve().parents[2] / "include" / "vodflow"
BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items()
                      if isinstance(value, type) and issubclass(value, BaseException)}
LEFT_OUT: set[str] = set()  # a class left outside the root for a while, by name


def class_bases() -> dict[str, list[str]]:
    """Every class defined in the package → the names of its bases (``a.B`` → ``B``)."""
    found: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                found[node.name] = [ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases]
    return found


def test_every_project_exception_is_under_the_root() -> None:
    bases = class_bases()

    def is_exception(name: str) -> bool:
        return name in BUILTIN_EXCEPTIONS or name.endswith(("Error", "Exception")) or any(
            is_exception(base) for base in bases.get(name, []))

    def rooted(name: str) -> bool:
        return name == "VodflowError" or any(rooted(base) for base in bases.get(name, []))

    outside = sorted(name for name in bases if is_exception(name) and not rooted(name))
    assert [name for name in outside if name not in LEFT_OUT] == []


@pytest.mark.parametrize("kind", [BadInput, Refused, WorkItemsFailed, RequestError, UploadRequestError,
                                  UploadConflict, UploadNotFound, DestinationRefused, RangeRequired, OtherSource,
                                  RangeNotSatisfiable])
def test_what_cannot_succeed_is_permanent(kind: type) -> None:
    assert issubclass(kind, Permanent)


@pytest.mark.parametrize("kind", [MediaToolError, ObjectMissing, StandDown, Superseded, AlreadyActive,
                                  AlreadyEncoded, BeingDeleted])
def test_faults_and_stand_downs_are_retried(kind: type) -> None:
    assert issubclass(kind, VodflowError) and not issubclass(kind, Permanent)


def test_texts_codes_and_builtin_bases() -> None:
    assert str(BadInput(errors.TOO_SHORT, "Too short.")) == "too_short: Too short."
    assert str(MediaToolError("killed")) == "internal_error: killed"
    refused = RequestError("source", "source: bucket 'x' is not allowed")
    assert isinstance(refused, ValueError) and refused.field == "source"
    assert (str(refused), refused.message, refused.code) == ("source: bucket 'x' is not allowed",) * 2 + (
        errors.INVALID_REQUEST,)
    for error, base in ((UploadRequestError("size is required"), ValueError), (UploadConflict("part 2"), ValueError),
                        (DestinationRefused("no host"), ValueError), (RangeRequired("no range"), ValueError),
                        (UploadNotFound("ab12"), LookupError), (ObjectMissing("There is no object."), LookupError),
                        (RangeNotSatisfiable(10), ValueError)):
        assert isinstance(error, base) and str(error) == error.message, error
    busy = AlreadyActive("v1", "run_a")
    assert (str(busy), busy.video_id, busy.run_id, busy.code) == (
        "video v1 is already being processed by run run_a", "v1", "run_a", errors.INTERNAL_ERROR)
    assert str(AlreadyEncoded("v1", "run_b")) == "video v1 was already made from this object by run run_b"
    deleting = BeingDeleted("v1")
    assert (str(deleting), deleting.message, deleting.run_id) == ("video v1 is being deleted",) * 2 + ("",)
    assert str(OtherSource("v1")) == "video v1 is made from another source" == OtherSource("v1").message
    assert str(Superseded("version 3 of v1 is newer than 2")) == "version 3 of v1 is newer than 2"
