"""RFC 6381 codec strings of AV1 and HEVC tracks, read from their ISO BMFF configuration records. Pure.

What a player decides with (HLS ``CODECS``, DASH ``@codecs``, ``MediaSource.isTypeSupported``) must be what the
stream is: profile, level, tier and bit depth come from the encoder's own configuration record, never the plan.

- AV1 (AV1-ISOBMFF §5): ``av01.P.LLT.DD`` from the ``av1C``; the optional fields ``.M.CCC.cp.tc.mc.F`` (all
  or none) are added when the sequence header describes colours other than the string's defaults (BT.709,
  limited range), e.g. an HDR rendition's BT.2020/PQ: ``av01.0.08M.10.0.111.09.16.09.0`` (monochrome and chroma
  subsampling/position then as the ``av1C`` says). A sequence header without a colour description (an untagged
  SDR picture, which players take as BT.709) keeps the short form, as packagers write it (Shaka's rule).
- HEVC (ISO/IEC 14496-15 Annex E.3): ``hvc1.<space><profile>.<compatibility flags, bit-reversed, hex>.<tier L|H>
  <level>.<constraint bytes, trailing zero bytes left out>``, e.g. ``hvc1.1.6.L93.B0`` (Main, level 3.1).
"""

from __future__ import annotations

SEQUENCE_HEADER_OBU = 1
SELECT = 2  # seq_force_screen_content_tools / seq_force_integer_mv: chosen per frame
DEFAULT_COLOUR = (1, 1, 1, 0)  # the string's defaults: BT.709 primaries, transfer and matrix, limited range


class BitReader:
    """Big-endian bits of an AV1 OBU (the spec's ``f(n)`` and ``uvlc()``)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def f(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def uvlc(self) -> int:
        zeros = 0
        while not self.f(1):
            zeros += 1
        return (1 << zeros) - 1 + self.f(zeros) if zeros < 32 else (1 << 32) - 1


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise ValueError("bad leb128 size in an AV1 OBU")


def sequence_header(obus: bytes) -> bytes | None:
    """The payload of the first sequence header OBU among ``obus`` (the ``av1C``'s configOBUs)."""
    pos = 0
    while pos < len(obus):
        header = obus[pos]
        kind, extension, has_size = (header >> 3) & 0x0F, header & 0x04, header & 0x02
        pos += 2 if extension else 1
        if not has_size:
            size = len(obus) - pos
        else:
            size, pos = _leb128(obus, pos)
        if kind == SEQUENCE_HEADER_OBU:
            return obus[pos:pos + size]
        pos += size
    return None


def colour_config(payload: bytes) -> tuple[int, int, int, int] | None:
    """(colour primaries, transfer, matrix, full range) of a sequence header (AV1 §5.5), or None when it has no
    colour description."""
    r = BitReader(payload)
    profile = r.f(3)
    r.f(1)  # still_picture
    reduced = r.f(1)
    if reduced:
        r.f(5)
    else:
        decoder_model = 0
        buffer_delay_bits = 0
        if r.f(1):  # timing_info_present_flag
            r.f(32), r.f(32)
            if r.f(1):  # equal_picture_interval
                r.uvlc()
            decoder_model = r.f(1)
            if decoder_model:
                buffer_delay_bits = r.f(5) + 1
                r.f(32), r.f(5), r.f(5)
        initial_display_delay = r.f(1)
        for _ in range(r.f(5) + 1):  # operating points
            r.f(12)
            if r.f(5) > 7:
                r.f(1)
            if decoder_model and r.f(1):
                r.f(buffer_delay_bits), r.f(buffer_delay_bits), r.f(1)
            if initial_display_delay and r.f(1):
                r.f(4)
    width_bits, height_bits = r.f(4) + 1, r.f(4) + 1
    r.f(width_bits), r.f(height_bits)
    if not reduced and r.f(1):  # frame_id_numbers_present_flag
        r.f(4), r.f(3)
    r.f(1), r.f(1), r.f(1)  # 128x128 superblock, filter intra, intra edge filter
    if not reduced:
        r.f(1), r.f(1), r.f(1), r.f(1)  # interintra, masked compound, warped motion, dual filter
        order_hint = r.f(1)
        if order_hint:
            r.f(1), r.f(1)
        screen_content = SELECT if r.f(1) else r.f(1)
        if screen_content and not r.f(1):  # seq_choose_integer_mv
            r.f(1)
        if order_hint:
            r.f(3)
    r.f(1), r.f(1), r.f(1)  # superres, cdef, restoration
    high_bitdepth = r.f(1)
    if profile == 2 and high_bitdepth:
        r.f(1)
    mono = 0 if profile == 1 else r.f(1)
    if not r.f(1):  # color_description_present_flag
        return None
    primaries, transfer, matrix = r.f(8), r.f(8), r.f(8)
    if not mono and (primaries, transfer, matrix) == (1, 13, 0):
        return primaries, transfer, matrix, 1  # sRGB: full range, no flag coded
    return primaries, transfer, matrix, r.f(1)


def av01(av1c: bytes) -> str:
    """``av01.P.LLT.DD[.M.CCC.cp.tc.mc.F]`` from an ``av1C`` body."""
    if len(av1c) < 4 or av1c[0] != 0x81:
        raise ValueError("not an av1C (version 1) record")
    profile, level = av1c[1] >> 5, av1c[1] & 0x1F
    tier = "H" if av1c[2] & 0x80 else "M"
    high, twelve, mono = (av1c[2] >> 6) & 1, (av1c[2] >> 5) & 1, (av1c[2] >> 4) & 1
    depth = 12 if twelve else 10 if high else 8
    chroma = f"{(av1c[2] >> 3) & 1}{(av1c[2] >> 2) & 1}{av1c[2] & 3}"
    short = f"av01.{profile}.{level:02d}{tier}.{depth:02d}"
    header = sequence_header(av1c[4:])
    colour = colour_config(header) if header else None
    if colour is None or colour == DEFAULT_COLOUR:
        return short
    primaries, transfer, matrix, full = colour
    return f"{short}.{mono}.{chroma}.{primaries:02d}.{transfer:02d}.{matrix:02d}.{full}"


def hevc(sample_entry: str, hvcc: bytes) -> str:
    """``hvc1.…``/``hev1.…`` from an ``hvcC`` body."""
    if len(hvcc) < 13 or hvcc[0] != 1:
        raise ValueError("not an hvcC (version 1) record")
    space = ("", "A", "B", "C")[hvcc[1] >> 6]
    tier = "H" if hvcc[1] & 0x20 else "L"
    profile = hvcc[1] & 0x1F
    compatibility = int(f"{int.from_bytes(hvcc[2:6], 'big'):032b}"[::-1], 2)
    constraints = list(hvcc[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    parts = [f"{sample_entry}", f"{space}{profile}", f"{compatibility:X}", f"{tier}{hvcc[12]}",
             *(f"{b:02X}" for b in constraints)]
    return ".".join(parts)
