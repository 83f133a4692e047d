"""The studio's HTTP API through FastAPI's test client: every endpoint, bad input answered with a
4xx that names the field, JSON and form bodies alike; the access checks (Host, Origin, token, no
CORS); a generated take's MIDI loads with symusic."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from symusic import Score

from etude.perform.outputs import Outputs
from etude.studio.access import Access
from etude.studio.app import create_app
from etude.studio.config import StudioConfig

HOME = "http://127.0.0.1:8765"  # the address the test clients call the studio by


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("studio")
    outputs = Outputs(jsonl=str(folder / "performed.jsonl"))
    app = create_app(StudioConfig(model="pretrained:builtin", folder=folder, outputs=outputs))
    with TestClient(app, base_url=HOME) as c:
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


def test_a_model_that_remembers_the_piece_takes_a_form_plan(client):
    """The models say which take a form plan; such a model's take follows it and says so."""
    remembers = {m["id"]: m["remembers_piece"] for m in client.get("/api/models").json()}
    assert remembers["pretrained:piano-memory"] and not remembers["pretrained:builtin"]
    form = {"model": "pretrained:piano-memory", "genre": "folk", "form": "AABA", "length": 6}
    r = _generate(client, **form)
    assert r.status_code == 200, r.text
    take = r.json()["takes"][0]
    assert (take["form"], take["section_bars"]) == ("AABA", 4)
    # one-bar sections: a bar of these 6 s already returns to the one before (the bar after a
    # pickup to the first, or bar 2 to bar 1), where 4-bar sections had not
    short = _generate(client, **form, section_bars=1).json()
    assert short["takes"][0]["section_bars"] == 1
    assert _midi(client, short["takes"][0]) != _midi(client, take)
    plain = _generate(client).json()["takes"][0]
    assert (plain["form"], plain["section_bars"]) == (None, None)


def test_a_take_with_a_key_hold_says_so_and_differs(client):
    """12 s of irish tunes: after the first section (4 bars) a key hold of 3 changes the music,
    and the take records it; without one the take says none."""
    held = _generate(client, key_hold=3, length=12).json()["takes"][0]
    free = _generate(client, length=12).json()["takes"][0]
    assert held["key_hold"] == 3.0 and free["key_hold"] is None
    assert _midi(client, held) != _midi(client, free)


def _midi(client, take) -> bytes:
    return client.get(f"/api/takes/{take['id']}/piece.mid").content


def test_the_form_starts_from_the_house_sampling_settings(client):
    """The page states no default of its own: it reads the request's defaults, which come from Sampling."""
    from etude.generation.generate import Sampling

    defaults = client.get("/api/defaults").json()
    house = Sampling()
    assert (defaults["top_p"], defaults["temperature"], defaults["top_k"]) == (
        house.top_p,
        house.temperature,
        house.top_k,
    )
    page = client.get("/").text
    assert 'value="0.95"' not in page and str(house.top_p) not in page


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
    listed = client.get("/api/takes").json()
    assert listed[-2:] == takes  # one shape for a take in every answer: the page needs its urls


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
        ({"form": "AABA"}, 422, "form"),  # the default model here has no memory of the piece
        ({"model": "pretrained:piano-memory", "form": "A-B"}, 422, "form"),
        ({"form": "A" * 65}, 422, "form"),
        ({"section_bars": 8}, 422, "section_bars"),  # no memory of the piece here either
        ({"model": "pretrained:piano-memory", "form": "AB", "section_bars": 0}, 422, "section_bars"),
        ({"key_hold": -1}, 422, "key_hold"),
        ({"key_hold": 11}, 422, "key_hold"),
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


def test_a_json_body_is_read_with_the_same_fields_and_checks(client):
    ok = client.post("/api/generate", json={"genre": "irish", "length": 2, "seed": 3})
    assert ok.status_code == 200, ok.text
    take = ok.json()["takes"][0]
    assert take["genre"] == "irish" and take["seed"] == 3 and take["seconds"] <= 3
    for body, field in [
        ({"genre": "__none__", "length": 0}, "length"),
        ({"genre": "__none__"}, "genre"),
        ({"n": "many"}, "n"),
        ({"length": 2, "lenght": 3}, "lenght"),  # an unknown field is refused, never ignored
        ({"primer": "TVRoZA=="}, "primer"),  # a primer comes as a file in a form
    ]:
        r = client.post("/api/generate", json=body)
        assert r.status_code == 422 and field in [d["loc"][-1] for d in r.json()["detail"]], r.text
    assert (
        client.post("/api/generate", content=b"[1, 2]", headers={"content-type": "application/json"}).status_code == 422
    )
    assert client.post("/api/generate", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    other = client.post("/api/generate", content=b"genre=irish", headers={"content-type": "text/plain"})
    assert other.status_code == 415 and "application/json" in other.json()["detail"][0]["msg"]


def test_a_foreign_host_is_refused(client):
    for path in ("/", "/api/takes", "/api/models", "/static/studio.js"):
        r = client.get(path, headers={"host": "attacker.example:8765"})
        assert r.status_code == 403 and "host" in r.json()["detail"][0]["loc"], path
    assert client.post("/api/stop", headers={"host": "attacker.example:8765"}).status_code == 403
    for name in ("localhost:8765", "127.0.0.1:8765", "[::1]:8765", "LOCALHOST"):
        assert client.get("/api/takes", headers={"host": name}).status_code == 200, name


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("POST", "/api/generate", {"genre": "irish", "length": 2}),
        ("POST", "/api/perform", {"take": "{take}"}),
        ("POST", "/api/stop", None),
        ("DELETE", "/api/takes/{take}", None),
    ],
)
def test_a_foreign_origin_cannot_change_anything(client, method, path, body):
    take = _generate(client, length=2).json()["takes"][0]["id"]
    path = path.format(take=take)
    body = body and {k: v.format(take=take) if isinstance(v, str) else v for k, v in body.items()}
    before = len(client.get("/api/takes").json())
    for headers in (
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"origin": "http://127.0.0.1:9999"},  # another local server is another origin
        {"sec-fetch-site": "cross-site"},
    ):
        r = client.request(method, path, json=body, headers=headers)
        assert r.status_code == 403 and "origin" in r.json()["detail"][0]["loc"], (headers, r.text)
    assert len(client.get("/api/takes").json()) == before  # nothing made or deleted
    own = client.request(method, path, json=body, headers={"origin": HOME})
    assert own.status_code == 200, own.text


