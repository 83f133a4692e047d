"""Which hand (and finger) plays each note: a dynamic programme over the piece's onsets.

At each onset the keys down (the new notes and those still held) are split, lowest first,
among the hands in order, so hand 0 (the leftmost) always takes the lowest keys and hands never
cross. A note keeps its hand while it sounds: a split must agree with the one before on every
note held through. A split costs the distance each hand moves (semitones between the centre of
its new notes and where it was); Viterbi's algorithm finds the sequence of splits with the
fewest hands over their limits (keys wider than `hand_span`, more than `fingers`), then the
least movement. Where that sequence still has a hand over its limit, no assignment plays the
piece: `hand_overloads` lists those onsets, and etude.robot.check reports them.
Fingers (profiles with `fingers`) follow each key's place in the hand: the thumb (finger 1) on
the hand's inner side, low for hands right of the keyboard's centre, high for those left of it.
"""

from __future__ import annotations

import heapq
import itertools

from etude.robot.notes import Note
from etude.robot.profile import TOLERANCE_S, RobotProfile

MAX_SPLITS = 400  # splits considered per onset (many hands, many keys down)


def assign_hands(profile: RobotProfile, notes: list[Note]) -> list[tuple[int, int | None]]:
    """(hand, finger) of each note of `notes` (sorted by start); finger is None without `fingers`.
    Hands: profile.hands, or two when the profile says nothing of hands."""
    onsets, path = _best_path(profile, notes)
    hand_of = {i: h for hand in path for i, h in hand.items()}
    out: list[tuple[int, int | None]] = [(hand_of[i], None) for i in range(len(notes))]
    if profile.fingers is not None:
        for new, down in onsets:
            _fingers(profile, notes, new, down, out, profile.hands or 2)
    return out


def hand_overloads(profile: RobotProfile, notes: list[Note]) -> list[tuple[float, tuple[int, ...]]]:
    """Onsets (time, keys down) where even the best assignment leaves a hand holding keys wider
    than hand_span or more than fingers: where the piece cannot be played with these hands."""
    onsets, path = _best_path(profile, notes)
    out = []
    for (new, down), hand in zip(onsets, path):
        groups = [[notes[i].pitch for i in down if hand[i] == h] for h in range(profile.hands or 2)]
        if _over_limit(profile, groups):
            out.append((notes[new[0]].start, tuple(sorted(notes[i].pitch for i in down))))
    return out


def _best_path(profile: RobotProfile, notes: list[Note]):
    """The onsets and, per onset, the hand of each note down in the cheapest split sequence:
    fewest hands over their limits first, then least movement."""
    hands = profile.hands or 2
    onsets = _onsets(notes)
    home = _home(profile, hands)
    # per onset, per split: ((over, moved), back, positions, hand of each note down)
    layers: list[list[tuple[tuple[int, float], int, tuple[float, ...], dict[int, int]]]] = []
    previous = [((0, 0.0), -1, home, {})]
    for new, down in onsets:
        keys = [notes[i].pitch for i in down]
        layer = []
        for split in _splits(len(down), hands):
            bounds = (0, *split, len(down))
            hand = {i: h for h in range(hands) for i in down[bounds[h] : bounds[h + 1]]}
            over = _over_limit(profile, [keys[bounds[h] : bounds[h + 1]] for h in range(hands)])
            best = None
            for k, ((was_over, moved), _, positions, before) in enumerate(previous):
                if any(before.get(i, hand[i]) != hand[i] for i in down):
                    continue  # a held note would change hands
                cost = (was_over + over, moved + _movement(notes, new, hand, positions, hands))
                if best is None or cost < best[0]:
                    best = (cost, k, positions)
            if best is not None:
                cost, k, positions = best
                layer.append((cost, k, _positions(notes, new, hand, positions, hands), hand))
        layers.append(layer)
        previous = layer
    path = []
    k = min(range(len(layers[-1])), key=lambda s: layers[-1][s][0]) if layers else 0
    for layer in reversed(layers):
        _, k_back, _, hand = layer[k]
        path.append(hand)
        k = k_back
    return onsets, path[::-1]


def _home(profile: RobotProfile, hands: int) -> tuple[float, ...]:
    """Where each hand rests: the hands spread evenly over the profile's keys (21..108 if unset)."""
    low, high = (profile.lowest or 21), (profile.highest or 108)
    return tuple(low + (h + 0.5) * (high - low) / hands for h in range(hands))


def _by_hand(profile: RobotProfile, held: list[tuple[int, int]]) -> list[list[int]]:
    """The keys each hand holds, from (key, hand) pairs."""
    by_hand: list[list[int]] = [[] for _ in range(profile.hands or 2)]
    for k, h in held:
        by_hand[h].append(k)
    return by_hand


