"""What the studio's endpoints do: read and check a generate request, run it (in the worker
process), and play a take to the configured outputs."""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from etude.errors import ConfigError, EtudeError
from etude.generation.generate import Sampling
from etude.robot.profile import RobotProfile
from etude.studio.config import OUTPUT_FLAGS

MAX_N = 8  # pieces per request
MAX_SECONDS = 120.0  # length per piece
MAX_PRIMER_BYTES = 2_000_000
HOUSE = Sampling()  # the sampling defaults every entry point shares
BODY_TYPES = ("application/json", "multipart/form-data", "application/x-www-form-urlencoded")


def http_error(status: int, where: str, msg: str) -> HTTPException:
    """A 4xx whose JSON detail names the request field at fault, as FastAPI's own validation does."""
    return HTTPException(status, [{"loc": ["body", where], "msg": msg}])


class GenerateRequest(BaseModel):
    """The fields of POST /api/generate, the same in a JSON object and in a form; any other
    field is refused (422), never ignored."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("", description="a model id of GET /api/models (default: the studio's)")
    genre: str = Field("", description="one of the model's genres (default: its first)")
    length: float = Field(30.0, gt=0, le=MAX_SECONDS, description="seconds per piece")
    temperature: float = Field(HOUSE.temperature, gt=0, le=5)
    top_k: int = Field(HOUSE.top_k, ge=0, description="0: all tokens")
    top_p: float = Field(HOUSE.top_p, gt=0, le=1)
    seed: int = Field(0, ge=0)
    n: int = Field(1, ge=1, le=MAX_N, description="pieces")
    robot: str = Field("", description="a robot profile, or empty for none")
    form: str = Field(
        HOUSE.form,
        max_length=64,
        description="for a model that remembers the piece: a plan of sections of section_bars bars, "
        "one letter each, like AABA (a letter that came before brings its section back); empty for none",
    )
    section_bars: int = Field(HOUSE.section_bars, ge=1, le=64, description="bars a section of the form plan")
    key_hold: float = Field(
        HOUSE.key_hold,
        ge=0,
        le=10,
        description="pull new notes toward the key the first section set (0: none; 2: folk keeps its key)",
    )

    def sampling(self) -> Sampling:
        return Sampling.of(self)

    def check(self, studio, primer: bytes | None) -> Checked:
        """Every field against the model, before the request queues: HTTPException 4xx naming it."""
        from etude.data.midi import read_piece
        from etude.robot.profile import load_profile

        try:
            ckpt = studio.checkpoint(self.model)
        except EtudeError as exc:
            raise http_error(422, "model", str(exc)) from None
        try:
            self.sampling().check(ckpt.model)
        except ConfigError as exc:  # each sampling field is named as its option is, less the dashes
            field = (exc.option or "").lstrip("-").replace("-", "_") or "body"
            raise http_error(422, field, str(exc)) from None
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


_PRIMER = {"type": "string", "format": "binary", "description": "a MIDI file to continue"}
_SCHEMA = GenerateRequest.model_json_schema()
OPENAPI_BODY = {  # the request body as /docs shows it (the endpoint reads it itself)
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {"schema": _SCHEMA},
            "multipart/form-data": {"schema": {**_SCHEMA, "properties": {**_SCHEMA["properties"], "primer": _PRIMER}}},
            "application/x-www-form-urlencoded": {"schema": _SCHEMA},
        },
    }
}


async def read_generate_request(request: Request, default_model: str) -> tuple[GenerateRequest, bytes | None]:
    """The checked fields of a generate request and its primer's bytes (or None): 415 for a body
    of another type, 422 naming the field for a bad value or an unknown field."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    primer = None
    if kind == "application/json":
        try:
            raw = await request.json()
        except ValueError:
            raise http_error(400, "body", "the body is not valid JSON") from None
        if not isinstance(raw, dict):
            raise http_error(422, "body", "the body must be a JSON object of the fields")
        if "primer" in raw:
            raise http_error(422, "primer", "send a primer as a file in a multipart/form-data body")
    elif kind in BODY_TYPES:
        form = await request.form()
        raw = {k: v for k, v in form.items() if k != "primer"}
        primer = await _primer(form.get("primer"))
    elif not kind and not await request.body():
        raw = {}  # no body: every field at its default
    else:
        raise http_error(
            415, "body", f"send the fields as one of {', '.join(BODY_TYPES)}, not {kind or 'untyped data'}"
        )
    try:
        fields = GenerateRequest.model_validate(raw)
    except ValidationError as exc:
        detail = [{"loc": ["body", *map(str, e["loc"])], "msg": e["msg"]} for e in exc.errors()]
        raise HTTPException(422, detail) from None
    return fields.model_copy(update={"model": fields.model or default_model}), primer


async def _primer(value) -> bytes | None:
    """A form's primer: the uploaded file's bytes, None when no file was chosen; 413 when too big."""
    if isinstance(value, UploadFile):
        data = await value.read(MAX_PRIMER_BYTES + 1)
        if len(data) > MAX_PRIMER_BYTES:
            raise http_error(413, "primer", f"a primer is at most {MAX_PRIMER_BYTES // 1000} kB")
        return data if value.filename else None  # a form's file field with no file chosen
    if value is None or value == "":
        return None
    raise http_error(422, "primer", "a primer is a MIDI file uploaded in a multipart/form-data body")


@dataclass
class Checked:
    request: GenerateRequest
    genre: str
    robot: RobotProfile | None
    primer: Path | None


def generate_pieces(c: Checked, work: str) -> list[dict]:
    """In the worker process: generate the pieces of a checked request into `work`; returns per
    piece its files (piece.mid/.wav/.png -> path) and its description."""
    from etude.generation.generate import Ask, PieceFiles, generate

    r = c.request
    primer = str(c.primer) if c.primer else None
    try:
        ask = Ask(c.genre, r.n, f"{r.length:g}s", r.sampling(), r.seed, primer, c.robot)
        pieces = generate(r.model, ask, Path(work), PieceFiles(force=True))
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
            "form": r.form or None,
            "section_bars": r.section_bars if r.form else None,
            "key_hold": r.key_hold or None,
            "seconds": round(piece.seconds, 2),
            "notes": piece.notes,
        }
        out.append({"files": {"piece.mid": piece.midi, "piece.wav": piece.wav, "piece.png": piece.png}, "info": info})
    return out


def store_takes(studio, pieces: list[dict]) -> list[dict]:
    """The generated pieces moved into takes; returns their descriptions with URLs."""
    return [studio.takes.describe(studio.takes.add(piece["files"], piece["info"])) for piece in pieces]


def start_performance(studio, take: str) -> dict:
    """Play a take to the outputs the studio was started with (in a thread); one at a time."""
    from etude.data.midi import read_piece
    from etude.perform.stream import play, score_events

    if not studio.config.outputs:
        flags = ", ".join(flag for flag, _ in OUTPUT_FLAGS.values())
        raise http_error(409, "take", f"no output to perform on: start etude studio with one of {flags}")
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
    sink = studio.config.outputs.open()
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