def test_a_form_post_from_another_page_is_refused(client):
    # what a hostile page's <form method=post> sends: a simple request, no preflight
    r = _generate_with(client, {"origin": "http://evil.example", "sec-fetch-site": "cross-site"})
    assert r.status_code == 403


def _generate_with(client, headers):
    data = {"genre": "irish", "length": "2"}
    return client.post("/api/generate", data=data, headers=headers)


def test_no_cors_headers_are_sent(client):
    preflight = client.options(
        "/api/generate",
        headers={"origin": "http://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    r = client.get("/api/takes", headers={"origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize(
    "host,token,hosts",
    [
        ("127.0.0.1", False, {"localhost", "127.0.0.1", "::1"}),
        ("::1", False, {"localhost", "127.0.0.1", "::1"}),
        ("127.0.0.1", True, {"localhost", "127.0.0.1", "::1"}),
        ("192.168.1.20", False, {"localhost", "127.0.0.1", "::1", "192.168.1.20"}),
        ("0.0.0.0", False, None),
    ],
)
def test_access_rules_follow_the_address(host, token, hosts):
    access = Access.for_address(host, 8765, token=token)
    assert access.hosts == hosts
    assert (access.token is not None) == (token or host not in ("127.0.0.1", "::1"))
    assert Access.for_address("0.0.0.0", 8765, ["pi.local"]).hosts == {"localhost", "127.0.0.1", "::1", "pi.local"}
    if access.token:
        assert access.url(host, 8765).endswith(f"/?token={access.token}")
        assert Access.for_address(host, 8765, token=token).token != access.token  # made at each start


def test_a_token_is_asked_on_every_api_call_beyond_loopback(tmp_path):
    access = Access.for_address("0.0.0.0", 8765)
    app = create_app(StudioConfig(model="pretrained:builtin", folder=tmp_path, access=access))
    with TestClient(app, base_url="http://studio.lan:8765") as c:
        for method, path in [
            ("GET", "/api/takes"),
            ("GET", "/api/models"),
            ("GET", "/api/defaults"),
            ("POST", "/api/stop"),
            ("GET", "/api/takes/" + "0" * 32 + "/piece.mid"),
        ]:
            r = c.request(method, path)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
        assert c.get("/api/takes", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/takes", params={"token": "wrong"}).status_code == 401
        assert c.get("/api/takes", headers={"authorization": f"Bearer {access.token}"}).status_code == 200
        assert c.get("/api/takes", params={"token": access.token}).status_code == 200
        assert c.get("/").status_code == 200 and not c.cookies  # the page itself holds no secret
        page = c.get("/", params={"token": access.token})  # the printed address: the page keeps the token
        assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=Strict" in page.headers["set-cookie"]
        assert c.get("/api/takes").status_code == 200  # as a cookie, sent by the browser on every call
        c.cookies.clear()
        assert c.get("/api/takes").status_code == 401


def test_loopback_asks_no_token_unless_told(client, tmp_path):
    assert client.get("/api/takes").status_code == 200
    access = Access.for_address("127.0.0.1", 8765, token=True)
    app = create_app(StudioConfig(model="pretrained:builtin", folder=tmp_path, access=access))
    with TestClient(app, base_url=HOME) as c:
        assert c.get("/api/takes").status_code == 401
        assert c.get("/api/takes", params={"token": access.token}).status_code == 200


def test_perform_without_outputs_names_the_studios_own_flags(tmp_path):
    with TestClient(create_app(StudioConfig(model="pretrained:builtin", folder=tmp_path)), base_url=HOME) as c:
        take = _generate(c, length=2).json()["takes"][0]["id"]
        r = c.post("/api/perform", json={"take": take})
    msg = r.json()["detail"][0]["msg"]
    assert r.status_code == 409 and "--midi-port" in msg and "--virtual" not in msg


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
        assert not pool_process.is_alive() and other.is_alive()  # gone when close returns: no wait
    finally:
        other.terminate()
        other.join(timeout=30)


def test_closing_the_worker_kills_a_process_that_ignores_sigterm():
    import signal
    import time

    from etude.studio.jobs import Worker

    worker = Worker()
    try:
        # the worker now ignores SIGTERM (a generous wait: starting it imports torch, slow on a busy machine)
        worker.submit(signal.signal, signal.SIGTERM, signal.SIG_IGN).result(timeout=600)
        sleeping = worker.submit(time.sleep, 60)
        # once the sleep is handed to the process (running), closing cannot cancel it and the
        # process is busy when the SIGTERM comes; before that, shutdown could cancel it and the
        # idle process would leave on its own (exit code 0: the race this wait removes)
        deadline = time.monotonic() + 600
        while not sleeping.running() and time.monotonic() < deadline:
            time.sleep(0.01)
        pool_process = next(iter(worker.pool._processes.values()))
    finally:
        worker.close(grace=0.2)
    assert not pool_process.is_alive() and pool_process.exitcode == -signal.SIGKILL
