"""How an upload may be opened: the demuxer and protocol allowlists every ffmpeg and ffprobe run uses, and the
source as an ffmpeg input. A leaf: probing, timestamps and every encode read a source through it.
"""

from __future__ import annotations

import ffmpeg

# Only these demuxers may open an upload, and only these protocols: an upload cannot make ffmpeg follow a
# playlist or read local files.
ALLOWED_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,flv,asf,ogg,mxf,dv"
HTTP_PROTOCOLS = "http,https,tcp,tls,crypto"
FILE_PROTOCOLS = "file"


def source_input(src: str, **options: object) -> ffmpeg.nodes.FilterableStream:
    """The source as an ffmpeg input: a local file, or a presigned HTTP(S) URL read as it is encoded.

    Either way only whitelisted demuxers open it, and an HTTP read that breaks off is resumed where it stopped.
    ``options`` are further input options (e.g. ``ss``/``t`` to read one window).
    """
    if src.startswith(("http://", "https://")):
        return ffmpeg.input(src, protocol_whitelist=HTTP_PROTOCOLS, format_whitelist=ALLOWED_DEMUXERS,
                            reconnect=1, reconnect_on_network_error=1, reconnect_on_http_error="5xx",
                            reconnect_delay_max=30, rw_timeout=60_000_000, **options)
    return ffmpeg.input(src, protocol_whitelist=FILE_PROTOCOLS, format_whitelist=ALLOWED_DEMUXERS, **options)
