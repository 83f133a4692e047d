"""The studio's HTTP API through FastAPI's test client: every endpoint, and bad input answered
with a 4xx that names the field; a generated take's MIDI loads with symusic."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from symusic import Score

from etude.studio.app import StudioConfig, create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("studio")
    outputs = {"jsonl": str(folder / "performed.jsonl")}
    app = create_app(StudioConfig(model="pretrained:builtin", folder=folder, outputs=outputs))
    with TestClient(app) as c:
        c.folder = folder
        yield c


def _generate(client, **fields):
    data = {"genre": "irish", "length": "3", "seed": "1", **{k: str(v) for k, v in fields.items()}}
    files = {"primer": fields.pop("_primer")} if "_primer" in fields else None
    data.pop("_primer", None)
    return client.post("/api/generate", data=data, files=files)


def _field(response) -> str:
    return response.json()["detail"][0]["loc"][-1]


def test_models_list_the_shipped_ones_with_genres(client):
    models = client.get("/api/models").json()
    ids = [m["id"] for m in models]
    assert "pretrained" in ids and "pretrained:builtin" in ids
    builtin = next(m for m in models if m["id"] == "pretrained:builtin")
    assert builtin["default"] and "irish" in builtin["genres"] and builtin["summary"].startswith("lstm")


def test_generate_writes_takes_whose_files_load(client, tmp_path):
    r = _generate(client, n=2, robot="toy-25")
    assert r.status_code == 200, r.text
    takes = r.json()["takes"]
    assert len(takes) == 2 and all(t["genre"] == "irish" and t["robot"] == "toy-25" for t in takes)
    midi = client.get(takes[0]["urls"]["mid"])
    assert midi.status_code == 200 and midi.headers["content-type"] == "audio/midi"
    (tmp_path / "take.mid").write_bytes(midi.content)
    assert Score(str(tmp_path / "take.mid")).note_num() == takes[0]["notes"] > 0
    assert client.get(takes[0]["urls"]["png"]).content[:4] == b"\x89PNG"
    assert client.get(takes[0]["urls"]["wav"]).content[:4] == b"RIFF"
    listed = [t["id"] for t in client.get("/api/takes").json()]
    assert [t["id"] for t in takes] == listed[-2:]


def test_a_primer_is_continued_and_a_non_midi_primer_refused(client, good_corpus):
    primer = (good_corpus / "march" / "march0.mid").read_bytes()
    ok = _generate(client, _primer=("march0.mid", primer, "audio/midi"))
    assert ok.status_code == 200, ok.text
    bad = _generate(client, _primer=("notes.mid", b"this is not MIDI", "audio/midi"))
    assert bad.status_code == 422 and _field(bad) == "primer"


@pytest.mark.parametrize(
    "fields,status,field",
    [
        ({"genre": "polka"}, 422, "genre"),
        ({"length": 0}, 422, "length"),
        ({"length": 1000}, 422, "length"),
        ({"n": 50}, 422, "n"),
        ({"n": "many"}, 422, "n"),
        ({"temperature": -1}, 422, "temperature"),
        ({"model": "no/such/run"}, 422, "model"),
        ({"robot": "a-robot-that-is-not"}, 422, "robot"),
    ],
)
def test_bad_generate_requests_get_a_4xx_naming_the_field(client, fields, status, field):
    r = _generate(client, **fields)
    assert r.status_code == status and _field(r) == field, r.text
    assert "Traceback" not in r.text


@pytest.mark.parametrize(
    "path",
    [
        "/api/takes/0123456789abcdef0123456789abcdef/piece.mid",  # no such take
        "/api/takes/..%2F..%2Fetc/passwd",
        "/api/takes/%2E%2E/piece.mid",
        "/api/takes/{take}/take.json",  # a take's own file that is not served
        "/api/takes/{take}/..%2Ftake.json",
    ],
)
def test_only_files_the_studio_wrote_are_served(client, path):
    take = _generate(client).json()["takes"][0]["id"]
    r = client.get(path.format(take=take))
    assert r.status_code == 404


def test_delete_perform_and_stop(client):
    take = _generate(client, length=2).json()["takes"][0]["id"]
    r = client.post("/api/perform", json={"take": take})
    assert r.status_code == 200 and r.json()["playing"] == take
    assert client.post("/api/stop").json() == {"stopped": True}
    rows = [json.loads(line) for line in (client.folder / "performed.jsonl").read_text().splitlines()]
    assert rows[-1]["control"] == 123  # every note released
    assert client.post("/api/perform", json={"take": "f" * 32}).status_code == 404
    assert client.post("/api/perform", json={}).status_code == 422
    assert client.delete(f"/api/takes/{take}").status_code == 200
    assert client.delete(f"/api/takes/{take}").status_code == 404
    assert client.get(f"/api/takes/{take}/piece.mid").status_code == 404


def test_the_page_and_the_api_docs_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="generate"' in page.text and "/static/studio.js" in page.text
    assert client.get("/static/studio.js").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/api/models", "/api/generate", "/api/takes/{take}/{name}", "/api/perform", "/api/stop"} <= set(
        schema["paths"]
    )


def test_the_worker_keeps_order_and_refuses_beyond_its_queue():
    import time

    from etude.studio.jobs import QueueFull, Worker

    worker = Worker(max_waiting=2)
    try:
        first = worker.submit(time.sleep, 0.5)
        second = worker.submit(abs, -2)
        with pytest.raises(QueueFull):
            worker.submit(abs, -3)
        assert second.result(timeout=60) == 2 and first.done()  # first in, first out
        assert worker.submit(abs, -4).result(timeout=60) == 4  # room again
    finally:
        worker.close()


def test_closing_the_worker_ends_its_process_only():
    import multiprocessing
    import time

    from etude.studio.jobs import Worker

    other = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(60,))
    other.start()
    worker = Worker()
    try:
        worker.submit(time.sleep, 60)  # abandoned by close
        pool_process = next(iter(worker.pool._processes.values()))
        worker.close()
        pool_process.join(timeout=30)
        assert not pool_process.is_alive() and other.is_alive()
    finally:
        other.terminate()
        other.join(timeout=30)
