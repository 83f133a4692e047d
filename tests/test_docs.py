"""The documentation: the site builds with MkDocs in strict mode (a broken link fails it), and
every page the README points to exists."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _build(root: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_docs_build_and_a_broken_link_fails_the_build(tmp_path):
    built = _build(ROOT, tmp_path / "site")
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "data" / "index.html").is_file()
    # the same docs with one link to a page that does not exist: strict mode refuses them
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    page = copy / "docs" / "data.md"
    page.write_text(page.read_text() + "\nSee [the missing page](missing.md).\n")
    broken = _build(copy, tmp_path / "site2")
    assert broken.returncode != 0 and "missing.md" in broken.stderr


def test_every_page_the_readme_names_exists():
    readme = (ROOT / "README.md").read_text()
    pages = set(re.findall(r"\((docs/[\w./-]+\.md)\)", readme))
    assert len(pages) >= 10
    assert all((ROOT / p).is_file() for p in pages), sorted(p for p in pages if not (ROOT / p).is_file())
    assert len(readme.splitlines()) <= 200  # a user's guide; the figures live in docs/
