from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from civicgrid.reporting.database import sqlite_engine


def test_connections_opening_a_new_file_at_once_all_switch_it_to_wal(tmp_path: Path) -> None:
    # Replicas starting together each switch the new file to WAL. SQLite refuses one of two
    # switches that meet without waiting; that used to stop a replica at start (about 1 in
    # 30 rounds of 8). Threads, not processes: SQLite drops the GIL, and rounds are cheap.
    refused: list[Exception] = []
    modes: list[str] = []

    def open_one(engine: Engine, together: threading.Barrier) -> None:
        together.wait(timeout=30)
        try:
            with engine.connect() as connection:
                modes.append(connection.execute(text("PRAGMA journal_mode")).scalar_one())
        except Exception as exc:
            refused.append(exc)

    for round_ in range(200):
        url = make_url(f"sqlite:///{tmp_path / f'model-{round_}.sqlite'}")
        engines = [sqlite_engine(url) for _ in range(8)]
        together = threading.Barrier(len(engines))
        threads = [threading.Thread(target=open_one, args=(engine, together)) for engine in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        for engine in engines:
            engine.dispose()
    assert refused == []
    assert set(modes) == {"wal"} and len(modes) == 200 * 8
