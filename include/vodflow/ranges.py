"""Reading an object in parts: one HTTP byte range (what players and ``<video>`` seek with) and an object read
as a stream of bounded chunks. Pure, but for the botocore body :class:`ObjectRead` iterates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from vodflow.errors import Refused

_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$", re.ASCII | re.IGNORECASE)


class RangeNotSatisfiable(Refused, ValueError):
    """The byte range starts past the object's end (HTTP 416); ``size`` is the object's size."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the range starts past the end of the object ({size} bytes)")
        self.size = size


READ_CHUNK_BYTES = 1024 * 1024  # what a streamed read holds in memory at a time


@dataclass(frozen=True)
class ByteRange:
    """One HTTP byte range (RFC 9110 §14.1.2): ``first``-``last`` (inclusive), ``first``- (to the end), or the
    last ``suffix`` bytes."""

    first: int | None = None
    last: int | None = None
    suffix: int | None = None

    @classmethod
    def parse(cls, header: str | None) -> ByteRange | None:
        """The one range of a ``Range`` header; None for no header, several ranges or one that is not valid
        (a server may then answer the whole object); ValueError for ``bytes=-0`` (nothing: 416)."""
        found = _RANGE.match((header or "").strip())
        if not found or found.groups() == ("", ""):
            return None
        first, last = found.groups()
        if first == "":
            if int(last) == 0:
                raise ValueError("an empty suffix range selects no byte")
            return cls(suffix=int(last))
        if last and int(last) < int(first):
            return None
        return cls(first=int(first), last=int(last) if last else None)

    @property
    def header(self) -> str:
        if self.suffix is not None:
            return f"bytes=-{self.suffix}"
        return f"bytes={self.first}-{'' if self.last is None else self.last}"


@dataclass(frozen=True)
class ObjectRead:
    """An object being read from S3: what a response needs to say about it, and its bytes in bounded chunks."""

    size: int  # the whole object's
    start: int  # offset of the first byte read
    length: int  # bytes read (the range's, or the object's)
    etag: str | None
    last_modified: datetime | None
    disposition: str | None
    body: object | None  # botocore's StreamingBody (None for HEAD)
    partial: bool  # a range was read

    def chunks(self, size: int = READ_CHUNK_BYTES) -> Iterator[bytes]:
        """The bytes, ``size`` at a time straight from the HTTP response; the connection is released after."""
        if self.body is None:
            return
        try:
            yield from self.body.iter_chunks(size)
        finally:
            self.body.close()
