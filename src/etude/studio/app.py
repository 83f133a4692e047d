"""The studio's HTTP API (FastAPI) and the page on top of it.

  GET    /api/models                   models: shipped, and runs under --runs DIR
  GET    /api/defaults                 what POST /api/generate assumes for a field left out
  POST   /api/generate                 JSON or form fields (a primer file in a form) -> the new takes
  GET    /api/takes                    this session's takes
  GET    /api/takes/{id}/{file}        piece.mid, piece.wav or piece.png of a take
  DELETE /api/takes/{id}
  POST   /api/perform  {"take": id}    play a take to the configured outputs
  POST   /api/stop                     stop it, every note released
  GET    /                             the page; /docs: the OpenAPI page

Every request first passes the access checks of `etude.studio.access` (Host, Origin, token).
Errors are JSON {"detail": [{"loc": [...], "msg": ...}]} with a 4xx status naming the field.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import threading
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from etude.errors import EtudeError
from etude.studio.access import AccessMiddleware
from etude.studio.config import StudioConfig
from etude.studio.generate import (
    OPENAPI_BODY,
    GenerateRequest,
    generate_pieces,
    http_error,
    read_generate_request,
    start_performance,
    stop_performance,
    store_takes,
)
from etude.studio.jobs import QueueFull, Worker
from etude.studio.takes import FILES, TakeStore

log = logging.getLogger(__name__)
STATIC = resources.files("etude") / "studio" / "static"


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
        from etude.models.pretrained import SHIPPED

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
                    "remembers_piece": ckpt.model.remembers_piece,  # takes a form plan
                    "card": _card(ckpt.path),
                    "default": name == self.config.model,
                }
            )
        return out

    def checkpoint(self, name: str):
        from etude.models.checkpoint import load_checkpoint
        from etude.models.pretrained import model_path

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


api = APIRouter()


def _studio(request: Request) -> Studio:
    return request.app.state.studio


@api.get("/", response_class=HTMLResponse, include_in_schema=False)
def page() -> str:
    return (STATIC / "index.html").read_text()


@api.get("/api/models")
async def models(request: Request) -> list[dict]:
    return await asyncio.to_thread(_studio(request).models)


@api.get("/api/defaults")
def defaults() -> dict:
    """The generate request's defaults (the house sampling settings among them): the page's form
    starts from these, so it states no default of its own."""
    return GenerateRequest().model_dump()


@api.post("/api/generate", openapi_extra=OPENAPI_BODY)
async def generate(request: Request) -> dict:
    """Generate pieces: a JSON object or form fields (the schema below); a primer file in a form."""
    studio = _studio(request)
    fields, primer = await read_generate_request(request, studio.config.model)
    checked = await asyncio.to_thread(fields.check, studio, primer)
    work = tempfile.mkdtemp(dir=studio.takes.root)
    try:
        future = studio.worker.submit(generate_pieces, checked, work)
    except QueueFull:
        raise http_error(429, "n", "the studio is busy: too many requests are waiting; try again shortly") from None
    try:
        return {"takes": store_takes(studio, await asyncio.wrap_future(future))}
    finally:
        shutil.rmtree(work, ignore_errors=True)


@api.get("/api/takes")
def takes(request: Request) -> list[dict]:
    return _studio(request).takes.list()


@api.get("/api/takes/{take}/{name}")
def take_file(request: Request, take: str, name: str) -> FileResponse:
    path = _studio(request).takes.file(take, name)
    if path is None:
        raise HTTPException(404, [{"loc": ["path", "take"], "msg": "no such take or file"}])
    return FileResponse(path, media_type=FILES[name], filename=f"{take[:8]}-{name}")


@api.delete("/api/takes/{take}")
def delete_take(request: Request, take: str) -> dict:
    if not _studio(request).takes.delete(take):
        raise HTTPException(404, [{"loc": ["path", "take"], "msg": "no such take"}])
    return {"deleted": take}


@api.post("/api/perform")
def perform(request: Request, body: PerformRequest) -> dict:
    return start_performance(_studio(request), body.take)


@api.post("/api/stop")
def stop(request: Request) -> dict:
    return stop_performance(_studio(request))


async def _etude_error(request: Request, exc: EtudeError) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": ["body"], "msg": str(exc)}]}, status_code=422)


def create_app(config: StudioConfig | None = None) -> FastAPI:
    """The studio as an ASGI app: the API, the page, the access checks in front of both."""
    studio = Studio(config or StudioConfig())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        stop_performance(studio)
        studio.worker.close()

    app = FastAPI(title="étude studio", description=__doc__, lifespan=lifespan)
    app.state.studio = studio
    app.add_middleware(AccessMiddleware, access=studio.config.access)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.include_router(api)
    app.add_exception_handler(EtudeError, _etude_error)
    return app
