"""Robot profiles: loading and validation, the checks by hand-made pieces, adapting and hand
assignment on real piano pieces, and generation that satisfies each shipped profile by
construction, for the shipped event models and every piano-roll model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from etude.cli import main
from etude.config import EncodingConfig, ModelConfig, RunConfig
from etude.data.encoding import make_encoding
from etude.data.midi import read_piece
from etude.errors import InputError
from etude.generation.generate import Ask, sample_scores
from etude.models.checkpoint import Checkpoint, load_checkpoint
from etude.models.pretrained import pretrained_path
from etude.models.registry import REGISTRY, build_model
from etude.robot.adapt import adapt_notes, adapt_score
from etude.robot.check import violations
from etude.robot.hands import assign_hands, choose_hand
from etude.robot.notes import Note, score_notes
from etude.robot.profile import SHIPPED, TOLERANCE_S, RobotProfile, load_profile, profile_from_dict

PIANO = Path(__file__).resolve().parents[2] / "shared" / "data" / "piano"


def _real_pieces(per_genre: int = 1) -> list[Path]:
    """The first `per_genre` files (in a fixed shuffle) of each genre of the piano corpus."""
    out = []
    for genre in sorted(p for p in PIANO.iterdir() if p.is_dir()):
        files = sorted(genre.rglob("*.mid"))
        random.Random(0).shuffle(files)
        out += files[:per_genre]
    return out


# ----------------------------------------------------------------------------- profiles
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_load(name):
    profile = load_profile(name)
    assert profile.name == name and profile.description
    assert profile.max_polyphony and profile.velocity and profile.min_restrike is not None


@pytest.mark.parametrize(
    "data,message",
    [
        ({"lowest": 60, "highest": 48}, "lowest .60. is above highest"),
        ({"hand_span": 12}, "give hands too"),
        ({"velocity": [100, 20]}, "velocity must be"),
        ({"velocity": 64}, "velocity must be"),
        ({"max_polyphony": 0}, "max_polyphony must be a whole number in 1..128"),
        ({"min_restrike": -0.1}, "min_restrike must be seconds"),
        ({"fingers": 2.5, "hands": 1}, "fingers must be a whole number"),
        ({"polyphony": 4}, "unknown field.*polyphony"),
        ([1, 2], "is a JSON object"),
    ],
)
def test_bad_profiles_fail_with_the_field_named(data, message):
    with pytest.raises(InputError, match=message):
        profile_from_dict(data, "robot.json")


def test_a_profile_file_is_read_and_a_broken_one_refused(tmp_path):
    good = tmp_path / "mine.json"
    good.write_text(json.dumps({"name": "mine", "lowest": 48, "highest": 72}))
    assert load_profile(good).high == 72 and load_profile(good).max_polyphony is None
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not a readable JSON robot profile"):
        load_profile(bad)
    with pytest.raises(InputError, match="no robot profile"):
        load_profile(tmp_path / "missing.json")


# ----------------------------------------------------------------------------- checks by hand
def test_each_limit_is_found_where_it_is_broken():
    p = RobotProfile(
        lowest=48,
        highest=72,
        max_polyphony=2,
        min_restrike=0.2,
        velocity=(30, 100),
        max_notes_per_second=4,
    )
    notes = [
        Note(0.0, 1.0, 60, 64),
        Note(0.0, 1.0, 64, 64),
        Note(0.5, 0.8, 67, 64),  # a third key down: polyphony at 0.5
        Note(1.1, 1.5, 60, 64),  # 0.1 s after its release: restrike at 1.1
        Note(2.0, 2.2, 80, 64),  # above 72: range
        Note(3.0, 3.1, 50, 120),  # too loud: velocity
        Note(4.0, 4.1, 50, 64),
        Note(4.2, 4.3, 52, 64),
        Note(4.4, 4.5, 53, 64),
        Note(4.6, 4.7, 55, 64),
        Note(4.8, 4.9, 57, 64),  # the fifth onset within a second: rate at 4.8
    ]
    found = [(round(v.time, 3), v.limit, v.keys) for v in violations(p, notes)]
    assert found == [
        (0.5, "polyphony", (60, 64, 67)),
        (1.1, "restrike", (60,)),
        (2.0, "range", (80,)),
        (3.0, "velocity", (50,)),
        (4.8, "rate", ()),
    ]


def test_notes_ending_at_an_onset_are_up_and_a_restrike_after_the_rest_is_fine():
    p = RobotProfile(max_polyphony=1, min_restrike=0.1)
    assert violations(p, [Note(0, 1, 60, 64), Note(1, 2, 62, 64), Note(2.1, 3, 60, 64)]) == []
    assert [v.limit for v in violations(p, [Note(0, 1, 60, 64), Note(0.5, 0.8, 60, 64)])] == ["restrike", "polyphony"]


def test_hands_are_chosen_within_span_fingers_and_order():
    p = RobotProfile(hands=2, hand_span=12, fingers=5)
    assert violations(p, [Note(0, 1, k, 64) for k in (48, 55, 60, 72)]) == []
    assert violations(RobotProfile(hands=1, hand_span=12, fingers=2), [Note(0, 1, k, 64) for k in (60, 61, 62)])
    assert choose_hand(p, [(48, 0), (50, 0)], 72) == 1  # free hand above
    assert choose_hand(p, [(48, 0), (70, 1)], 40) == 0  # the left hand stretches down to it
    assert choose_hand(p, [(48, 0), (58, 0)], 40) is None  # too wide for the left; the right would cross
    assert violations(p, [Note(0, 1, 48, 64), Note(0, 1, 61, 64), Note(0, 1, 74, 64)])[0].limit == "hands"


def test_a_held_key_keeps_its_hand():
    """45 and 60 together need two hands (15 apart): 60 is the right hand's and stays down. At
    t = 2, 61 and 73 come: a cover of {60, 61, 73} exists ({60, 61} and {73}), but only by moving
    60 to the left hand, so with 60 kept in the right hand the right would span 13. Whichever
    onset takes the blame, the piece has exactly one moment no assignment plays."""
    p = RobotProfile(hands=2, hand_span=12)
    unplayable = [Note(0, 1, 45, 64), Note(0, 4, 60, 64), Note(2, 3, 61, 64), Note(2, 3, 73, 64)]
    found = [(v.time, v.limit, v.keys) for v in violations(p, unplayable)]
    assert found in ([(0, "hands", (45, 60))], [(2, "hands", (60, 61, 73))])
    playable = [Note(0, 4, 60, 64), Note(0, 1, 70, 64), Note(0.5, 1, 80, 64), Note(2, 3, 49, 64)]
    assert violations(p, playable) == []  # 60 left, 70 and 80 right, then 49 joins the left


# ----------------------------------------------------------------------------- real pieces
@pytest.mark.parametrize("name", SHIPPED)
def test_adapt_makes_real_piano_pieces_playable(name, tmp_path):
    profile = load_profile(name)
    for path in _real_pieces():
        score = read_piece(path)
        out, adapted, before = adapt_score(profile, score)
        out.dump_midi(str(tmp_path / "out.mid"))
        assert violations(profile, score_notes(read_piece(tmp_path / "out.mid"))) == [], path
        assert before == len(score_notes(score)) and len(adapted.notes) <= before
        # it adapts, it does not empty: 40% of the notes, or of what the note rate allows
        seconds = max(n.end for n in score_notes(score))
        room = min(before, (profile.max_notes_per_second or before) * seconds)
        assert len(adapted.notes) >= 0.4 * room, (path, adapted.report(before))


def test_hands_on_real_pieces_respect_span_and_order():
    profile = load_profile("two-hand-robot")
    for path in _real_pieces():
        notes = adapt_notes(profile, score_notes(read_piece(path))).notes
        notes.sort(key=lambda n: (n.start, n.pitch))
        hands = assign_hands(profile, notes)
        for t in sorted({n.start for n in notes}):
            down = [(n.pitch, h, f) for n, (h, f) in zip(notes, hands) if n.start < t + TOLERANCE_S < n.end]
            left = [k for k, h, _ in down if h == 0]
            right = [k for k, h, _ in down if h == 1]
            for keys in (left, right):
                assert not keys or max(keys) - min(keys) <= profile.hand_span, (path, t, left, right)
                assert len(keys) <= profile.fingers
            assert not left or not right or max(left) < min(right), (path, t, left, right)
            for h in (0, 1):
                fingers = [f for _, hand, f in down if hand == h]
                assert len(fingers) == len(set(fingers)) and all(1 <= f <= 5 for f in fingers), (path, t)


# ----------------------------------------------------------------------------- generation
@pytest.mark.parametrize("model", ["piano", "builtin"])
@pytest.mark.parametrize("name", SHIPPED)
def test_generated_pieces_satisfy_each_shipped_profile(model, name):
    ckpt = load_checkpoint(pretrained_path(model))
    profile = load_profile(name)
    genres = ckpt.encoding.genres
    for seed, genre in enumerate(genres[:2]):
        scores = sample_scores(ckpt, Ask(genre, 6, "8s", seed=seed, robot=profile))
        for score in scores:
            notes = score_notes(score)
            assert notes, "a constrained piece still has notes"
            assert violations(profile, notes) == []


@pytest.mark.parametrize("name", sorted(n for d, n in REGISTRY if d == "rolls"))
def test_piano_roll_models_satisfy_each_shipped_profile(name):
    """Untrained piano-roll models sample dense frames: the frame filter must hold them."""
    torch.manual_seed(0)
    enc = make_encoding(EncodingConfig(name="pianoroll"), ["folk"])
    cfg = ModelConfig(name=name, hidden=16, layers=1, head_hidden=8, cd_k=1)
    ckpt = Checkpoint(Path("."), build_model(cfg, enc).eval(), RunConfig(model=cfg), enc, {})
    for profile_name in SHIPPED:
        profile = load_profile(profile_name)
        for score in sample_scores(ckpt, Ask("folk", 3, "6s", seed=1, robot=profile)):
            assert violations(profile, score_notes(score)) == [], profile_name


# ----------------------------------------------------------------------------- command line
def test_robot_check_and_adapt_commands(tmp_path, capsys):
    piece = str(_real_pieces()[0])
    assert main(["robot", "check", "toy-25", piece, "--limit", "2"]) == 1
    assert "violation(s) of toy-25" in capsys.readouterr().out
    out = tmp_path / "toy.mid"
    assert main(["robot", "adapt", "toy-25", piece, "--out", str(out)]) == 0
    assert "notes in" in capsys.readouterr().out
    assert main(["robot", "check", "toy-25", str(out)]) == 0
    assert main(["robot", "adapt", "toy-25", piece, "--out", str(out)]) == 2  # exists, no --force
    assert main(["robot", "check", "no-such-robot", piece]) == 2
    assert "no robot profile" in capsys.readouterr().err


def test_perform_json_lines_carry_hands_and_fingers(tmp_path, capsys):
    adapted = tmp_path / "two.mid"
    assert main(["robot", "adapt", "two-hand-robot", str(_real_pieces()[1]), "--out", str(adapted)]) == 0
    capsys.readouterr()
    lines = tmp_path / "events.jsonl"
    assert (
        main(["perform", str(adapted), "--robot", "two-hand-robot", "--jsonl", str(lines), "--tempo-scale", "50"]) == 0
    )
    events = [json.loads(line) for line in lines.read_text().splitlines()]
    notes = [e for e in events if e["type"] == "note_on"]
    assert notes and all(e["hand"] in (0, 1) and 1 <= e["finger"] <= 5 for e in notes)
    assert {e["hand"] for e in notes} == {0, 1}
