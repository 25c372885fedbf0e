"""The HDR10 static metadata boxes of an MP4 video sample entry: ``mdcv`` (mastering display colour volume) and
``clli`` (content light level), as ISO/IEC 14496-12 and the AV1 and HEVC MP4 bindings define them. Pure.

The bitstream of every HDR rendition carries the metadata (x265's SEI, SVT-AV1's metadata OBUs: ``hdr.color_options``),
but ffmpeg 9 writes the container boxes only for the first output of a ``split`` (its other branches lose the
decoder's HDR side data), so one HDR rendition of a ladder would have them and the others not. Players that read
the container (Chromium's MP4 parser builds its HDR metadata from these boxes) should see the same on every
rendition: ``with_hdr_boxes`` adds what an init segment lacks.
"""

from __future__ import annotations

import struct

from vodflow.media.encode.hdr import st2086_units
from vodflow.media.package.fmp4 import Box, boxes, child
from vodflow.media.source.info import ContentLight, MasteringDisplay

VISUAL_SAMPLE_ENTRY = 78  # bytes of a VisualSampleEntry's fields before its child boxes
PATH = (b"trak", b"mdia", b"minf", b"stbl", b"stsd")


def mdcv_box(md: MasteringDisplay) -> bytes:
    return struct.pack(">I4s8H2I", 32, b"mdcv", *st2086_units(md))


def clli_box(cll: ContentLight) -> bytes:
    return struct.pack(">I4s2H", 12, b"clli", cll.max_cll, cll.max_fall)


def with_hdr_boxes(init: bytes, mastering: MasteringDisplay | None, light: ContentLight | None) -> bytes:
    """``init`` (an MP4's ``ftyp`` + ``moov``, or a whole file whose ``moov`` follows its media data or precedes
    its fragments) with ``mdcv`` / ``clli`` appended to its video sample entry when it lacks them. Only box sizes
    before the insertion change, so fragments (``moof``-relative) and a trailing ``moov``'s chunk offsets stay
    right."""
    moov = next((b for b in boxes(init) if b.kind == b"moov"), None)
    if moov is None:
        raise ValueError("no moov box")
    chain: list[Box] = [moov]
    for kind in PATH:
        found = child(init, chain[-1], kind)
        if found is None:
            raise ValueError(f"no {kind.decode()} box")
        chain.append(found)
    stsd = chain[-1]
    entry = next(boxes(init, stsd.body + 8, stsd.end))  # version/flags, entry count, then the sample entry
    chain.append(entry)
    present = {b.kind for b in boxes(init, entry.body + VISUAL_SAMPLE_ENTRY, entry.end)}
    added = b"".join([mdcv_box(mastering)] if mastering and b"mdcv" not in present else []) + b"".join(
        [clli_box(light)] if light and b"clli" not in present else [])
    if not added:
        return init
    if any(b.header != 8 for b in chain):
        raise ValueError("64-bit box sizes in an init segment")
    out = bytearray(init[:entry.end] + added + init[entry.end:])
    for box in chain:
        struct.pack_into(">I", out, box.offset, box.size + len(added))
    return bytes(out)
