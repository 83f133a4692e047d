"""The studio's HTTP API (FastAPI) and the page on top of it.

  GET    /api/models                   models: shipped, and runs under --runs DIR
  POST   /api/generate                 form fields (and a primer file) -> the new takes
  GET    /api/takes                    this session's takes
  GET    /api/takes/{id}/{file}        piece.mid, piece.wav or piece.png of a take
  DELETE /api/takes/{id}
  POST   /api/perform  {"take": id}    play a take to the configured outputs
  POST   /api/stop                     stop it, every note released
  GET    /                             the page; /docs: the OpenAPI page

Errors are JSON {"detail": [{"loc": [...], "msg": ...}]} with a 4xx status naming the field.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from etude.errors import EtudeError
from etude.studio.generate import (
    GenerateRequest,
    generate_pieces,
    http_error,
    start_performance,
    stop_performance,
    store_takes,
)
from etude.studio.jobs import QueueFull, Worker
from etude.studio.takes import FILES, TakeStore

log = logging.getLogger(__name__)
MAX_N = 8  # pieces per request
MAX_SECONDS = 120.0  # length per piece
MAX_PRIMER_BYTES = 2_000_000


@dataclass
class StudioConfig:
    model: str = "pretrained"  # the default model
    runs: Path | None = None  # a folder whose run folders are offered too
    folder: Path | None = None  # where takes are written (default: a temporary folder)
    outputs: dict = field(default_factory=dict)  # perform outputs: jsonl, port, virtual, osc, serve
    max_waiting: int = 32  # generate requests queued at most


class PerformRequest(BaseModel):
    take: str


class Studio:
    """What the API works with: models, takes, the generation worker and the performance."""

    def __init__(self, config: StudioConfig):
        self.config = config
        self._tmp = None if config.folder else tempfile.TemporaryDirectory(prefix="etude-studio-")
        self.takes = TakeStore(Path(config.folder or self._tmp.name) / "takes")
        self.worker = Worker(config.max_waiting)
        self.checkpoints: dict[str, object] = {}
        self.lock = threading.Lock()
        self.playing: tuple[threading.Thread, threading.Event] | None = None

    def models(self) -> list[dict]:
        from etude.generation.generate import SHIPPED

        found = [f"pretrained:{name}" if name != "piano" else "pretrained" for name in SHIPPED]
        if self.config.runs is not None:
            found += sorted(str(p) for p in Path(self.config.runs).iterdir() if (p / "config.json").is_file())
        out = []
        for name in found:
            try:
                ckpt = self.checkpoint(name)
            except EtudeError as exc:
                log.warning("model %s: %s", name, exc)
                continue
            out.append(
                {
                    "id": name,
                    "genres": list(ckpt.encoding.genres),
                    "summary": ckpt.config.model.describe(),
                    "card": _card(ckpt.path),
                    "default": name == self.config.model,
                }
            )
        return out

    def checkpoint(self, name: str):
        from etude.generation.generate import model_path
        from etude.models.checkpoint import load_checkpoint

        with self.lock:
            if name not in self.checkpoints:
                self.checkpoints[name] = load_checkpoint(model_path(name))
            return self.checkpoints[name]


def _card(path: Path) -> str:
    """The first paragraph of a model card beside the checkpoint (or of its run), if any."""
    for folder in (path, *path.parents[:3]):
        card = folder / "MODEL_CARD.md"
        if card.is_file():
            text = card.read_text().split("\n\n")
            return next((p.strip() for p in text if p.strip() and not p.startswith("#")), "")[:600]
    return ""


def create_app(config: StudioConfig | None = None) -> FastAPI:
    studio = Studio(config or StudioConfig())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        stop_performance(studio)
        studio.worker.close()

    app = FastAPI(title="étude studio", description=__doc__, lifespan=lifespan)
    app.state.studio = studio
    static = resources.files("etude") / "studio" / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (static / "index.html").read_text()

    @app.get("/api/models")
    async def models() -> list[dict]:
        return await asyncio.to_thread(studio.models)

    @app.post("/api/generate")
    async def generate(
        model: Annotated[str, Form()] = "",
        genre: Annotated[str, Form()] = "",
        length: Annotated[float, Form(gt=0, le=MAX_SECONDS, description="seconds")] = 30.0,
        temperature: Annotated[float, Form(gt=0, le=5)] = 1.0,
        top_k: Annotated[int, Form(ge=0)] = 0,
        top_p: Annotated[float, Form(gt=0, le=1)] = 0.95,
        seed: Annotated[int, Form(ge=0)] = 0,
        n: Annotated[int, Form(ge=1, le=MAX_N)] = 1,
        robot: Annotated[str, Form()] = "",
        primer: Annotated[UploadFile | None, File()] = None,
    ) -> dict:
        request = GenerateRequest(
            model or studio.config.model, genre, length, temperature, top_k, top_p, seed, n, robot
        )
        primer_bytes = await primer.read(MAX_PRIMER_BYTES + 1) if primer is not None and primer.filename else None
        if primer_bytes is not None and len(primer_bytes) > MAX_PRIMER_BYTES:
            raise http_error(413, "primer", f"a primer is at most {MAX_PRIMER_BYTES // 1000} kB")
        checked = await asyncio.to_thread(request.check, studio, primer_bytes)
        work = tempfile.mkdtemp(dir=studio.takes.root)
        try:
            future = studio.worker.submit(generate_pieces, checked, work)
        except QueueFull:
            raise http_error(429, "n", "the studio is busy: too many requests are waiting; try again shortly") from None
        try:
            return {"takes": store_takes(studio, await asyncio.wrap_future(future))}
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @app.get("/api/takes")
    def takes() -> list[dict]:
        return studio.takes.list()

    @app.get("/api/takes/{take}/{name}")
    def take_file(take: str, name: str) -> FileResponse:
        path = studio.takes.file(take, name)
        if path is None:
            raise HTTPException(404, [{"loc": ["path", "take"], "msg": "no such take or file"}])
        return FileResponse(path, media_type=FILES[name], filename=f"{take[:8]}-{name}")

    @app.delete("/api/takes/{take}")
    def delete_take(take: str) -> dict:
        if not studio.takes.delete(take):
            raise HTTPException(404, [{"loc": ["path", "take"], "msg": "no such take"}])
        return {"deleted": take}

    @app.post("/api/perform")
    def perform(body: PerformRequest) -> dict:
        return start_performance(studio, body.take)

    @app.post("/api/stop")
    def stop() -> dict:
        return stop_performance(studio)

    @app.exception_handler(EtudeError)
    async def etude_error(request, exc: EtudeError) -> JSONResponse:
        return JSONResponse({"detail": [{"loc": ["body"], "msg": str(exc)}]}, status_code=422)

    return app
