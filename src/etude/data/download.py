"""`etude corpus download`: the public piano sets behind the six-genre piano corpus.

Each set is a public GitHub repository pinned at a commit (the corpus's SOURCES.md): its archive is
fetched (resumable: a partial `.part` file is continued with an HTTP Range request), the files the
corpus kept are taken out of it by the same rules (paths, renaming, byte-duplicate removal), and
each one is checked against the SHA-256 recorded from the corpus (`piano_manifest.tsv`, hashes
only: the music itself is not in the package). The repositories state their own terms (MIT,
GPL-3.0, "for study and research only", or none): the user fetches them, étude does not
redistribute them.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import logging
import os
import re
import tarfile
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from etude.errors import InputError
from etude.paths import ensure_dir

log = logging.getLogger(__name__)
ARCHIVE_URL = "https://codeload.github.com/{repo}/tar.gz/{commit}"
MANIFEST = "piano_manifest.tsv"  # genre, file name, sha256, bytes: one line a kept file


def clean_name(name: str) -> str:
    """A file name as the corpus spells it: accents removed, every character other than ASCII
    letters, digits and `-_.` made `_`, runs of `_` collapsed, the extension `.mid`."""
    stem = unicodedata.normalize("NFKD", PurePosixPath(name).stem).encode("ascii", "ignore").decode()
    stem = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_.-]", "_", stem))
    return f"{stem}.mid"


def _in_folder(folder: str, suffixes: tuple[str, ...] = (".mid",)) -> Callable[[PurePosixPath], str | None]:
    """Files directly in `folder` (a path inside the repository) with one of `suffixes`."""

    def pick(path: PurePosixPath) -> str | None:
        ok = str(path.parent) == folder and path.suffix in suffixes
        return clean_name(path.name) if ok else None

    return pick


def _classical(path: PurePosixPath) -> str | None:
    """midis/<Composer>/*.mid, named <composer>_<name> unless the name starts with it."""
    if len(path.parts) != 3 or path.parts[0] != "midis" or path.suffix.lower() != ".mid":
        return None
    composer, name = path.parts[1].lower(), clean_name(path.name)
    return name if name.lower().startswith(composer) else clean_name(f"{composer}_{path.name}")


def _pop(path: PurePosixPath) -> str | None:
    """POP909/NNN/NNN.mid only (not the versions/ sub-folders)."""
    parts = path.parts
    return clean_name(path.name) if len(parts) == 3 and parts[0] == "POP909" and parts[2] == f"{parts[1]}.mid" else None


def _videogame(path: PurePosixPath) -> str | None:
    return _in_folder("unlabelled/train")(path) or _in_folder("unlabelled/test")(path)


@dataclass(frozen=True)
class Source:
    """One public set: where it is, which of its files the corpus kept, and how many."""

    genre: str
    repo: str  # owner/name on GitHub
    commit: str
    pick: Callable[[PurePosixPath], str | None]  # path inside the repository -> kept file name, or None
    files: int  # files the corpus kept (SOURCES.md)
    terms: str

    def url(self, base: str | None = None) -> str:
        return (base.rstrip("/") + "/{repo}/tar.gz/{commit}" if base else ARCHIVE_URL).format(
            repo=self.repo, commit=self.commit
        )


# In the corpus's genre order: a file whose bytes an earlier one already has is dropped.
SOURCES = {
    s.genre: s
    for s in (
        Source(
            "classical",
            "cheriell/ClassicalPianoMIDI-dataset",
            "505aef5e7539ac56cdb4cbc72d08a98bfaf7a208",
            _classical,
            337,
            "for study and research only (piano-midi.de terms)",
        ),
        Source(
            "pop", "music-x-lab/POP909-Dataset", "d83e6edba6872a704f5d3b8b32f5cb540088dae6", _pop, 909, "MIT License"
        ),
        Source(
            "jazz",
            "grunet01/Jazz-Piano-Generative-LSTM",
            "1d587506653bc8c987220b0325d825193dff36ef",
            _in_folder("LSTM/jazz", (".mid", ".MID")),
            306,
            "MIT License (LSTM/LICENSE)",
        ),
        Source(
            "ragtime",
            "HeavenlyBerserker/Midireader",
            "c5cfd5aadfcf46db3c101cd2408fbac058a24e33",
            _in_folder("midiReader/input/InputV1/notefiles/RAG/RAG/MathewCollection/Trachtman rolls"),
            528,
            "none stated",
        ),
        Source(
            "videogame", "lucasnfe/vgmidi", "aee4dbdfec15bc8fa85e5d8f3df3cd0446fe1faf", _videogame, 827, "none stated"
        ),
        Source(
            "folk",
            "jukedeck/nottingham-dataset",
            "0992bb6cd864f6d4b90d6663e08c0ef53ffaa08f",
            _in_folder("MIDI"),
            1029,
            "GNU General Public License v3.0",
        ),
    )
}


def read_manifest(path: Path | None = None) -> dict[tuple[str, str], str]:
    """(genre, file name) -> sha256 of every file of the corpus (the shipped manifest by default)."""
    text = Path(path).read_text() if path else (resources.files("etude") / "data" / MANIFEST).read_text()
    return {(r[0], r[1]): r[2] for r in csv.reader(io.StringIO(text), delimiter="\t") if r and not r[0].startswith("#")}


def write_manifest(corpus: Path, path: Path) -> int:
    """Record genre, name, sha256 and size of every .mid under corpus/<genre>/; returns the count."""
    rows = []
    for genre in SOURCES:
        for f in sorted((Path(corpus) / genre).glob("*.mid")):
            data = f.read_bytes()
            rows.append((genre, f.name, hashlib.sha256(data).hexdigest(), len(data)))
    with open(path, "w", newline="") as fh:
        fh.write("# genre\tname\tsha256\tbytes (etude.data.download.write_manifest of the piano corpus)\n")
        csv.writer(fh, delimiter="\t", lineterminator="\n").writerows(rows)
    return len(rows)


def fetch(url: str, target: Path, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download `url` to `target`, continuing `target.part` where an earlier try stopped."""
    if target.exists():
        return target
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: the part is whole
            os.replace(part, target)
            return target
        raise InputError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"cannot reach {url} ({reason}); are you offline? Run the command again to continue") from None
    with response:
        if have and response.status != 206:  # the server ignored the Range: start again
            have = 0
        total = response.headers.get("Content-Length")
        total = int(total) + have if total else None
        with (
            open(part, "ab" if have else "wb") as fh,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=target.name[:30],
                disable=None if progress else True,
            ) as bar,
        ):
            try:
                while chunk := response.read(1 << 16):
                    fh.write(chunk)
                    bar.update(len(chunk))
            except (OSError, urllib.error.URLError, http.client.HTTPException) as exc:
                raise InputError(
                    f"download of {url} stopped ({type(exc).__name__}); run the command again to continue"
                ) from None
    if total is not None and part.stat().st_size != total:
        raise InputError(
            f"download of {url} stopped at {part.stat().st_size} of {total} bytes; run the command again to continue"
        )
    os.replace(part, target)
    return target


def extract(source: Source, archive: Path, out: Path, manifest: dict[tuple[str, str], str]) -> tuple[int, list[str]]:
    """The files `source` kept, from its archive into out/<genre>/, each checked against the
    manifest; a byte duplicate of a file already taken is skipped (the corpus kept the first).
    Returns the count written and the problems (a missing, unexpected or changed file)."""
    folder = ensure_dir(Path(out) / source.genre, "corpus folder")
    written, problems = 0, []
    seen: set[str] = set()  # sha256 of the files taken
    expected = {name for genre, name in manifest if genre == source.genre}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                inner = PurePosixPath(*PurePosixPath(member.name).parts[1:])  # below the archive's top folder
                name = source.pick(inner) if member.isfile() and inner.parts else None
                if name is None:
                    continue
                data = tar.extractfile(member).read()
                digest = hashlib.sha256(data).hexdigest()
                if digest in seen:
                    continue  # the corpus kept the first of identical files
                seen.add(digest)
                expected.discard(name)
                want = manifest.get((source.genre, name))
                if want is None or want != digest:
                    problems.append(
                        f"{source.genre}/{name}: {'not in the corpus' if want is None else 'differs from the corpus'}"
                    )
                    continue
                tmp = folder / f".{name}.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, folder / name)
                written += 1
    except (tarfile.TarError, EOFError, OSError) as exc:
        archive.unlink(missing_ok=True)  # a broken archive is fetched anew next time
        raise InputError(
            f"{archive.name} is not a readable archive ({exc}); run the command again to fetch it anew"
        ) from None
    problems += [f"{source.genre}/{name}: missing from the archive" for name in sorted(expected)]
    return written, problems


def download(
    names: list[str], out: Path, base_url: str | None = None, manifest: Path | None = None, progress: bool = True
) -> dict[str, int]:
    """Fetch the named sets ("all": every one) into out/<genre>/, verified file by file; returns
    the files written per genre. Archives are kept in out/.archives, so a second run only checks."""
    unknown = [n for n in names if n != "all" and n not in SOURCES]
    if unknown:
        raise InputError(f"unknown set(s) {', '.join(unknown)}; choose from {', '.join(SOURCES)} or all")
    chosen = [g for g in SOURCES if "all" in names or g in names]
    hashes = read_manifest(manifest)
    archives = ensure_dir(Path(out) / ".archives", "download folder")
    counts, problems = {}, []
    for genre in chosen:
        source = SOURCES[genre]
        archive = archives / f"{source.repo.replace('/', '_')}-{source.commit[:12]}.tar.gz"
        log.info("%s: %s at %s (terms: %s)", genre, source.repo, source.commit[:12], source.terms)
        fetch(source.url(base_url), archive, progress)
        # byte duplicates were dropped within each set (none across sets), the first one kept
        counts[genre], found = extract(source, archive, out, hashes)
        problems += found
    report = Path(out) / "download-problems.txt"
    report.unlink(missing_ok=True)
    if problems:
        report.write_text("\n".join(problems) + "\n")
        raise InputError(
            f"{len(problems)} file(s) do not match the corpus (the verified ones are kept), e.g. {problems[0]}; "
            f"all in {report}"
        )
    return counts
