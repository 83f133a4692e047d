"""Audio: render a score with a SoundFont and write a WAV file.

The default renderer is étude's SoundFont sample player (`etude.audio.soundfont`), which honours
each zone's root key; symusic's synthesizer ("symusic") is faster but, in symusic 0.5.9, ignores
the overriding root key and plays the shipped General MIDI piano up to an octave and more off
pitch (C4 at 830 Hz instead of 261.6 Hz).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from symusic import Score, Synthesizer

from etude.audio.soundfont import load_soundfont, render_notes
from etude.errors import ConfigError, InputError

PEAK = 0.89  # normalised peak (about -1 dBFS): loud, never clipped
RENDERERS = ("sampler", "symusic")


def default_soundfont() -> Path:
    """The General MIDI SoundFont that ships inside pretty_midi (TimGM6mb.sf2)."""
    import pretty_midi

    return Path(os.path.dirname(pretty_midi.__file__)) / "TimGM6mb.sf2"


def render(
    score: Score, soundfont: Path | None = None, sample_rate: int = 44100, renderer: str = "sampler"
) -> np.ndarray:
    """Stereo float32 audio (2, samples) of every note as acoustic grand piano, peak-normalised
    to PEAK; silence stays silent."""
    sf = Path(soundfont) if soundfont else default_soundfont()
    if not sf.exists():
        raise InputError(f"SoundFont not found: {sf}")
    if renderer == "sampler":
        notes = [(n.time, n.duration, n.pitch, n.velocity) for t in score.to("second").tracks for n in t.notes]
        audio = render_notes(load_soundfont(str(sf)), notes, sample_rate)
    elif renderer == "symusic":
        try:
            audio = np.asarray(
                Synthesizer(str(sf), sample_rate=sample_rate).render(score, stereo=True), dtype=np.float32
            )
        except (RuntimeError, ValueError) as exc:
            raise InputError(f"cannot render with {sf}: {exc}") from None
    else:
        raise ConfigError(f"unknown renderer {renderer!r}; choose {' or '.join(RENDERERS)}")
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return audio * (PEAK / peak) if peak > 0 else audio


def write_wav(audio: np.ndarray, path: Path, sample_rate: int = 44100) -> Path:
    """16-bit PCM WAV from float audio (channels, samples) in [-1, 1]."""
    pcm = np.clip(np.round(audio.T * 32767), -32768, 32767).astype(np.int16)
    wavfile.write(str(path), sample_rate, pcm)
    return Path(path)


def render_wav(
    score: Score, path: Path, soundfont: Path | None = None, sample_rate: int = 44100, renderer: str = "sampler"
) -> Path:
    return write_wav(render(score, soundfont, sample_rate, renderer), path, sample_rate)
