"""Real encoded sample media, generated with ffmpeg, for the demo, the tests and the benchmarks.

The picture is ffmpeg's testsrc2 (moving shapes, a counter, colour bars) with light temporal noise so it
costs an encoder roughly what camera footage does; the sound is a tone with a beat so gaps are audible.
"""

from __future__ import annotations

import os
import struct
import subprocess
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class SampleSpec:
    width: int = 1920
    height: int = 1080
    duration: float = 20.0
    fps: str = "30"
    audio: bool = True
    audio_seconds: float | None = None  # an audio track shorter or longer than the picture
    noise: int = 6
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    extra_output_args: tuple[str, ...] = ()


def make_sample(path: str, spec: SampleSpec = SampleSpec()) -> str:
    picture = f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps}"
    if spec.noise:
        picture += f",noise=alls={spec.noise}:allf=t"
    picture_length = ["-t", f"{spec.duration}"] if spec.audio_seconds else []
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi", *picture_length, "-i", picture]
    if spec.audio:
        audio_length = ["-t", f"{spec.audio_seconds}"] if spec.audio_seconds else []
        args += ["-f", "lavfi", *audio_length, "-i", "sine=frequency=440:beep_factor=4:sample_rate=48000"]
    args += ["-t", f"{max(spec.duration, spec.audio_seconds or 0)}", "-c:v", spec.codec, "-pix_fmt", spec.pix_fmt]
    if spec.codec == "libx264":
        # About what a phone or camera uploads: ~12 Mbps at 1080p30, scaled by pixel rate.
        kbps = max(300, int(12000 * spec.width * spec.height / (1920 * 1080) * float(Fraction(spec.fps)) / 30))
        # Keyframes every 2 s, as phones and cameras write them (x264's default would be every 250 frames).
        args += ["-preset", "ultrafast", "-b:v", f"{kbps}k", "-maxrate", f"{kbps * 3 // 2}k",
                 "-bufsize", f"{kbps * 2}k", "-g", str(round(2 * float(Fraction(spec.fps))))]
    if spec.audio:
        args += ["-c:a", "aac", "-b:a", "160k", "-ac", "2"]
    args += [*spec.extra_output_args, path]
    subprocess.run(args, check=True)  # noqa: S603 - fixed argument list
    return path


# The mastering display and content light of ``make_hdr_sample``'s HDR10 source, as x265 writes them: a P3-D65
# 1000-nit display (0.005 nits black), MaxCLL 1000, MaxFALL 400: what HDR10 camera and studio masters carry.
HDR10_MASTER_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
HDR10_MAX_CLL = "1000,400"


def make_hdr_sample(path: str, transfer: str = "smpte2084", width: int = 640, height: int = 360,
                    duration: float = 2.0, fps: str = "30", audio: bool = True) -> str:
    """An HDR source as a camera or phone writes one: HEVC Main 10 in MP4, BT.2020, ``transfer`` ``smpte2084``
    (HDR10: with the mastering display and content light level in the bitstream's SEI, as x265 writes them) or
    ``arib-std-b67`` (HLG, as phones record it: no static metadata). The picture is testsrc2 placed in that
    signal (its BT.709 white at 100 nits for PQ), so a tone-map or a wrong conversion shows in its luma."""
    pq = transfer == "smpte2084"
    picture = (f"testsrc2=size={width}x{height}:rate={fps},noise=alls=6:allf=t,"
               f"zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t={transfer}:m=bt2020nc:p=bt2020:r=tv:npl=100,"
               "format=yuv420p10le")
    params = f"log-level=error:keyint={round(2 * float(Fraction(fps)))}:colorprim=bt2020:transfer={transfer}" \
             ":colormatrix=bt2020nc"
    if pq:
        params += f":hdr10=1:master-display={HDR10_MASTER_DISPLAY}:max-cll={HDR10_MAX_CLL}"
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i", picture]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    args += ["-t", f"{duration}", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", params,
             "-color_primaries", "bt2020", "-color_trc", transfer, "-colorspace", "bt2020nc", "-color_range", "tv",
             "-tag:v", "hvc1"]
    if audio:
        args += ["-c:a", "aac", "-b:a", "128k", "-ac", "2"]
    subprocess.run([*args, path], check=True)  # noqa: S603 - fixed argument list
    return path


FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def make_lecture_sample(path: str, width: int = 1280, height: int = 720, duration: float = 20.0,
                        fps: str = "30") -> str:
    """Easy content, as a recorded lecture is: slides of text that change every 5 s, and a small moving
    picture in a corner where the speaker would be."""
    line_h = height // 12
    slide = f"color=c=white:size={width}x{height}:rate={fps}"
    topics = ["chunked encoding", "keyframe grid", "aligned renditions", "one join", "per title ladder"]
    for number in range(int(duration // 5) + 1):  # a new slide every 5 s
        shown = f":enable='between(t,{5 * number},{5 * number + 5})'"
        for line in range(4):
            y = line_h * (2 + 2 * line)
            if _has_font():
                text = f"Slide {number + 1} {topics[(number + line) % len(topics)]}"
                slide += (f",drawtext=fontfile={FONT}:text='{text}':fontcolor=black:fontsize={line_h * 2 // 3}"
                          f":x={width // 12}:y={y}{shown}")
            else:  # bars where the text would be
                slide += (f",drawbox=x={width // 12}:y={y}:w={width // (2 + (number + line) % 3)}:h={line_h // 2}"
                          f":c=black:t=fill{shown}")
    speaker = f"testsrc2=size={width // 4 // 2 * 2}x{height // 4 // 2 * 2}:rate={fps},noise=alls=4:allf=t"
    graph = f"{slide}[slide];{speaker}[speaker];[slide][speaker]overlay=x=W-w-{width // 40}:y=H-h-{height // 40}[out0]"
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i", graph,
            "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000", "-t", f"{duration}",
            "-c:v", "libx264", "-preset", "ultrafast", "-qp", "10", "-pix_fmt", "yuv420p",
            "-g", str(round(2 * float(Fraction(fps)))), "-c:a", "aac", "-b:a", "128k", "-ac", "2", path]
    subprocess.run(args, check=True)  # noqa: S603 - fixed argument list
    return path


def make_action_sample(path: str, width: int = 1280, height: int = 720, duration: float = 20.0,
                       fps: str = "30") -> str:
    """Hard content: full-frame motion with heavy grain, as sport or a handheld night shot costs an encoder."""
    return make_sample(path, SampleSpec(width, height, duration, fps, audio=True, noise=30))


def make_camera_sample(path: str, width: int = 1280, height: int = 720, duration: float = 20.0,
                       fps: str = "30") -> str:
    """Camera-like content: a textured scene (a fractal's fine detail) zooming in, as a camera moves, with sensor
    grain over it: detail, motion and noise everywhere."""
    scene = (f"mandelbrot=size={width // 2}x{height // 2}:rate={fps}:maxiter=64:start_scale=1.5:end_scale=0.6"
             f":end_pts={duration * 10},scale={width}:{height}:flags=bicubic,noise=alls=14:allf=t,format=yuv420p")
    return _lavfi_sample(path, scene, duration, fps)


def make_animation_sample(path: str, width: int = 1280, height: int = 720, duration: float = 20.0,
                          fps: str = "30") -> str:
    """Animation-like content: flat colours and sharp edges, in motion (ffmpeg's moving test pattern with fast
    shapes and line art over it, no grain), as a cartoon or a motion-graphics title is."""
    scene = (f"testsrc2=size={width}x{height}:rate={fps},"
             f"drawbox=x='mod(t*{width // 2},{width})':y={height // 5}:w={width // 5}:h={height // 4}"
             ":c=0xf0c020:t=fill,"
             f"drawbox=x='{width // 2}+{width // 4}*sin(t)':y='{height // 2}+{height // 5}*cos(t*1.3)':"
             f"w={width // 8}:h={width // 8}:c=0xe03030:t=fill,"
             f"drawgrid=w={width // 16}:h={height // 9}:t=2:c=0x102040@0.6,format=yuv420p")
    return _lavfi_sample(path, scene, duration, fps)


def _lavfi_sample(path: str, picture: str, duration: float, fps: str) -> str:
    """A generated picture with a tone, encoded at high quality (CRF 14: grain at qp 10 would be ~400 Mbps)."""
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i", picture,
            "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=48000", "-t", f"{duration}",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "14", "-pix_fmt", "yuv420p",
            "-g", str(round(2 * float(Fraction(fps)))), "-c:a", "aac", "-b:a", "128k", "-ac", "2", path]
    subprocess.run(args, check=True)  # noqa: S603 - fixed argument list
    return path


def _has_font() -> bool:
    return os.path.exists(FONT)


