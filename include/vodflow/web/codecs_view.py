"""What the API says about a video's codecs: which it has, the bytes of each (the saving against H.264 is what the
video page shows) and where each codec's own CMAF master is. Codec names are the registry's
(``media.encode.codecs.CODECS``), never a string read from the catalog.
"""

from __future__ import annotations

from typing import Any

from vodflow.media.encode.codecs import CODECS, H264


def codecs_json(renditions: list[dict[str, Any]]) -> dict[str, Any]:
    """The video's codecs (the registry's names, in its order: H.264 first) and the bytes of each codec's ladder,
    ``None`` until every rendition of it is done. As each rendition recorded them: H.264's are its TS renditions'
    (audio muxed in), the other codecs' their CMAF video tracks', so compare codecs with ``codec_outputs``'s
    ``video_bytes_by_codec`` instead."""
    by_codec: dict[str, list[int | None]] = {c: [] for c in CODECS}
    for r in renditions:
        by_codec.get(r.get("codec") or H264, []).append(r["bytes"])
    return {"codecs": [c for c, sizes in by_codec.items() if sizes],
            "bytes_by_codec": {c: None if None in sizes else sum(sizes) for c, sizes in by_codec.items() if sizes}}


def codec_outputs(listed: list[dict[str, Any]]) -> dict[str, Any]:
    """Each codec's own CMAF master (``cmaf/master-<codec>.m3u8``: that codec's ladder and the shared audio, in a
    tree of more than one codec) from the version's listed outputs: ``cmaf_master_urls`` (by codec, the URL
    exactly as every other output's) and ``video_bytes_by_codec`` (that codec's CMAF video tracks: the same
    container for every codec and no audio, so the saving against H.264 is like for like)."""
    own = {c: o for c in CODECS for o in listed if (o["kind"], o["name"]) == ("cmaf", f"master-{c}")}
    return {"cmaf_master_urls": {c: o["url"] for c, o in own.items()},
            "video_bytes_by_codec": {c: o["bytes"] for c, o in own.items()}}
