from etude.data.builtin import export_builtin


def test_export_is_resumable(tmp_path):
    counts = export_builtin(tmp_path, per_genre=2, styles=["bach", "fiddle"], workers=2)
    assert counts["bach"] >= 2 and counts["fiddle"] >= 2
    files = sorted(p.name for p in (tmp_path / "bach").glob("*.mid"))
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.mid")}
    again = export_builtin(tmp_path, per_genre=2, styles=["bach", "fiddle"], workers=2)
    assert again == counts
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.mid")} == stamps  # nothing rewritten
    more = export_builtin(tmp_path, per_genre=3, styles=["bach"], workers=1)
    assert more["bach"] >= 3
    assert set(files) <= {p.name for p in (tmp_path / "bach").glob("*.mid")}
