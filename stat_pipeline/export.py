"""Write the Wazo tables as the golden sets' CSV files (compare_outputs.py layout)."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from stat_pipeline.sql import queries

EXPORTS = {"calls.csv": "calls", "queue_periodic.csv": "queue_periodic",
           "agent_periodic.csv": "agent_periodic"}


def export_tables(engine: Engine, out_dir: Path) -> dict[str, int]:
    out_dir.mkdir(parents=True, exist_ok=True)
    sql = queries(Path(__file__).with_name("export.sql"))
    written = {}
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        for filename, name in EXPORTS.items():
            select = str(sql[name]).strip()
            with open(out_dir / filename, "wb") as fh:
                cursor.copy_expert(f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER true)", fh)
            written[filename] = cursor.rowcount
        cursor.close()
    return written
