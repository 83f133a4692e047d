"""`etude corpus download` against a local HTTP server serving an archive the test builds: no
test needs the network."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from etude.cli import main
from etude.data.download import SOURCES, clean_name, download, read_manifest, write_manifest
from etude.errors import InputError


def _archive(members: dict[str, bytes], top: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Server:
    """Serves `archives` (URL path -> bytes) with HTTP Range support; the first request of each
    path is cut off half-way when `cut_first`, as a dropped connection would."""

    def __init__(self, archives: dict[str, bytes], cut_first: bool):
        served: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(handler):
                data = archives.get(handler.path)
                self.requests.append((handler.path, handler.headers.get("Range")))
                if data is None:
                    handler.send_error(404)
                    return
                start = int(handler.headers["Range"].split("=")[1].rstrip("-")) if handler.headers.get("Range") else 0
                handler.send_response(206 if start else 200)
                handler.send_header("Content-Length", str(len(data) - start))
                handler.end_headers()
                first = served.setdefault(handler.path, 0) == 0
                served[handler.path] += 1
                body = data[start:]
                handler.wfile.write(body[: len(body) // 2] if cut_first and first else body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def folk_set(piano_corpus, tmp_path):
    """A stand-in for the folk repository: 5 real corpus files under MIDI/, a byte copy of one
    (dropped, as the corpus dropped duplicates), and files outside MIDI/ (not kept)."""
    real = sorted((piano_corpus / "folk").glob("*.mid"))[:5]
    members = {f"MIDI/{f.name}": f.read_bytes() for f in real}
    members["MIDI/zz_copy.mid"] = real[0].read_bytes()
    members["MIDI/melody/ashover1.mid"] = b"MThd not kept"
    members["README.md"] = b"# not kept"
    source = SOURCES["folk"]
    archive = _archive(members, f"nottingham-dataset-{source.commit}")
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("".join(f"folk\t{f.name}\t{hashlib.sha256(f.read_bytes()).hexdigest()}\t0\n" for f in real))
    return {f"/{source.repo}/tar.gz/{source.commit}": archive}, manifest, real


def test_a_dropped_download_resumes_and_every_file_is_verified(folk_set, tmp_path):
    archives, manifest, real = folk_set
    server = _Server(archives, cut_first=True)
    try:
        out = tmp_path / "corpus"
        with pytest.raises(InputError, match="run the command again to continue"):
            download(["folk"], out, base_url=server.url, manifest=manifest, progress=False)
        part = list((out / ".archives").glob("*.part"))
        assert len(part) == 1 and 0 < part[0].stat().st_size < len(next(iter(archives.values())))
        had = part[0].stat().st_size
        counts = download(["folk"], out, base_url=server.url, manifest=manifest, progress=False)
        assert counts == {"folk": 5}
        assert server.requests[-1][1] == f"bytes={had}-"  # continued, not started again
        assert sorted(p.name for p in (out / "folk").iterdir()) == sorted(f.name for f in real)
        for f in real:
            assert (out / "folk" / f.name).read_bytes() == f.read_bytes()
        again = download(
            ["folk"], out, base_url=server.url, manifest=manifest, progress=False
        )  # archive kept: no request
        assert again == {"folk": 5} and len(server.requests) == 2
    finally:
        server.close()


def test_a_file_that_differs_from_the_corpus_is_refused(folk_set, tmp_path):
    archives, manifest, real = folk_set
    path = next(iter(archives))
    members = {f"MIDI/{f.name}": f.read_bytes() for f in real}
    members[f"MIDI/{real[1].name}"] += b"\x00"  # changed upstream
    archives[path] = _archive(members, "top")
    server = _Server(archives, cut_first=False)
    try:
        with pytest.raises(InputError, match="1 file\\(s\\) do not match"):
            download(["folk"], tmp_path / "c", base_url=server.url, manifest=manifest, progress=False)
        assert not (tmp_path / "c" / "folk" / real[1].name).exists()
        assert len(list((tmp_path / "c" / "folk").glob("*.mid"))) == 4
        assert "differs from the corpus" in (tmp_path / "c" / "download-problems.txt").read_text()
    finally:
        server.close()


def test_offline_and_unknown_names_are_one_line(tmp_path, capsys):
    assert main(["corpus", "download", "folk", "--out", str(tmp_path), "--base-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach" in err[0] and "offline" in err[0]
    assert main(["corpus", "download", "polka", "--out", str(tmp_path)]) == 2
    assert "unknown set(s) polka" in capsys.readouterr().err


def test_the_shipped_manifest_matches_the_corpus_and_its_sources(piano_corpus, tmp_path):
    """The hashes in the package are those of ../shared/data/piano, and SOURCES' counts are its."""
    assert write_manifest(piano_corpus, tmp_path / "m.tsv") == 3936
    assert read_manifest(tmp_path / "m.tsv") == read_manifest()
    per_genre = {g: sum(1 for (genre, _) in read_manifest() if genre == g) for g in SOURCES}
    assert per_genre == {g: s.files for g, s in SOURCES.items()}


def test_names_are_cleaned_as_the_corpus_did():
    assert clean_name("Débussy  Clair de lune!.MID") == "Debussy_Clair_de_lune_.mid"
    assert SOURCES["classical"].pick(Path("midis/Chopin/chpn_op10_e01.mid")) == "chopin_chpn_op10_e01.mid"
    assert SOURCES["classical"].pick(Path("midis/albeniz/albeniz_x.mid")) == "albeniz_x.mid"
    assert SOURCES["pop"].pick(Path("POP909/001/001.mid")) == "001.mid"
    assert SOURCES["pop"].pick(Path("POP909/001/versions/001_v1.mid")) is None
    assert SOURCES["folk"].pick(Path("MIDI/melody/x.mid")) is None
