"""What the API says about a video's codecs: which it has, the bytes of each (the saving against H.264 is what the
video page shows) and where each codec's own CMAF master is. Codec names are the registry's
(``media.encode.codecs.CODECS``), never a string read from the catalog.
"""

from __future__ import annotations

from typing import Any

from vodflow.media.encode.codecs import CODECS, H264


def codecs_json(renditions: list[dict[str, Any]]) -> dict[str, Any]:
    """The video's codecs (the registry's names, in its order: H.264 first) and the bytes of each codec's ladder,
    ``None`` until every rendition of it is done (a part would show a saving that is not there). H.264's bytes
    are its TS renditions' (audio muxed in), the other codecs' their CMAF video tracks' as the encode recorded
    them."""
    by_codec: dict[str, list[int | None]] = {c: [] for c in CODECS}
    for r in renditions:
        by_codec.get(r.get("codec") or H264, []).append(r["bytes"])
    return {"codecs": [c for c, sizes in by_codec.items() if sizes],
            "bytes_by_codec": {c: None if None in sizes else sum(sizes) for c, sizes in by_codec.items() if sizes}}


def codec_masters(urls: dict[tuple[str, str], str]) -> dict[str, str]:
    """Each codec's own CMAF master (``cmaf/master-<codec>.m3u8``, one codec's ladder and the shared audio), by
    codec, from the version's outputs (kind, name) → URL: only those the published tree has."""
    return {c: urls[("cmaf", f"master-{c}")] for c in CODECS if ("cmaf", f"master-{c}") in urls}
