"""What the API says about a video's codecs: which it has, the bytes of each (the saving against H.264 is what the
video page shows) and where each codec's own CMAF master is. Codec names are the registry's
(``media.encode.codecs.CODECS``), never a string read from the catalog.
"""

from __future__ import annotations

from typing import Any

from vodflow.media.encode.codecs import CODECS, H264


def codecs_json(renditions: list[dict[str, Any]]) -> dict[str, Any]:
    """The video's codecs (the registry's names, in its order: H.264 first) and the bytes of each codec's
    renditions so far (``None`` until one of them is done): the saving against H.264 is what the page shows.
    H.264's bytes are its TS renditions' (audio muxed in), the other codecs' their CMAF video tracks' (they share
    the CMAF tree's audio tracks)."""
    present = {r.get("codec") or H264 for r in renditions}
    codecs = [c for c in CODECS if c in present]
    done: dict[str, int | None] = dict.fromkeys(codecs)
    for r in renditions:
        codec = r.get("codec") or H264
        if r["bytes"] is not None and codec in done:
            done[codec] = (done[codec] or 0) + r["bytes"]
    return {"codecs": codecs, "bytes_by_codec": done}


def codec_masters(urls: dict[tuple[str, str], str]) -> dict[str, str]:
    """Each codec's own CMAF master (``cmaf/master-<codec>.m3u8``, one codec's ladder and the shared audio), by
    codec, from the version's outputs (kind, name) → URL: only those the published tree has."""
    return {c: urls[("cmaf", f"master-{c}")] for c in CODECS if ("cmaf", f"master-{c}") in urls}
