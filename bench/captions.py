"""Automatic captions' cost: recognition's real-time factor and CPU seconds per minute of speech, its share of a
1080p video's total CPU (the same video's ladder encoded in the same run by the pipeline's encoder), the peak
memory of the recognising process, and the word error rate on the known text. Prints, asserts nothing.

The source is espeak-ng reading a known text (``vodflow.devtools.speech_sample``; ``--repeat`` times over) under a
1080p picture. Recognition runs as a work item does (``media.speech``: the main track decoded to 16 kHz mono, the
model loaded once, windows, VAD, int8 on the CPU), in a child process of its own so its peak RSS is its own; the
model load is timed apart (a worker pays it once per process).

    .venv/bin/python bench/captions.py [--repeat 2] [--threads 0] [--beam 5] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchstack import children_cpu

from vodflow.devtools.speech_sample import SENTENCES, make_spoken_video, word_error_rate
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.renditions import encode_renditions
from vodflow.media.options import EncoderSettings
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe
from vodflow.media.speech.recognise import resolve_model

CHILD = r"""
import json, os, resource, sys, time
from pathlib import Path
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe
from vodflow.media.speech.cues import build_cues
from vodflow.media.speech.listen import decode_speech
from vodflow.media.speech.recognise import Recogniser, load_model, recognise

src, work, model, threads, beam = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
path = Path(src)
source = probe(src, path.stat().st_size, path.read_bytes()[:4096], protocols=FILE_PROTOCOLS)
def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
def children():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime
pcm = os.path.join(work, "speech.pcm")
wall = time.monotonic()
decode_speech(src, pcm, source, 600)
decode = {"wall": time.monotonic() - wall, "cpu": children()}
wall, before = time.monotonic(), cpu()
load_model(model, threads)
load = {"wall": time.monotonic() - wall, "cpu": cpu() - before}
recogniser = Recogniser(model=model, threads=threads, beam_size=beam)
wall, before = time.monotonic(), cpu()
transcript = recognise(pcm, recogniser)
cues = build_cues(transcript)
rec = {"wall": time.monotonic() - wall, "cpu": cpu() - before}
print(json.dumps({"decode": decode, "load": load, "recognise": rec, "speech_seconds": transcript.speech_seconds,
                  "audio_seconds": transcript.duration, "cues": len(cues),
                  "text": " ".join(c.text.replace("\n", " ") for c in cues),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2, help="times the text is read (once: ~38 s)")
    parser.add_argument("--threads", type=int, default=0, help="CTranslate2 CPU threads (0: its default)")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--model", default="", help="model directory (default: the captions_model default)")
    args = parser.parse_args()
    model = resolve_model(args.model)
    with tempfile.TemporaryDirectory(prefix="bench-captions-") as tmp:
        work = Path(tmp)
        sample = make_spoken_video(str(work / "talk.mp4"), SENTENCES * args.repeat, size="1920x1080")
        source = probe(sample.path, os.path.getsize(sample.path), Path(sample.path).read_bytes()[:4096],
                       protocols=FILE_PROTOCOLS)
        child = subprocess.run([sys.executable, "-c", CHILD, sample.path, tmp, model, str(args.threads),  # noqa: S603
                                str(args.beam)], capture_output=True, text=True, check=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
        found = json.loads(child.stdout.strip().splitlines()[-1])
        ladder = plan_ladder(source.width, source.height, source.fps, source.has_audio)
        wall, before = time.monotonic(), children_cpu()
        encode_renditions(sample.path, str(work / "hls"), source, list(ladder.renditions), EncoderSettings())
        encode = {"wall": time.monotonic() - wall, "cpu": children_cpu() - before}
    speech_minutes = found["speech_seconds"] / 60
    rec, decode, load = found["recognise"], found["decode"], found["load"]
    captions_cpu = rec["cpu"] + decode["cpu"]
    print(f"source: {sample.duration:.1f} s 1080p, {found['speech_seconds']:.1f} s of speech after VAD, "
          f"model {model}, beam {args.beam}, threads {args.threads or 'default'}, {os.cpu_count()} cores")
    print(f"decode to 16 kHz mono: {decode['wall']:.2f} s wall, {decode['cpu']:.2f} CPU s")
    print(f"model load (once per worker process): {load['wall']:.2f} s wall, {load['cpu']:.2f} CPU s")
    print(f"recognition: {rec['wall']:.2f} s wall (real-time factor {rec['wall'] / sample.duration:.3f}), "
          f"{rec['cpu']:.2f} CPU s = {rec['cpu'] / speech_minutes:.1f} CPU s per minute of speech")
    print(f"peak RSS of the recognising process: {found['peak_rss_mb']:.0f} MB")
    rungs = ", ".join(r.name for r in ladder.renditions)
    print(f"ladder encode ({rungs}): {encode['wall']:.2f} s wall, {encode['cpu']:.2f} CPU s")
    print(f"captions' share of the video's CPU (decode + recognition) / (that + encode): "
          f"{100 * captions_cpu / (captions_cpu + encode['cpu']):.1f} %")
    print(f"cues: {found['cues']}; WER against the known text: "
          f"{100 * word_error_rate(' '.join(SENTENCES * args.repeat), found['text']):.1f} %")


if __name__ == "__main__":
    main()
