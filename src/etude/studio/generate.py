"""What the studio's endpoints do: check a generate request, run it (on the worker thread),
and play a take to the configured outputs."""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException

from etude.errors import EtudeError
from etude.robot.profile import RobotProfile


def http_error(status: int, where: str, msg: str) -> HTTPException:
    """A 4xx whose JSON detail names the request field at fault, as FastAPI's own validation does."""
    return HTTPException(status, [{"loc": ["body", where], "msg": msg}])


@dataclass
class GenerateRequest:
    model: str
    genre: str
    length: float  # seconds
    temperature: float
    top_k: int
    top_p: float
    seed: int
    n: int
    robot: str

    def check(self, studio, primer: bytes | None) -> Checked:
        """Every field against the model, before the request queues: HTTPException 4xx naming it."""
        from etude.data.midi import read_piece
        from etude.robot.profile import load_profile

        try:
            ckpt = studio.checkpoint(self.model)
        except EtudeError as exc:
            raise http_error(422, "model", str(exc)) from None
        genre = self.genre or ckpt.encoding.genres[0]
        if genre not in ckpt.encoding.genres:
            raise http_error(
                422, "genre", f"{genre!r} is not a genre of {self.model}: {', '.join(ckpt.encoding.genres)}"
            )
        robot = None
        if self.robot:
            try:
                robot = load_profile(self.robot)
            except EtudeError as exc:
                raise http_error(422, "robot", str(exc)) from None
        primer_path = None
        if primer is not None:
            if ckpt.model.unit != "token":
                raise http_error(422, "primer", "a primer needs an event-token model")
            handle = tempfile.NamedTemporaryFile(suffix=".mid", delete=False, dir=studio.takes.root)
            handle.write(primer)
            handle.close()
            primer_path = Path(handle.name)
            try:
                read_piece(primer_path)
            except EtudeError as exc:
                primer_path.unlink()
                raise http_error(422, "primer", f"not a MIDI file étude can read ({exc})") from None
        return Checked(self, genre, robot, primer_path)


@dataclass
class Checked:
    request: GenerateRequest
    genre: str
    robot: RobotProfile | None
    primer: Path | None


def generate_pieces(c: Checked, work: str) -> list[dict]:
    """In the worker process: generate the pieces of a checked request into `work`; returns per
    piece its files (piece.mid/.wav/.png -> path) and its description."""
    from etude.generation.generate import Sampling, generate

    r = c.request
    try:
        pieces = generate(
            r.model,
            c.genre,
            r.n,
            f"{r.length:g}s",
            Path(work),
            Sampling(r.temperature, r.top_k, r.top_p),
            primer=str(c.primer) if c.primer else None,
            seed=r.seed,
            force=True,
            robot=c.robot,
        )
    finally:
        if c.primer is not None:
            c.primer.unlink(missing_ok=True)
    out = []
    for k, piece in enumerate(pieces):
        info = {
            "model": r.model,
            "genre": c.genre,
            "seed": r.seed,
            "index": k,
            "robot": c.robot.name if c.robot else None,
            "seconds": round(piece.seconds, 2),
            "notes": piece.notes,
        }
        out.append({"files": {"piece.mid": piece.midi, "piece.wav": piece.wav, "piece.png": piece.png}, "info": info})
    return out


def store_takes(studio, pieces: list[dict]) -> list[dict]:
    """The generated pieces moved into takes; returns their descriptions with URLs."""
    out = []
    for piece in pieces:
        take = studio.takes.add(piece["files"], piece["info"])
        files = {name.split(".")[1]: f"/api/takes/{take}/{name}" for name in ("piece.mid", "piece.wav", "piece.png")}
        out.append({**piece["info"], "id": take, "urls": files})
    return out


def start_performance(studio, take: str) -> dict:
    """Play a take to the outputs the studio was started with (in a thread); one at a time."""
    from etude.data.midi import read_piece
    from etude.perform.stream import open_outputs, play, score_events

    if not studio.config.outputs:
        raise http_error(409, "take", "no output: start etude studio with --jsonl, --port, --virtual, --osc or --serve")
    path = studio.takes.file(take, "piece.mid")
    if path is None:
        raise http_error(404, "take", "no such take")
    info = studio.takes.info(take)
    robot = None
    if info.get("robot"):
        from etude.robot.profile import load_profile

        robot = load_profile(info["robot"])
    stop_performance(studio)
    events = score_events(read_piece(path), robot=robot)
    sink = open_outputs(**studio.config.outputs)
    stop = threading.Event()
    thread = threading.Thread(target=play, args=(iter([events]), sink), kwargs={"stop": stop}, daemon=True)
    thread.start()
    studio.playing = (thread, stop)
    return {"playing": take, "seconds": round(events[-1].t, 2) if events else 0.0}


def stop_performance(studio) -> dict:
    """Stop the performance, if any: play() releases every sounding note and closes the outputs."""
    if studio.playing is None:
        return {"stopped": None}
    thread, stop = studio.playing
    stop.set()
    thread.join(timeout=5)
    studio.playing = None
    return {"stopped": True}