def hand_reach(profile: RobotProfile, held: list[tuple[int, int]]) -> list[tuple[int, int] | None]:
    """Per hand, the keys lo..hi (inclusive) it can strike next while the (key, hand) pairs in
    `held` are down: above every key of the hands left of it, below those right of it, within
    hand_span of its own keys; None when its fingers are all down."""
    by_hand = _by_hand(profile, held)
    out: list[tuple[int, int] | None] = []
    for h, mine in enumerate(by_hand):
        below = [k for g in by_hand[:h] for k in g]
        above = [k for g in by_hand[h + 1 :] for k in g]
        lo, hi = (max(below) + 1 if below else -1), (min(above) - 1 if above else 128)
        if mine and profile.hand_span is not None:
            lo, hi = max(lo, max(mine) - profile.hand_span), min(hi, min(mine) + profile.hand_span)
        full = profile.fingers is not None and len(set(mine)) >= profile.fingers
        wide = bool(mine) and profile.hand_span is not None and max(mine) - min(mine) > profile.hand_span
        out.append(None if full or wide or lo > hi else (lo, hi))
    return out


def choose_hand(profile: RobotProfile, held: list[tuple[int, int]], key: int) -> int | None:
    """The hand to strike `key` (a key not down) with while the (key, hand) pairs in `held` are
    down (`hand_reach`); the nearest such hand, or None if there is none. Online: what generation
    and adapt use note by note; a piece built this way has an assignment, so `hand_overloads`
    finds nothing in it."""
    by_hand = _by_hand(profile, held)
    home = _home(profile, len(by_hand))
    best = None
    for h, reach in enumerate(hand_reach(profile, held)):
        if reach is None or not reach[0] <= key <= reach[1]:
            continue
        # an empty hand is taken to be at its home: the hands spread evenly over the keyboard
        centre = sum(by_hand[h]) / len(by_hand[h]) if by_hand[h] else home[h]
        distance = abs(key - centre)
        if best is None or distance < best[0]:
            best = (distance, h)
    return None if best is None else best[1]


def _onsets(notes: list[Note]) -> list[tuple[list[int], list[int]]]:
    """Per distinct onset: the notes starting there and all notes down then, by pitch."""
    out, down, i = [], [], 0
    while i < len(notes):
        t, j = notes[i].start, i
        while j < len(notes) and notes[j].start < t + TOLERANCE_S:
            heapq.heappush(down, (notes[j].end, j))
            j += 1
        while down and down[0][0] <= t + TOLERANCE_S and down[0][1] < i:
            heapq.heappop(down)
        now = sorted((k for end, k in down if end > t + TOLERANCE_S or k >= i), key=lambda k: (notes[k].pitch, k))
        out.append((list(range(i, j)), now))
        i = j
    return out


def _splits(n: int, hands: int) -> list[tuple[int, ...]]:
    """Split points (hands - 1 of them, non-decreasing) of n sorted keys among the hands."""
    splits = list(itertools.combinations_with_replacement(range(n + 1), hands - 1))
    if len(splits) > MAX_SPLITS:
        step = len(splits) / MAX_SPLITS
        splits = [splits[int(k * step)] for k in range(MAX_SPLITS)]
    return splits


def _over_limit(profile: RobotProfile, groups: list[list[int]]) -> int:
    """How many hands hold keys wider than hand_span or more keys than fingers."""
    return sum(
        (profile.hand_span is not None and bool(keys) and max(keys) - min(keys) > profile.hand_span)
        or (profile.fingers is not None and len(set(keys)) > profile.fingers)
        for keys in groups
    )


def _centres(notes, new, hand, hands) -> list[float | None]:
    out = []
    for h in range(hands):
        keys = [notes[i].pitch for i in new if hand[i] == h]
        out.append(sum(keys) / len(keys) if keys else None)
    return out


def _movement(notes, new, hand, positions, hands) -> float:
    return sum(abs(c - p) for c, p in zip(_centres(notes, new, hand, hands), positions) if c is not None)


def _positions(notes, new, hand, positions, hands) -> tuple[float, ...]:
    return tuple(p if c is None else c for c, p in zip(_centres(notes, new, hand, hands), positions))


def _fingers(profile, notes, new, down, out, hands) -> None:
    """Fingers for the new notes of each hand, given the fingers of its keys still down."""
    for h in range(hands):
        mine = [i for i in down if out[i][0] == h]
        fresh = [i for i in new if out[i][0] == h]
        if not fresh:
            continue
        keys = [notes[i].pitch for i in mine]
        span = max(profile.hand_span or 12, max(keys) - min(keys), 1)
        thumb_low = (h + 0.5) >= hands / 2  # hands right of centre have the thumb on their low side
        taken = {out[i][1] for i in mine if i not in fresh}
        for i in fresh:
            place = (notes[i].pitch - min(keys)) / span
            want = 1 + round((place if thumb_low else 1 - place) * (profile.fingers - 1))
            free = [f for f in range(1, profile.fingers + 1) if f not in taken] or [want]
            finger = min(free, key=lambda f: (abs(f - want), f))
            taken.add(finger)
            out[i] = (h, finger)