def make_sync_sample(path: str, duration: float = 20.0, fps: str = "30000/1001", audio_lead: float = 0.3,
                     width: int = 320, height: int = 180) -> str:
    """A lip-sync test source, as broadcast engineers make one: a white flash frame and a 1 kHz beep at every
    whole second, both at exactly the flash frame's instant, and an audio track that starts ``audio_lead``
    seconds before the video (the video stream's first timestamp is ``audio_lead``); a negative ``audio_lead``:
    the video starts first, and the audio stream's first timestamp is ``-audio_lead``."""
    rate = Fraction(fps)
    video_start, audio_start = max(audio_lead, 0.0), max(-audio_lead, 0.0)
    # The flash frame of second k is the first frame at or after k, frame ceil((k - video start) × fps); the beep
    # starts at that frame's time. (A small epsilon keeps a frame exactly on a second from being lost to
    # rounding.) The audio's own clock t is the timeline's t + audio start. No flash in second 0: its beep would
    # fall before the sound starts.
    per_frame = f"{rate.denominator}/{rate.numerator}"
    frame_of = f"ceil((%s-{video_start})*{rate.numerator}/{rate.denominator}-1e-6)"
    now = f"(t+{audio_start})"
    flash_at = f"({video_start}+{frame_of % f'floor({now}+1e-6)'}*{per_frame})"
    beep = f"if(between({now}-{flash_at}\\,0\\,0.1)\\,0.8*sin(2*PI*1000*t)\\,0)"
    second = f"floor({video_start}+n*{per_frame}+1e-6)"  # the second whose flash this frame may be
    # Grain, so frames cost what camera frames do (a flat picture makes I-frames of a few bytes).
    picture = (f"color=c=0x202020:size={width}x{height}:rate={fps},"
               f"drawbox=c=white:t=fill:enable='eq(n\\,{frame_of % second})*gte({second}\\,1)',"
               "noise=alls=24:allf=t")
    base = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    video, audio = f"{path}.video.mp4", f"{path}.audio.wav"
    try:
        subprocess.run([*base, "-f", "lavfi", "-i", picture, "-t", f"{duration - video_start}",  # noqa: S603
                        "-c:v", "libx264", "-preset", "ultrafast", "-g", str(round(2 * float(rate))),
                        "-pix_fmt", "yuv420p", video], check=True)
        subprocess.run([*base, "-f", "lavfi", "-i", f"aevalsrc={beep}:s=48000:c=stereo",  # noqa: S603
                        "-t", f"{duration - audio_start}", audio], check=True)
        # lavfi inputs ignore -itsoffset; a file's timestamps do not.
        subprocess.run([*base, "-itsoffset", f"{video_start}", "-i", video, "-itsoffset", f"{audio_start}",  # noqa: S603
                        "-i", audio, "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "128k",
                        path], check=True)
    finally:
        for scratch in (video, audio):
            if os.path.exists(scratch):
                os.remove(scratch)
    return path


def make_restarting_ts(path: str, capture_seconds: float = 5.0) -> str:
    """Two captures concatenated into one MPEG-TS, as a recorder that was stopped and started again writes them:
    the second restarts its timestamps, so ffprobe's duration is one capture's and the clock jumps back."""
    captures = [f"{path}.{i}.ts" for i in range(2)]
    try:
        for capture in captures:
            make_sample(capture, SampleSpec(640, 360, capture_seconds, "30", audio=True, noise=4,
                                            extra_output_args=("-f", "mpegts")))
        with open(path, "wb") as out:
            for capture in captures:
                with open(capture, "rb") as part:
                    out.write(part.read())
    finally:
        for capture in captures:
            if os.path.exists(capture):
                os.remove(capture)
    return path


def make_two_language_sample(path: str, duration: float = 14.0) -> str:
    """An MKV with two audio tracks, English first and French second, the French one flagged default (as a
    dubbed release is): the English track is a quiet 440 Hz tone, the French one a loud 880 Hz tone, so the
    tests can tell which track ended up where."""
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30,noise=alls=4:allf=t",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000,volume=0.05",
            "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000,volume=0.8",
            "-map", "0:v", "-map", "1:a", "-map", "2:a", "-t", f"{duration}",
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2",
            "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra",
            "-disposition:a:0", "0", "-disposition:a:1", "default", path]
    subprocess.run(args, check=True)  # noqa: S603 - fixed argument list
    return path


