"""A small call centre for tests: a Wazo-like source table in PostgreSQL, the real Dagster
definitions pointed at it, and readers for the resulting tables."""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Optional, Sequence

import dagster as dg
from sqlalchemy import create_engine, text

from stat_pipeline.definitions import DIMENSIONS_JOB, HOURLY_JOB, QUIET, build_definitions
from stat_pipeline.partitions import hourly_partitions
from stat_pipeline.resources import Warehouse, WazoConfig, warehouse_engine
from stat_pipeline.sources import PostgresQueueLogSource

UTC = dt.timezone.utc
DAY = dt.datetime(2024, 3, 1, tzinfo=UTC)

SOURCE_DDL = """
CREATE SCHEMA IF NOT EXISTS asterisk;
CREATE TABLE IF NOT EXISTS asterisk.queue_log (
    "time" timestamptz, callid varchar(80), queuename varchar(256), agent text,
    event varchar(20), data1 text, data2 text, data3 text, data4 text, data5 text,
    id SERIAL PRIMARY KEY)
"""


def log_rows(engine, rows: Iterable[Sequence]) -> None:
    """Insert rows (time, callid, queuename, agent, event, data1, ..., data5; data optional)
    into the Wazo-like table asterisk.queue_log of ``engine``'s database."""
    with engine.begin() as conn:
        for row in rows:
            values = list(row) + [""] * (10 - len(row))
            conn.execute(text(
                'INSERT INTO asterisk.queue_log ("time", callid, queuename, agent, event, '
                "data1, data2, data3, data4, data5) VALUES (:t, :c, :q, :a, :e, :d1, :d2, "
                ":d3, :d4, :d5)"), dict(zip(("t", "c", "q", "a", "e", "d1", "d2", "d3",
                                             "d4", "d5"), values)))


def at(hhmmss: str, day: dt.datetime = DAY) -> dt.datetime:
    h, m, s = (float(x) for x in hhmmss.split(":"))
    return day + dt.timedelta(hours=h, minutes=m, seconds=s)


def hour_key(hhmm: str, day: dt.datetime = DAY) -> str:
    return at(hhmm + ":00", day).strftime("%Y-%m-%d-%H:%M")


class CallCentre:
    """Rows go in with ``log``; ``run`` materializes hours through the real job."""

    def __init__(self, warehouse_url: str, config_path: Optional[str] = None,
                 until: Optional[dt.datetime] = None, day: dt.datetime = DAY,
                 keep_unknown_agents: bool = False,
                 wazo_config: Optional[WazoConfig] = None) -> None:
        self.url = warehouse_url
        warehouse_engine(warehouse_url)  # creates the warehouse tables
        self.engine = create_engine(warehouse_url)
        with self.engine.begin() as conn:
            conn.exec_driver_sql(SOURCE_DDL)
        self.source = PostgresQueueLogSource(url=warehouse_url, table="asterisk.queue_log",
                                             until=until.isoformat() if until else None)
        self.config = wazo_config or WazoConfig(confd_json=config_path,
                                                keep_unknown_agents=keep_unknown_agents)
        self.defs = build_definitions(
            partitions=hourly_partitions(start=day - dt.timedelta(days=1),
                                         end=day + dt.timedelta(days=2)),
            source=self.source, warehouse=Warehouse(url=warehouse_url), wazo_config=self.config)
        self.instance = dg.DagsterInstance.ephemeral()

    def log(self, *rows: Sequence) -> None:
        """rows: (time, callid, queuename, agent, event, data1, ..., data5), data optional."""
        log_rows(self.engine, rows)

    def run(self, first: str, last: Optional[str] = None,
            assets: Optional[Iterable[str]] = None) -> dg.ExecuteInProcessResult:
        """Materialize hours ``first``..``last`` (keys like '10:00' on DAY, or full keys)."""
        first_key = first if len(first) > 5 else hour_key(first)
        last_key = (last if len(last) > 5 else hour_key(last)) if last else first_key
        job = self.defs.resolve_job_def(HOURLY_JOB)
        if assets is not None:
            job = dg.define_asset_job("subset", selection=list(assets)).resolve(
                asset_graph=self.defs.resolve_asset_graph())
        result = job.execute_in_process(
            instance=self.instance, run_config=QUIET,
            resources=None if assets is None else self._resources(),
            tags={"dagster/asset_partition_range_start": first_key,
                  "dagster/asset_partition_range_end": last_key})
        assert result.success
        return result

    def _resources(self):
        return {"warehouse": Warehouse(url=self.url), "source": self.source,
                "wazo_config": self.config}

    def sync_dimensions(self) -> None:
        assert self.defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(
            instance=self.instance, run_config=QUIET).success

    def query(self, sql: str, **params) -> list:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).all()

    def calls(self) -> list[tuple]:
        """stat_call_on_queue as (callid, queue, agent, status, time, wait, talk)."""
        return self.query(
            "SELECT c.callid, q.name, a.name, CAST(c.status AS text), c.\"time\", c.waittime, "
            "c.talktime FROM stat_call_on_queue c LEFT JOIN stat_queue q ON q.id = c.stat_queue_id "
            "LEFT JOIN stat_agent a ON a.id = c.stat_agent_id ORDER BY c.\"time\", c.callid, q.name")

    def classified(self) -> list:
        return self.query("SELECT * FROM classified_calls ORDER BY call_time, callid, queuename")

    def periodic(self) -> list[tuple]:
        return self.query(
            "SELECT p.\"time\", q.name, p.answered, p.abandoned, p.total, p.\"full\", p.closed, "
            "p.joinempty, p.leaveempty, p.divert_ca_ratio, p.divert_waittime, p.timeout "
            "FROM stat_queue_periodic p LEFT JOIN stat_queue q ON q.id = p.stat_queue_id "
            "ORDER BY 1, 2")

    def close(self) -> None:
        self.engine.dispose()
