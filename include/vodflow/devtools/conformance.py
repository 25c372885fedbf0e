"""Check a published HLS tree against the rules in ARCHITECTURE.md (Apple HLS Authoring Spec, RFC 8216).

Independent of how the pipeline measured its output: segments are read back with ffprobe, not with
``vodflow.media.package.mpegts``, so a bug in the production measurement shows up here. Used by the tests and the demo.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import m3u8

PROFILE_IDC = {"Constrained Baseline": 0x42, "Baseline": 0x42, "Main": 0x4D, "High": 0x64}


# Written again from the definitions, not imported from vodflow.media.package.hls: a checker that shares the
# code under test cannot catch its bugs.
def _nearest_integer(value: float) -> int:
    return int(value + 0.5)


def _average(segments: list[tuple[float, int]]) -> float:
    return sum(size for _, size in segments) * 8 / sum(duration for duration, _ in segments)


def _peak(segments: list[tuple[float, int]], target: int) -> float:
    """RFC 8216: highest bitrate over any run of contiguous segments lasting 0.5-1.5x the target duration."""
    rates = []
    for start in range(len(segments)):
        for end in range(start + 1, len(segments) + 1):
            run = segments[start:end]
            duration = sum(d for d, _ in run)
            if 0.5 * target <= duration <= 1.5 * target:
                rates.append(sum(size for _, size in run) * 8 / duration)
    return max(rates) if rates else _average(segments)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(name, bool(ok), detail))

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def passed(self) -> int:
        return sum(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def summary(self) -> str:
        return "\n".join(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in self.checks)


@dataclass
class SegmentFacts:
    duration: float  # from the video stream's first to last frame plus one frame
    start: float
    first_is_keyframe: bool
    width: int
    height: int
    profile: str
    level: int
    frame_rate: float
    has_audio: bool
    audio_codec: str | None
    keyframes: list[float]


def ffprobe_segment(path: Path) -> SegmentFacts:
    out = subprocess.run(  # noqa: S603 - fixed argument list
        ["ffprobe", "-v", "error", "-show_streams", "-show_packets", "-of", "json", str(path)],
        capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    video = next(s for s in data["streams"] if s["codec_type"] == "video")
    audio = next((s for s in data["streams"] if s["codec_type"] == "audio"), None)
    packets = [p for p in data.get("packets", []) if p["stream_index"] == video["index"]]
    num, den = (int(x) for x in video["r_frame_rate"].split("/"))
    frame = den / num
    by_dts = sorted(packets, key=lambda p: int(p.get("dts", 0)))
    pts = sorted(float(p["pts_time"]) for p in packets)
    return SegmentFacts(
        duration=(pts[-1] - pts[0] + frame) if pts else 0.0,
        start=pts[0] if pts else 0.0,
        first_is_keyframe=bool(by_dts) and "K" in by_dts[0].get("flags", ""),
        width=int(video["width"]), height=int(video["height"]), profile=str(video.get("profile")),
        level=int(video.get("level", 0)), frame_rate=num / den, has_audio=audio is not None,
        audio_codec=audio["codec_name"] if audio else None,
        keyframes=sorted(float(p["pts_time"]) for p in packets if "K" in p.get("flags", "")),
    )


def _codec_ok(declared: str, facts: SegmentFacts) -> tuple[bool, str]:
    parts = declared.split(",")
    video = next((p for p in parts if p.startswith("avc1.")), "")
    expected = f"avc1.{PROFILE_IDC.get(facts.profile, 0):02x}"
    ok = video[:7].lower() == expected and int(video[9:11] or "0", 16) == facts.level
    has_mp4a = any(p == "mp4a.40.2" for p in parts)
    ok = ok and has_mp4a == (facts.audio_codec == "aac")
    return ok, f"declared {declared}, segment is {facts.profile}@{facts.level} audio={facts.audio_codec}"


def _alternate_audio(master: m3u8.M3U8, hls_dir: Path, report: Report, targets: dict[str, int]
                     ) -> dict[str, list[list[tuple[float, int]]]]:
    """Audio renditions with their own playlists (EXT-X-MEDIA TYPE=AUDIO with a URI): group → segment sizes."""
    groups: dict[str, list[list[tuple[float, int]]]] = {}
    for media in master.media:
        if media.type != "AUDIO" or not media.uri:
            continue
        path = hls_dir / media.uri
        playlist = m3u8.load(str(path))
        report.add(f"audio {media.language}: VOD playlist with ENDLIST (8.6)",
                   playlist.playlist_type == "vod" and playlist.is_endlist)
        targets[f"audio/{media.language}"] = int(playlist.target_duration or 0)
        groups.setdefault(media.group_id, []).append(
            [(float(s.duration), (path.parent / s.uri).stat().st_size) for s in playlist.segments])
    return groups


def check_tree(hls_dir: Path, expected_duration: float | None = None, expect_audio: bool | None = None,
               probe_every: int = 1, keyframe_interval: float = 2.0, target: int = 6) -> Report:
    """Check master.m3u8 and every playlist and segment under ``hls_dir``."""
    report = Report()
    master_path = Path(hls_dir) / "master.m3u8"
    master = m3u8.load(str(master_path))
    text = master_path.read_text()
    report.add("master is a multivariant playlist", master.is_variant and len(master.playlists) > 0,
               f"{len(master.playlists)} variants")
    report.add("EXT-X-INDEPENDENT-SEGMENTS in master (9.11)", "#EXT-X-INDEPENDENT-SEGMENTS" in text)
    targets: dict[str, int] = {}
    starts: dict[str, list[float]] = {}
    alternates = _alternate_audio(master, Path(hls_dir), report, targets)
    for variant in master.playlists:
        info = variant.stream_info
        name = variant.uri.split("/")[0]
        attributes = (("BANDWIDTH", info.bandwidth), ("AVERAGE-BANDWIDTH", info.average_bandwidth),
                      ("CODECS", info.codecs), ("RESOLUTION", info.resolution), ("FRAME-RATE", info.frame_rate))
        missing = [attr for attr, value in attributes if not value]
        report.add(f"{name}: variant attributes (9.1, 9.2, 9.14, 9.15)", not missing, f"missing {missing}" if missing
                   else f"{info.resolution} {info.codecs} {info.frame_rate}")
        media_path = Path(hls_dir) / variant.uri
        media = m3u8.load(str(media_path))
        media_text = media_path.read_text()
        targets[name] = int(media.target_duration or 0)
        report.add(f"{name}: VOD playlist with ENDLIST (8.6)", media.playlist_type == "vod" and media.is_endlist)
        too_long = [s.duration for s in media.segments if _nearest_integer(s.duration) > media.target_duration]
        report.add(f"{name}: EXTINF rounded <= TARGETDURATION (RFC 8216 4.3.3.1)", not too_long, str(too_long))
        over = [s.duration for s in media.segments if s.duration > media.target_duration + 0.5]
        report.add(f"{name}: no segment over target + 0.5 s (7.7)", not over, str(over))
        facts: list[SegmentFacts] = []
        sizes: list[tuple[float, int]] = []
        for i, seg in enumerate(media.segments):
            seg_path = media_path.parent / seg.uri
            sizes.append((float(seg.duration), seg_path.stat().st_size))
            if i % probe_every == 0 or i == len(media.segments) - 1:
                facts.append(ffprobe_segment(seg_path))
        frame = 1 / facts[0].frame_rate
        gaps = [b - a for f in facts for a, b in itertools.pairwise(f.keyframes)]
        report.add(f"{name}: an IDR every {keyframe_interval:g} s (1.13)",
                   bool(gaps or len(media.segments) == 1) and all(g <= keyframe_interval + frame + 1e-3 for g in gaps),
                   f"longest keyframe interval {max(gaps, default=0):.3f} s")
        extinf_sum = sum(float(s.duration) for s in media.segments)
        report.add(f"{name}: TARGETDURATION {target} s (7.5)", media.target_duration == target
                   or extinf_sum < target, f"TARGETDURATION {media.target_duration}")
        not_key = [i for i, f in enumerate(facts) if not f.first_is_keyframe]
        report.add(f"{name}: every segment starts with a keyframe (7.4)", not not_key, f"segments {not_key}")
        starts[name] = [round(f.start, 3) for f in facts]
        first = facts[0]
        declared_res = tuple(info.resolution or (0, 0))
        report.add(f"{name}: RESOLUTION matches the stream", declared_res == (first.width, first.height),
                   f"declared {declared_res}, stream {first.width}x{first.height}")
        report.add(f"{name}: even dimensions, <= 60 fps", first.width % 2 == 0 and first.height % 2 == 0
                   and first.frame_rate <= 60.001, f"{first.width}x{first.height}@{first.frame_rate:.3f}")
        report.add(f"{name}: FRAME-RATE matches the stream", abs((info.frame_rate or 0) - first.frame_rate) < 0.01,
                   f"declared {info.frame_rate}, stream {first.frame_rate:.3f}")
        report.add(f"{name}: CODECS match the stream", *_codec_ok(info.codecs or "", first))
        extinf_total = sum(float(s.duration) for s in media.segments)
        if probe_every == 1:
            real_total = sum(f.duration for f in facts)
            report.add(f"{name}: EXTINF sum within one frame of the real duration (8.1)",
                       abs(extinf_total - real_total) <= 1 / first.frame_rate + 1e-3,
                       f"EXTINF {extinf_total:.3f} s, stream {real_total:.3f} s")
        if expected_duration is not None:
            report.add(f"{name}: duration within 0.5 s of the source", abs(extinf_total - expected_duration) <= 0.5,
                       f"{extinf_total:.3f} s vs source {expected_duration:.3f} s")
        if expect_audio is not None:
            report.add(f"{name}: audio present iff the source has audio", first.has_audio == expect_audio,
                       f"audio={first.has_audio}")
        target = int(media.target_duration or 0)
        peak, average = _peak(sizes, target), _average(sizes)
        # RFC 8216 4.3.4.2: the largest sum over what can play together, the costliest alternate audio included.
        group = alternates.get(info.audio or "", [])
        peak += max((_peak(a, target) for a in group), default=0)
        average += max((_average(a) for a in group), default=0)
        report.add(f"{name}: BANDWIDTH within 10% of measured peak (1.27)",
                   abs((info.bandwidth or 0) - peak) <= 0.1 * peak, f"declared {info.bandwidth}, measured {peak}")
        report.add(f"{name}: AVERAGE-BANDWIDTH within 10% of measured average (1.26)",
                   abs((info.average_bandwidth or 0) - average) <= 0.1 * average,
                   f"declared {info.average_bandwidth}, measured {average}")
        report.add(f"{name}: peak <= 2x average (1.30)", peak <= 2 * average, f"peak {peak}, average {average}")
        report.add(f"{name}: INDEPENDENT-SEGMENTS", "#EXT-X-INDEPENDENT-SEGMENTS" in media_text)
    report.add("same TARGETDURATION in every playlist (8.2)", len(set(targets.values())) == 1, str(targets))
    reference = next(iter(starts.values()), [])
    misaligned = [n for n, s in starts.items() if len(s) != len(reference) or
                  any(abs(a - b) > 0.002 for a, b in zip(s, reference, strict=False))]
    report.add("segment boundaries aligned across variants (8.22)", not misaligned, f"misaligned: {misaligned}")
    _check_iframes(master, Path(hls_dir), report)
    return report


def _check_iframes(master: m3u8.M3U8, hls_dir: Path, report: Report) -> None:
    names = {p.uri.split("/")[0] for p in master.playlists}
    with_iframes = {p.uri.split("/")[0] for p in master.iframe_playlists}
    report.add("an I-frame playlist per variant (6.1)", names == with_iframes, f"{sorted(with_iframes)}")
    for iframe_ref in master.iframe_playlists:
        path = hls_dir / iframe_ref.uri
        playlist = m3u8.load(str(path))
        name = iframe_ref.uri.split("/")[0]
        report.add(f"{name}: EXT-X-I-FRAMES-ONLY (6.8)", bool(playlist.is_i_frames_only))
        bad: list[str] = []
        for seg in playlist.segments[:3]:
            length, _, offset = seg.byterange.partition("@")
            data = (path.parent / seg.uri).read_bytes()
            chunk = data[int(offset): int(offset) + int(length)]
            if int(offset) % 188 or not chunk or chunk[0] != 0x47:
                bad.append(f"{seg.uri}@{offset}: not on a TS packet")
                continue
            with tempfile.NamedTemporaryFile(suffix=".ts") as tmp:
                tmp.write(data[:376] + chunk)  # PAT + PMT, then the I-frame's packets
                tmp.flush()
                facts = ffprobe_segment(Path(tmp.name))
            if not facts.first_is_keyframe:
                bad.append(f"{seg.uri}@{offset}: no keyframe")
        report.add(f"{name}: I-frame byte ranges hold keyframes", not bad, "; ".join(bad))
