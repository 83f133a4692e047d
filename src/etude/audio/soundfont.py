"""A SoundFont 2 reader and sample player: MIDI notes to audio with correct pitch.

symusic 0.5.9's synthesizer mis-tunes the General MIDI SoundFont that ships with pretty_midi
(TimGM6mb.sf2): C4 (261.6 Hz) comes out near 830 Hz, and the error grows with pitch (see
symusic issue #55, "sounds off key"). Spectral comparisons need true pitch, so étude plays the
SoundFont's samples itself, following the SoundFont 2.04 specification for the parts a piano
needs: preset and instrument zones by key and velocity, root key, coarse/fine tune, scale
tuning, sample pitch correction, loops, attenuation, pan and the volume envelope
(delay, attack, hold, decay, sustain, release). Modulators other than the default
velocity-to-attenuation curve, filters, LFOs and effects are not modelled.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from etude.errors import InputError

# Generator numbers (SoundFont 2.04, section 8.1.2)
G_PAN, G_DELAY_VOL, G_ATTACK_VOL, G_HOLD_VOL, G_DECAY_VOL, G_SUSTAIN_VOL, G_RELEASE_VOL = 17, 33, 34, 35, 36, 37, 38
G_INSTRUMENT, G_KEY_RANGE, G_VEL_RANGE, G_ATTENUATION = 41, 43, 44, 48
G_COARSE, G_FINE, G_SAMPLE_ID, G_SAMPLE_MODES, G_SCALE_TUNING, G_ROOT_KEY = 51, 52, 53, 54, 56, 58
G_START_OFS, G_END_OFS, G_STARTLOOP_OFS, G_ENDLOOP_OFS = 0, 1, 2, 3
G_START_COARSE, G_END_COARSE, G_STARTLOOP_COARSE, G_ENDLOOP_COARSE = 4, 12, 45, 50
_RANGES = (G_KEY_RANGE, G_VEL_RANGE)
_DEFAULTS = {
    G_SCALE_TUNING: 100,
    G_ROOT_KEY: -1,
    G_DELAY_VOL: -12000,
    G_ATTACK_VOL: -12000,
    G_HOLD_VOL: -12000,
    G_DECAY_VOL: -12000,
    G_RELEASE_VOL: -12000,
}


@dataclass
class Sample:
    start: int
    end: int
    loop_start: int
    loop_end: int
    rate: int
    root: int  # original MIDI pitch of the recording
    correction: int  # cents


@dataclass
class Zone:
    gens: dict[int, int] = field(default_factory=dict)
    keys: tuple[int, int] = (0, 127)
    vels: tuple[int, int] = (0, 127)

    def covers(self, key: int, vel: int) -> bool:
        return self.keys[0] <= key <= self.keys[1] and self.vels[0] <= vel <= self.vels[1]


def _chunks(buf: bytes, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        cid = buf[pos : pos + 4]
        size = struct.unpack_from("<I", buf, pos + 4)[0]
        yield cid, pos + 8, size
        pos += 8 + size + (size & 1)


def _zones(
    bags: list[int], gens: list[tuple[int, int]], first: int, last: int, link: int
) -> tuple[Zone | None, list[Zone]]:
    """Zones of one preset or instrument (bag indices first..last); a leading zone without the
    linking generator (instrument or sampleID) is the global zone."""
    out, global_zone = [], None
    for b in range(first, last):
        z = Zone()
        for oper, amount in gens[bags[b] : bags[b + 1]]:
            if oper in _RANGES:
                lo, hi = amount & 0xFF, (amount >> 8) & 0xFF
                if oper == G_KEY_RANGE:
                    z.keys = (lo, hi)
                else:
                    z.vels = (lo, hi)
            else:
                z.gens[oper] = amount
        if link not in z.gens:
            if b == first:
                global_zone = z
            continue
        out.append(z)
    return global_zone, out


class SoundFont:
    """The samples and zones of an .sf2 file."""

    def __init__(self, path: Path):
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read SoundFont {path}: {exc}") from None
        if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
            raise InputError(f"{path} is not a SoundFont 2 file (.sf2)")
        parts: dict[bytes, tuple[int, int]] = {}
        for cid, off, size in _chunks(data, 12, len(data)):
            if cid == b"LIST":
                for sid, soff, ssize in _chunks(data, off + 4, off + size):
                    parts[sid] = (soff, ssize)
        need = [b"smpl", b"phdr", b"pbag", b"pgen", b"inst", b"ibag", b"igen", b"shdr"]
        if any(n not in parts for n in need):
            raise InputError(f"{path}: incomplete SoundFont (missing {[n.decode() for n in need if n not in parts]})")

        def records(name: bytes, size: int, fmt: str) -> list[tuple]:
            off, total = parts[name]
            return [struct.unpack_from(fmt, data, off + i) for i in range(0, total - size + 1, size)]

        off, size = parts[b"smpl"]
        self.pcm = np.frombuffer(data, dtype="<i2", count=size // 2, offset=off).astype(np.float32) / 32768.0
        headers = records(b"phdr", 38, "<20sHHHIII")  # the last record (EOP) only ends the list
        self.presets = {(bank, prog): bag for _, prog, bank, bag, *_ in headers[:-1]}
        self._preset_bag_order = sorted(h[3] for h in headers)
        self.pbags = [b[0] for b in records(b"pbag", 4, "<HH")]
        self.pgens = records(b"pgen", 4, "<Hh")
        self.insts = [b for _, b in records(b"inst", 22, "<20sH")]
        self.ibags = [b[0] for b in records(b"ibag", 4, "<HH")]
        self.igens = records(b"igen", 4, "<Hh")
        self.samples = [
            Sample(s, e, ls, le, rate, pitch, corr)
            for _, s, e, ls, le, rate, pitch, corr, *_ in records(b"shdr", 46, "<20sIIIIIBbHH")
        ]
        # ranges are stored as two unsigned bytes; re-read them unsigned
        self.pgens = [(o, a & 0xFFFF if o in _RANGES else a) for o, a in self.pgens]
        self.igens = [(o, a & 0xFFFF if o in _RANGES else a) for o, a in self.igens]

    def _preset_bags(self, bank: int, program: int) -> tuple[int, int]:
        key = (bank, program) if (bank, program) in self.presets else (0, program)
        if key not in self.presets:
            key = (0, 0)
        first = self.presets[key]
        later = [b for b in self._preset_bag_order if b > first]
        return first, later[0] if later else len(self.pbags) - 1

    @lru_cache(maxsize=None)
    def regions(self, key: int, velocity: int, program: int = 0, bank: int = 0) -> list[tuple[Sample, dict[int, int]]]:
        """The samples that sound for (key, velocity), each with its summed generators."""
        first, last = self._preset_bags(bank, program)
        p_global, p_zones = _zones(self.pbags, self.pgens, first, last, G_INSTRUMENT)
        out = []
        for pz in p_zones:
            if not pz.covers(key, velocity):
                continue
            inst = pz.gens[G_INSTRUMENT]
            i_global, i_zones = _zones(self.ibags, self.igens, self.insts[inst], self.insts[inst + 1], G_SAMPLE_ID)
            for iz in i_zones:
                if not iz.covers(key, velocity):
                    continue
                gens = dict(_DEFAULTS)
                gens.update(i_global.gens if i_global else {})
                gens.update(iz.gens)
                for source in ((p_global.gens if p_global else {}), pz.gens):
                    for oper, amount in source.items():  # preset generators add to the instrument's
                        if oper not in (G_INSTRUMENT, G_SAMPLE_ID, G_SAMPLE_MODES, G_ROOT_KEY, *_RANGES):
                            gens[oper] = gens.get(oper, 0) + amount
                out.append((self.samples[gens[G_SAMPLE_ID]], gens))
        return out


def _seconds(timecents: int) -> float:
    return 0.0 if timecents <= -12000 else 2.0 ** (timecents / 1200.0)


def _envelope(gens: dict[int, int], held: int, rate: int) -> np.ndarray:
    """Volume envelope as linear gain (float32) over `held` samples and then the release.

    Delay, a linear attack, hold, a decay falling 100 dB per decay time (in dB) until the
    sustain level, then the release falling 100 dB per release time from wherever it starts.
    """
    delay, attack, hold, decay = (
        int(_seconds(gens[g]) * rate) for g in (G_DELAY_VOL, G_ATTACK_VOL, G_HOLD_VOL, G_DECAY_VOL)
    )
    sustain_db = -min(max(gens.get(G_SUSTAIN_VOL, 0), 0), 1440) / 10.0
    release = max(int(min(_seconds(gens[G_RELEASE_VOL]), 8.0) * rate), int(0.01 * rate))
    body = np.empty(held, dtype=np.float32)
    a = min(delay, held)
    body[:a] = 0.0
    b = min(a + attack, held)
    body[a:b] = np.arange(1, b - a + 1, dtype=np.float32) / max(attack, 1)
    c = min(b + hold, held)
    body[b:c] = 1.0
    if decay:
        t = np.arange(held - c, dtype=np.float32) * (-100.0 / decay)
        body[c:] = 10 ** (np.maximum(t, sustain_db) / 20)
    else:
        body[c:] = 10 ** (sustain_db / 20)
    level_db = 20 * np.log10(max(float(body[-1]), 1e-5)) if held else 0.0
    steps = np.arange(release, dtype=np.float32) * (-100.0 / release)
    return np.concatenate([body, 10 ** ((level_db + steps) / 20)]).astype(np.float32)


@lru_cache(maxsize=4)
def load_soundfont(path: str) -> SoundFont:
    return SoundFont(Path(path))


def render_notes(
    sf: SoundFont,
    notes: list[tuple[float, float, int, int]],
    sample_rate: int = 44100,
    program: int = 0,
) -> np.ndarray:
    """Stereo audio (2, samples) of notes (onset s, duration s, pitch, velocity), not normalised."""
    if not notes:
        return np.zeros((2, sample_rate // 10), dtype=np.float32)
    total = int((max(t + d for t, d, _, _ in notes) + 8.5) * sample_rate)
    out = np.zeros((2, total), dtype=np.float32)
    used = 0
    for onset, dur, pitch, vel in notes:
        for sample, gens in sf.regions(pitch, vel, program):
            root = gens[G_ROOT_KEY] if gens[G_ROOT_KEY] >= 0 else sample.root
            cents = (
                (pitch - root) * gens[G_SCALE_TUNING]
                + gens.get(G_COARSE, 0) * 100
                + gens.get(G_FINE, 0)
                + sample.correction
            )
            step = 2.0 ** (cents / 1200.0) * sample.rate / sample_rate
            start = sample.start + gens.get(G_START_OFS, 0) + 32768 * gens.get(G_START_COARSE, 0)
            end = sample.end + gens.get(G_END_OFS, 0) + 32768 * gens.get(G_END_COARSE, 0)
            loop_a = sample.loop_start + gens.get(G_STARTLOOP_OFS, 0) + 32768 * gens.get(G_STARTLOOP_COARSE, 0)
            loop_b = sample.loop_end + gens.get(G_ENDLOOP_OFS, 0) + 32768 * gens.get(G_ENDLOOP_COARSE, 0)
            looped = gens.get(G_SAMPLE_MODES, 0) in (1, 3) and start <= loop_a < loop_b <= end
            env = _envelope(gens, int(dur * sample_rate), sample_rate)
            pos = start + step * np.arange(len(env), dtype=np.float64)
            if looped:
                past = pos >= loop_b
                pos[past] = loop_a + np.mod(pos[past] - loop_a, loop_b - loop_a)
            else:
                keep = pos < end - 1
                pos, env = pos[keep], env[keep]
            i = pos.astype(np.int64)
            frac = (pos - i).astype(np.float32)
            pcm = sf.pcm
            signal = (pcm[i] * (1 - frac) + pcm[np.minimum(i + 1, len(pcm) - 1)] * frac) * env
            # default velocity modulator: concave, 0 dB at 127 (approximated by (v/127)^2)
            gain = (vel / 127.0) ** 2 * 10 ** (-max(gens.get(G_ATTENUATION, 0), 0) / 200.0)
            pan = (np.clip(gens.get(G_PAN, 0), -500, 500) / 500.0 + 1) * np.pi / 4
            a = int(onset * sample_rate)
            b = min(a + len(signal), total)
            out[0, a:b] += (gain * np.cos(pan)) * signal[: b - a]
            out[1, a:b] += (gain * np.sin(pan)) * signal[: b - a]
            used = max(used, b)
    return out[:, : max(used, 1)]
