import numpy as np
import pytest
from scipy.io import wavfile

from etude.audio.render import PEAK, default_soundfont, render, render_wav
from etude.data.encoding import roll_to_score
from etude.errors import InputError


def _chord():
    roll = np.zeros((8, 88), dtype=np.uint8)
    roll[:4, [39, 43, 46]] = 1  # C4 E4 G4 for two beats
    return roll_to_score(roll, 2, qpm=120)


def test_soundfont_ships_with_pretty_midi():
    assert default_soundfont().exists() and default_soundfont().stat().st_size > 1_000_000


def test_render_is_normalised_not_clipped(tmp_path):
    audio = render(_chord())
    assert audio.shape[0] == 2 and audio.shape[1] > 44100  # stereo, longer than the 1 s chord
    assert abs(np.abs(audio).max() - PEAK) < 1e-4
    path = render_wav(_chord(), tmp_path / "c.wav")
    rate, pcm = wavfile.read(path)
    assert rate == 44100 and pcm.dtype == np.int16 and pcm.shape[1] == 2
    assert np.abs(pcm).max() < 32767


@pytest.mark.parametrize("pitch", [48, 60, 69, 72, 84])
def test_notes_sound_at_their_pitch(pitch):
    """The lowest strong partial of a piano note is its fundamental, within 1 %: symusic 0.5.9's
    synthesizer fails this with the shipped SoundFont (C4 comes out at 830 Hz)."""
    roll = np.zeros((4, 88), dtype=np.uint8)
    roll[:2, pitch - 21] = 1
    mono = render(roll_to_score(roll, 2, qpm=60))[0, :44100]
    spectrum = np.abs(np.fft.rfft(mono))
    freqs = np.fft.rfftfreq(len(mono), 1 / 44100)
    expected = 440 * 2 ** ((pitch - 69) / 12)
    lowest = freqs[np.flatnonzero(spectrum >= 0.2 * spectrum.max())[0]]
    near = (freqs >= lowest) & (freqs <= lowest * 1.05)  # the top of that partial's peak
    fundamental = freqs[near][np.argmax(spectrum[near])]
    assert abs(fundamental / expected - 1) < 0.01


def test_missing_soundfont(tmp_path):
    with pytest.raises(InputError, match="SoundFont not found"):
        render(_chord(), tmp_path / "none.sf2")
