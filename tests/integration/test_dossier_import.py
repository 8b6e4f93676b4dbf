"""`chiso dossiers import` on the real PostgreSQL: one process or several (records split by dossier) store the
same events, reject the same records, and a resumed import stores nothing twice."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from bench.dvcqg_gen import write_jsonl
from services.dossiers.importer import ImportSummary, run_import, shard_of
from services.dossiers.settings import DossiersSettings

pytestmark = pytest.mark.integration

SECRET = "integration-test-key-0123456789"


def _export(tmp_path: Path) -> Path:
    """120 generated dossiers, then records every import must reject (broken JSON, no MaHoSo, an
    impossible history) and a second record of an earlier dossier (already stored: nothing new)."""
    path = write_jsonl(tmp_path / "export.jsonl", 120, seed=3)
    lines = path.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    no_id = {k: v for k, v in first.items() if k != "MaHoSo"}
    impossible = {**first, "MaHoSo": "IMPOSSIBLE-1", "NgayKetThucXuLy": "20200101080000"}
    lines += ["{not json", json.dumps(no_id, ensure_ascii=False), json.dumps(impossible, ensure_ascii=False), lines[5]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def _import(url: str, path: Path, schema: str, workers: int, rejects: Path) -> ImportSummary:
    return await run_import(
        path,
        settings=DossiersSettings(pseudonym_secret=SECRET, db_schema=schema),
        database_url=url,
        batch_size=25,
        rejects_path=rejects,
        workers=workers,
    )


async def _events(url: str, schema: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            f"SELECT event_id, stream_id, version, type, data - 'detected_at' - 'assessed_at' AS data"
            f" FROM {schema}.es_events ORDER BY stream_id, version"
        )
        return [tuple(r) for r in rows]
    finally:
        await conn.close()


def _parts(folder: Path, pattern: str) -> list[Path]:
    return list(folder.glob(pattern))


def _rejected(rejects: Path) -> list[tuple[int, str]]:
    lines = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    return sorted((line["record"], line["reason"]) for line in lines)


async def test_an_import_split_across_processes_stores_and_rejects_what_one_process_does(
    fresh_database: str, tmp_path: Path
) -> None:
    path = _export(tmp_path)
    one = await _import(fresh_database, path, "dossiers_one", 1, tmp_path / "one.rejects.jsonl")
    two = await _import(fresh_database, path, "dossiers_two", 2, tmp_path / "two.rejects.jsonl")
    assert (one.accepted, one.duplicates, one.rejected, one.events) == (120, 1, 3, one.events)
    assert (two.accepted, two.duplicates, two.rejected, two.events) == (
        one.accepted,
        one.duplicates,
        one.rejected,
        one.events,
    )
    assert two.records_done == one.records_done == 124
    stored = await _events(fresh_database, "dossiers_one")
    assert len(stored) == one.events > 120
    assert await _events(fresh_database, "dossiers_two") == stored
    assert _rejected(tmp_path / "two.rejects.jsonl") == _rejected(tmp_path / "one.rejects.jsonl")
    assert [n for n, _ in _rejected(tmp_path / "one.rejects.jsonl")] == [121, 122, 123]
    assert sorted(two.reasons.items()) == sorted(one.reasons.items())
    assert not _parts(tmp_path, "two.rejects.jsonl.*")  # the shards' parts were merged and removed


async def test_a_split_import_resumed_after_losing_a_shards_progress_stores_nothing_twice(
    fresh_database: str, tmp_path: Path
) -> None:
    path = _export(tmp_path)
    rejects = tmp_path / "r.jsonl"
    first = await _import(fresh_database, path, "dossiers", 2, rejects)
    stored = await _events(fresh_database, "dossiers")
    conn = await asyncpg.connect(fresh_database)
    try:
        # as if shard 1 crashed before committing anything: its progress is gone, the events are not
        await conn.execute("UPDATE dossiers.import_progress SET finished_at = NULL WHERE file_sha256 NOT LIKE '%#%'")
        await conn.execute(
            "UPDATE dossiers.import_progress SET records_done = 0, accepted = 0, duplicates = 0, rejected = 0,"
            " events = 0 WHERE file_sha256 LIKE '%#1/2'"
        )
        again = await _import(fresh_database, path, "dossiers", 2, rejects)
        assert await _events(fresh_database, "dossiers") == stored
        assert again.events < first.events  # shard 1's records were all already stored
        assert again.duplicates > first.duplicates
        assert again.accepted + again.duplicates + again.rejected == 124
        await conn.execute("UPDATE dossiers.import_progress SET finished_at = NULL WHERE file_sha256 NOT LIKE '%#%'")
    finally:
        await conn.close()
    for other in (1, 3):
        with pytest.raises(ValueError, match="started with --workers 2"):
            await _import(fresh_database, path, "dossiers", other, rejects)


def test_records_of_one_dossier_go_to_one_shard_whatever_their_number() -> None:
    for shards in (2, 3, 8):
        for dossier in ("00004-00000001", " 00004-00000001 ", 12345):
            assert len({shard_of(n, {"MaHoSo": dossier}, shards) for n in range(1, 50)}) == 1
        assert {shard_of(n, None, shards) for n in range(shards)} == set(range(shards))
        assert {shard_of(n, {"MaHoSo": " "}, shards) for n in range(shards)} == set(range(shards))
