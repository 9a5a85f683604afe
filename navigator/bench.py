"""`make bench`: search latency on the real directory and on a synthetic large one.

For each database (SQLite file; PostgreSQL, a private server unless a URL is given) it loads
the bundled hospice lists (CMS for the US, CQC and the Care Inspectorate for the UK), times
`search.search()` for hospices near random real ZIP centroids (25 miles, widening to 100,
first page of 3) and near random Great Britain postcode districts (25 miles, widening to 50),
then builds a synthetic directory of `--rows` providers scattered around real ZIP centroids
and times the US queries again.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from tqdm import tqdm

from providers import bundled, db, search
from providers.geo import DATA, grid_cell

GOALS_MS = {"real": 5.0, "synthetic": 50.0}


def _zip_points() -> list[tuple[float, float]]:
    with (DATA / "us_zcta_2023_centroids.csv").open() as fh:
        return [(float(r["LAT"]), float(r["LONG"])) for r in csv.DictReader(fh)]


def _outcode_points() -> list[tuple[float, float]]:
    with (DATA / "uk_outcode_centroids.csv").open() as fh:
        return [(float(r["latitude"]), float(r["longitude"])) for r in csv.DictReader(fh)]


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def time_queries(engine: Engine, points: list[tuple[float, float]],
                 country: str = "US") -> dict[str, float]:
    """p50/p95/max in ms of search() over `points`, after a short warm-up."""
    times, found = [], 0
    widen = search.widening(country)
    with Session(engine, future=True) as session:
        for lat, lon in points[:20]:
            search.search(session, lat, lon, "hospice", widen=widen)
        for lat, lon in points:
            started = time.perf_counter()
            result = search.search(session, lat, lon, "hospice", widen=widen)
            times.append((time.perf_counter() - started) * 1000)
            found += bool(result.hits)
    return {"p50": statistics.median(times), "p95": _percentile(times, 0.95),
            "max": max(times), "found": found / len(points)}


def synthesise(engine: Engine, rows: int, points: list[tuple[float, float]]) -> None:
    """Add `rows` fake providers (source 'synthetic') near real ZIP centroids."""
    rng = random.Random(7)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM providers WHERE source = 'synthetic'"))
        start = conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM providers")).scalar() + 1
    batch = 50_000
    bar = tqdm(total=rows, desc="synthetic providers", unit=" rows")
    postgres = engine.dialect.name == "postgresql"
    for first in range(0, rows, batch):
        chunk = []
        for i in range(first, min(rows, first + batch)):
            lat, lon = rng.choice(points)
            chunk.append((start + i, f"S{i}", f"Synthetic provider {i}",
                          lat + rng.uniform(-0.2, 0.2), lon + rng.uniform(-0.2, 0.2),
                          1 + i % 3))
        if postgres:
            _copy_postgres(engine, chunk)
        else:
            with engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO providers (id, source, source_id, name, country, lat, lon, "
                    "geo_precision, cell, content_hash, created_at, updated_at) VALUES (:id, "
                    "'synthetic', :sid, :name, 'US', :lat, :lon, 'zip', :cell, '-', "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                    [{"id": c[0], "sid": c[1], "name": c[2], "lat": c[3], "lon": c[4],
                      "cell": grid_cell(c[3], c[4])} for c in chunk])
                conn.execute(text("INSERT INTO provider_services VALUES (:p, :s)"),
                             [{"p": c[0], "s": c[5]} for c in chunk])
        bar.update(len(chunk))
    bar.close()
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def _copy_postgres(engine: Engine, chunk: list[tuple]) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        buf = io.StringIO()
        for pid, sid, name, lat, lon, _ in chunk:
            buf.write(f"{pid}\tsynthetic\t{sid}\t{name}\tUS\t{lat}\t{lon}\tzip\t"
                      f"{grid_cell(lat, lon)}\t-\tnow\tnow\n")
        buf.seek(0)
        cur.copy_from(buf, "providers", columns=(
            "id", "source", "source_id", "name", "country", "lat", "lon", "geo_precision",
            "cell", "content_hash", "created_at", "updated_at"))
        buf = io.StringIO("".join(f"{c[0]}\t{c[5]}\n" for c in chunk))
        cur.copy_from(buf, "provider_services", columns=("provider_id", "service_id"))
        raw.commit()
    finally:
        raw.close()


@contextlib.contextmanager
def _databases(pg: str) -> Iterator[list[tuple[str, str]]]:
    with tempfile.TemporaryDirectory(prefix="navigator-bench-") as tmp:
        dbs = [("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        if pg == "off":
            yield dbs
        elif pg == "auto":
            from navigator.pgserver import temporary_server

            with temporary_server("navigator_bench") as url:
                yield [*dbs, ("PostgreSQL", url)]
        else:
            yield [*dbs, ("PostgreSQL", pg)]


def main(args: argparse.Namespace) -> int:
    points = _zip_points()
    rng = random.Random(11)
    queries = [rng.choice(points) for _ in range(args.queries)]
    outcodes = _outcode_points()
    uk_queries = [rng.choice(outcodes) for _ in range(args.queries)]
    rows_out = []
    with _databases(args.postgres) as databases:
        for name, url in databases:
            engine = db.make_engine(url)
            bundled.ensure_ready(engine, progress=False)
            with Session(engine, future=True) as session:
                us, uk = (search.coverage(session, "hospice", c) for c in ("US", "GB"))
            real = time_queries(engine, queries)
            rows_out.append((name, f"real US ({us:,} hospices)", real, GOALS_MS["real"]))
            print(_line(*rows_out[-1]), flush=True)
            real_uk = time_queries(engine, uk_queries, "GB")
            rows_out.append((name, f"real UK ({uk:,}), to 50 mi", real_uk, GOALS_MS["real"]))
            print(_line(*rows_out[-1]), flush=True)
            if args.rows:
                synthesise(engine, args.rows, points)
                synth = time_queries(engine, queries)
                rows_out.append((name, f"synthetic ({args.rows:,} + real)", synth,
                                 GOALS_MS["synthetic"]))
                print(_line(*rows_out[-1]), flush=True)
            engine.dispose()
    print("\nsearch latency, hospices near a random US ZIP (25 mi, widening to 100, page of 3)"
          "\nor UK postcode district (25 mi, widening to 50)")
    print(f"{'database':<11} {'directory':<30} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} "
          f"{'goal p95':>8}  found")
    failed = False
    for row in rows_out:
        print(_line(*row))
        failed |= row[2]["p95"] > row[3]
    return 1 if failed else 0


def _line(name: str, label: str, t: dict[str, float], goal: float) -> str:
    mark = "ok" if t["p95"] <= goal else "SLOW"
    return (f"{name:<11} {label:<30} {t['p50']:7.2f} {t['p95']:7.2f} {t['max']:7.1f} "
            f"{goal:6.0f} {mark:<4} {t['found']:.0%}")