SAMPLE_SRT = """1
00:00:01,000 --> 00:00:02,500
Hello, <i>world</i>.

2
00:00:05,500 --> 00:00:07,250
A cue across the 6 s segment boundary.

3
00:00:10,000 --> 00:00:11,000
The last one.
"""


def make_subtitled_sample(path: str, duration: float = 14.0, srt: str = SAMPLE_SRT, audio: bool = True) -> str:
    """An MKV with a picture, a sound (unless ``audio`` is false) and an English SRT subtitle track."""
    subs = f"{path}.srt"
    with open(subs, "w", encoding="utf-8") as out:
        out.write(srt)
    try:
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",  # noqa: S603
                        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30,noise=alls=4:allf=t",
                        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-i", subs,
                        "-map", "0:v", *(["-map", "1:a", "-c:a", "aac"] if audio else []), "-map", "2:s",
                        "-t", f"{duration}", "-c:v", "libx264", "-preset", "ultrafast", "-g", "60",
                        "-pix_fmt", "yuv420p", "-c:s", "srt", "-metadata:s:s:0", "language=eng", path], check=True)
    finally:
        os.remove(subs)
    return path


def make_still_picture_sample(path: str, duration: float = 20.0, picture_seconds: float = 10.0,
                              width: int = 640, height: int = 360, pictures: int | None = None) -> str:
    """A music upload as people make one: a still picture that changes every ``picture_seconds`` (0.1 fps by
    default: the container says so) over ``duration`` s of sound. ``pictures``: only that many, the video stream
    then ending ``picture_seconds`` after the last one starts (one picture: a 10 s video stream under 20 s of
    sound)."""
    base = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    video = f"{path}.video.mp4"
    length = ["-frames:v", str(pictures)] if pictures else ["-t", f"{duration}"]
    try:
        subprocess.run([*base, "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=1/{picture_seconds:g}",  # noqa: S603
                        *length, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "stillimage",
                        "-pix_fmt", "yuv420p", video], check=True)
        subprocess.run([*base, "-i", video, "-f", "lavfi", "-t", f"{duration}",  # noqa: S603
                        "-i", "sine=frequency=440:beep_factor=4:sample_rate=48000", "-map", "0:v", "-map", "1:a",
                        "-c:v", "copy", "-c:a", "aac", "-b:a", "128k", "-ac", "2", path], check=True)
    finally:
        if os.path.exists(video):
            os.remove(video)
    return path


def make_broadcast_ts(path: str, duration: float = 75.0, fps: str = "30000/1001", audio_lead: float = 0.3,
                      start: float = 10.0) -> str:
    """A lip-sync source (``make_sync_sample``: 2 s GOPs, audio ``audio_lead`` s ahead of the video, or behind it
    when negative) as cut from a broadcast: MPEG-TS whose clock starts ``start`` s in (plus the muxer's own
    delay), not at 0."""
    mp4 = f"{path}.sync.mp4"
    try:
        make_sync_sample(mp4, duration, fps, audio_lead=audio_lead)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", mp4,  # noqa: S603
                        "-map", "0", "-c", "copy", "-f", "mpegts", "-output_ts_offset", f"{start}", path], check=True)
    finally:
        if os.path.exists(mp4):
            os.remove(mp4)
    return path


def make_decode_bomb(path: str, width: int = 8192, height: int = 8192, fps: int = 60,
                     claimed_seconds: float = 3.5 * 3600) -> str:
    """A small file that asks for enormous decoding: two black ``width``x``height`` frames in Matroska at
    ``fps``, whose header says the video lasts ``claimed_seconds`` (the Segment's Duration rewritten, as a
    crafted upload would; a real one of the same size on disk only needs a long, nearly empty stream)."""
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",  # noqa: S603
                    "-f", "lavfi", "-i", f"color=c=black:size={width}x{height}:rate={fps}", "-frames:v", "2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "matroska", path],
                   check=True)
    with open(path, "rb") as written:
        data = bytearray(written.read())
    duration_element = bytes.fromhex("4489") + b"\x88"  # EBML ID Duration, an 8-byte float (milliseconds)
    at = data.find(duration_element)
    if at < 0:
        raise RuntimeError("no Segment Duration element to rewrite")
    data[at + 3:at + 11] = struct.pack(">d", claimed_seconds * 1000.0)
    with open(path, "wb") as out:
        out.write(data)
    return path
