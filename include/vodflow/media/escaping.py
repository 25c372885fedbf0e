"""One escaping layer for every string from an upload's metadata or from a request that we write into something
another program parses: HLS attributes, DASH XML, WebVTT cue text, Content-Disposition, mail headers. Pure.

Two steps, on purpose. Metadata is cleaned when it is read (``display_name``, ``language_tag``: the track model
and the caption list call them), and every writer passes what it writes through its format's function again
(``hls_name``, ``hls_language``, ``hls_uri``, ``vtt_cue_text``, ``content_disposition``), so a string that missed
the first step (a request stored before a rule, a new caller) still cannot leave its attribute, line or header.
The XML of the MPD is written by ``xml.dom.minidom``, which escapes attribute values; its ``lang`` goes through
``language_tag`` all the same.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Callable, Iterable
from urllib.parse import quote

MAX_NAME_CHARS = 64  # a track's NAME: what a player's menu shows
MAX_LANGUAGE_CHARS = 35  # RFC 5646 4.4.1: tags up to 35 characters must be supported
UNDETERMINED = "und"
# The end of the string, in Python and in JavaScript alike: Python's ``$`` also matches before a final "\n", so
# "en\n" would pass a ``^…$`` pattern (jsonschema's ``pattern`` is ``re.search``); ``\Z`` is no JavaScript regex.
END = r"(?![\s\S])"
# A well-formed BCP 47 tag as HLS LANGUAGE carries it (RFC 5646 2.1, the common subset: a 2-3 letter language
# subtag and 1-8 character subtags). Also a JavaScript regex (Airflow's trigger form checks it).
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*" + END
_LANGUAGE = re.compile(LANGUAGE_PATTERN)
# Bidirectional embeddings, overrides and isolates: invisible, and able to make a name read backwards.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def one_line(text: object, limit: int) -> str:
    """Printable text on one line: line breaks and tabs become spaces, other control characters, lone surrogates
    and bidi overrides are dropped, runs of spaces folded; at most ``limit`` characters (never mid-pair)."""
    kept = []
    for char in unicodedata.normalize("NFC", str(text)):
        if char in _LINE_BREAKS or char == "\t":
            kept.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cs") or char in _BIDI_CONTROLS:
            continue
        else:
            kept.append(char)
    return re.sub(r"\s+", " ", "".join(kept)).strip()[:limit].rstrip()


def display_name(text: object, fallback: str = "", limit: int = MAX_NAME_CHARS) -> str:
    """A track's name as an HLS quoted-string may hold it (RFC 8216 4.2: no ``"``, CR or LF): one line, ``"``
    replaced by ``'``, and ``#`` by the fullwidth ``＃``: hls.js finds ``#EXT-X-STREAM-INF:`` and ``#EXT-X-MEDIA:``
    anywhere in a line, inside a quoted NAME too, and would add what follows as a variant; ``fallback`` when
    nothing is left."""
    return one_line(str(text).replace('"', "'").replace("#", "\uff03"), limit) or fallback


def language_tag(raw: object) -> str:
    """``raw`` if it is a well-formed BCP 47 tag, else ``und`` (never a string of another shape)."""
    code = str(raw or "").strip()
    return code if len(code) <= MAX_LANGUAGE_CHARS and _LANGUAGE.fullmatch(code) else UNDETERMINED


def numbered_apart(names: Iterable[str], numbered: Callable[[str, int], str]) -> list[str]:
    """The names in order, a repeated one made ``numbered(name, n)`` for the first n ≥ 2 not yet taken."""
    taken: set[str] = set()
    unique = []
    for name in names:
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = numbered(name, n)
        taken.add(candidate)
        unique.append(candidate)
    return unique


def unique_display_names(names: Iterable[str]) -> list[str]:
    """The names in order, a repeated one numbered (``English``, ``English (2)``): RFC 8216 4.3.4.1 wants every
    NAME of a group different."""
    return numbered_apart(names, lambda name, n: name[: MAX_NAME_CHARS - len(f" ({n})")].rstrip() + f" ({n})")


# Writers ---------------------------------------------------------------------------------------------------------

def hls_name(text: object) -> str:
    """NAME as written: whatever reached the writer, made a quoted-string's content."""
    return display_name(text, fallback="Track")


def hls_language(text: object) -> str:
    return language_tag(text)


def hls_uri(uri: str) -> str:
    """A URI we write into a playlist: a relative path inside the version's tree, or an error of ours (a name made
    from metadata that escaped the track model must fail the publish, not redirect players)."""
    path = posixpath.normpath(uri)
    if (not uri or "://" in uri or uri.startswith("/") or path.startswith("..") or any(c in uri for c in '"\r\n')
            or one_line(uri, len(uri)) != uri):
        raise ValueError(f"refusing to write {uri!r} into a playlist: not a path inside the tree")
    return uri


def vtt_cue_text(text: str) -> str:
    """A cue's payload as WebVTT may hold it: no blank line (it would end the cue and start a block of its own),
    no ``-->`` (a line with it is read as the next cue's timing; WebVTT's ``&gt;`` escape shows the same), no
    control characters but tabs."""
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = "".join(c for c in line if c == "\t" or unicodedata.category(c) not in ("Cc", "Cs"))
        if line.strip():
            lines.append(line.replace("-->", "--&gt;"))
    return "\n".join(lines)


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the UTF-8 name (RFC 6266 4.3, RFC 5987): the fallback holds
    only letters, digits, spaces and ``._()-`` (no quote, backslash, ``%`` or control character to misread), the
    UTF-8 name is percent-encoded whole, so neither can end the header or add a parameter."""
    name = one_line(filename, 200)
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9 ._()-]+", "_", ascii_name).strip(" ")
    if not ascii_name.strip("._ ") or ascii_name.startswith("."):  # a title with no ASCII letters at all
        ascii_name = "video" + ascii_name.lstrip("_ ")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name or ascii_name, safe='')}"


def vtt_plain_text(text: str) -> str:
    """Plain text (a recogniser's words, never markup) as a WebVTT cue payload: ``&``, ``<`` and ``>`` as the
    character references WebVTT defines, then ``vtt_cue_text``'s rules."""
    return vtt_cue_text(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
