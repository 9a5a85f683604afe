"""Radius search over the directory: an indexed bounding box, then exact great-circle distance.

The box (`lat BETWEEN .. AND lon BETWEEN ..`) uses the `ix_providers_lat_lon` index, so the
database never scans the whole table; the few rows inside it are measured with the haversine
formula and sorted here, which works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from providers.geo import distance_miles, grid_cell
from providers.models import Provider, Service, provider_services

WIDENING_MILES = (25, 50, 100)
# How far a search may widen, by country. Great Britain stops at 50 miles: the UK list is
# not complete, so a place farther away is too likely not to be the nearest one.
WIDENING_BY_COUNTRY = {"US": WIDENING_MILES, "GB": (25, 50)}
MILES_PER_DEGREE_LAT = 69.05


@dataclass(frozen=True)
class Hit:
    """One provider found, with what a reply needs (no ORM object leaks out)."""

    id: int
    name: str
    distance_miles: float
    address_line1: str | None
    address_line2: str | None
    city: str | None
    region: str | None
    postal_code: str | None
    country: str
    phone: str | None
    website: str | None
    lat: float
    lon: float
    geo_precision: str
    source: str
    source_id: str
    ownership: str | None
    certified_on: str | None
    updated_on: str
    beds: int | None = None
    as_of: str | None = None
    kinds: tuple[str, ...] = ()  # of hospice: hospice_inpatient, hospice_at_home, ...


@dataclass(frozen=True)
class SearchResult:
    """A page of hits within `radius_miles`; `widened_from` is set when the search grew.

    `total` stops counting at COUNT_CAP: read it as "at least" when it equals the cap.
    """

    hits: list[Hit]
    total: int
    radius_miles: int
    offset: int
    widened_from: int | None = None

    @property
    def has_more(self) -> bool:
        """Whether another page exists."""
        return self.offset + len(self.hits) < self.total


def widening(country: str | None) -> tuple[int, ...]:
    """The radii a search in a country starts at and may widen to, in miles."""
    return WIDENING_BY_COUNTRY.get(country or "US", WIDENING_MILES)


def bounding_box(lat: float, lon: float, miles: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) that contains every point within `miles`."""
    dlat = miles / MILES_PER_DEGREE_LAT
    cos = math.cos(math.radians(min(89.0, abs(lat) + dlat)))
    dlon = min(180.0, miles / (MILES_PER_DEGREE_LAT * max(cos, 0.01)))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


_HIT_COLUMNS = (Provider.id, Provider.name, Provider.address_line1, Provider.address_line2,
                Provider.city, Provider.region, Provider.postal_code, Provider.country,
                Provider.phone, Provider.website, Provider.lat, Provider.lon,
                Provider.geo_precision, Provider.source, Provider.source_id,
                Provider.ownership, Provider.certified_on, Provider.updated_at, Provider.beds,
                Provider.as_of, Provider.kinds)
_service_ids: dict[tuple[str, str], int | None] = {}


def _service_id(session: Session, service: str) -> int | None:
    """Id of a service code, remembered per database (codes never change id)."""
    key = (str(session.get_bind().url), service)
    if key not in _service_ids:
        _service_ids[key] = session.execute(
            select(Service.id).where(Service.code == service)).scalar()
    return _service_ids[key]


def _to_hit(row, miles: float) -> Hit:  # noqa: ANN001 - a Row of _HIT_COLUMNS
    updated = row.updated_at
    if isinstance(updated, str):  # SQLite through plain SQL returns the stored text
        updated = datetime.fromisoformat(updated)
    return Hit(row.id, row.name, round(miles, 1), row.address_line1, row.address_line2,
               row.city, row.region, row.postal_code, row.country, row.phone, row.website,
               row.lat, row.lon, row.geo_precision, row.source, row.source_id, row.ownership,
               row.certified_on, updated.date().isoformat() if updated else "", row.beds,
               row.as_of, tuple(row.kinds.split(";")) if row.kinds else ())


def _rows(session: Session, ids: list[int]) -> dict[int, object]:
    return {r.id: r for r in session.execute(select(*_HIT_COLUMNS).where(Provider.id.in_(ids)))}


def _cell_ranges(lat: float, lon: float, miles: float) -> list[tuple[int, int]]:
    """(first, last) grid cells per grid row that cover the bounding box."""
    min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, miles)
    first, last = grid_cell(min_lat, min_lon), grid_cell(max_lat, max_lon)
    lo_col, hi_col = first % 1000, last % 1000
    return [(row * 1000 + lo_col, row * 1000 + hi_col)
            for row in range(first // 1000, last // 1000 + 1)]


MAX_CELL_ROWS = 10  # grid rows one query can name: 0.5 deg each, so up to ~300 miles
_HIT_SQL = ("id, name, address_line1, address_line2, city, region, postal_code, country, phone,"
            " website, lat, lon, geo_precision, source, source_id, ownership, certified_on,"
            " updated_at, beds, as_of, kinds")
_D2 = "((lat - :lat) * (lat - :lat) + ((lon - :lon) * :k) * ((lon - :lon) * :k))"
_SERVICE = (" AND EXISTS (SELECT 1 FROM provider_services ps"
            " WHERE ps.provider_id = providers.id AND ps.service_id = :sid)")


def _where(service: bool) -> str:
    cells = " OR ".join(f"cell BETWEEN :a{i} AND :b{i}" for i in range(MAX_CELL_ROWS))
    return (f"({cells}) AND lat BETWEEN :min_lat AND :max_lat"
            f" AND lon BETWEEN :min_lon AND :max_lon" + (_SERVICE if service else ""))


# Plain SQL with bound parameters, built once: the same text on SQLite and PostgreSQL, and
# no per-query cost of assembling an expression (that cost was most of a search).
_PAGE = {svc: text(f"SELECT {_HIT_SQL} FROM providers WHERE {_where(svc)} AND {_D2} <= :r2"
                   f" ORDER BY {_D2}, id LIMIT :limit OFFSET :offset") for svc in (0, 1)}


_CAPPED = {svc: text(f"SELECT COUNT(*) FROM (SELECT 1 FROM providers WHERE {_where(svc)}"
                     f" AND {_D2} <= :r2 LIMIT :cap) AS near") for svc in (0, 1)}
SMALL_COUNT = 30  # up to this many in the circle, one query sorts them all
COUNT_CAP = 100  # counts stop here ("100 or more"): a dense city need not be counted out


@lru_cache(maxsize=16)
def _count_sql(service: bool, radii: int) -> TextClause:
    sums = ", ".join(f"COALESCE(SUM(CASE WHEN {_D2} <= :r{i} THEN 1 ELSE 0 END), 0)"
                     for i in range(radii))
    return text(f"SELECT {sums} FROM providers WHERE {_where(service)}")


def _params(session: Session, lat: float, lon: float, miles: float,
            service: str | None) -> dict | None:
    """Bound values for the cells and box around a point (None: unknown service)."""
    min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, miles)
    ranges = _cell_ranges(lat, lon, miles)
    if len(ranges) > MAX_CELL_ROWS:  # huge radius: one range over all the rows' cells
        ranges = [(ranges[0][0], ranges[-1][1])]
    params = {"lat": lat, "lon": lon, "k": math.cos(math.radians(lat)), "min_lat": min_lat,
              "max_lat": max_lat, "min_lon": min_lon, "max_lon": max_lon}
    for i in range(MAX_CELL_ROWS):
        params[f"a{i}"], params[f"b{i}"] = ranges[i] if i < len(ranges) else (-1, -1)
    if service:
        params["sid"] = _service_id(session, service)
        if params["sid"] is None:
            return None
    return params


def _r2(miles: float) -> float:
    """The radius as a squared flat-earth distance in degrees of latitude.

    Flat-earth distance orders points as miles do (over 100 miles its error is far below a
    mile) and needs no trigonometry in SQL (SQLite has none); exact miles come after.
    """
    return (miles / MILES_PER_DEGREE_LAT) ** 2


def count_within(session: Session, lat: float, lon: float, radii: Sequence[float],
                 service: str | None = None) -> list[int]:
    """How many providers lie within each radius (one query over the largest box)."""
    params = _params(session, lat, lon, max(radii), service)
    if params is None:
        return [0 for _ in radii]
    params.update({f"r{i}": _r2(r) for i, r in enumerate(radii)})
    row = session.execute(_count_sql(bool(service), len(radii)), params).one()
    return [int(n) for n in row]


def within(session: Session, lat: float, lon: float, miles: float,
           service: str | None = None, limit: int = 1000,
           offset: int = 0) -> list[tuple[float, object]]:
    """(miles, row) of providers within `miles`, nearest first: the page asked for.

    The grid-cell ranges and the box use the `ix_providers_cell (cell, lat, lon)` index, so
    the database reads only the cells around the point, however big the table.
    """
    params = _params(session, lat, lon, miles, service)
    if params is None:
        return []
    params.update(r2=_r2(miles), limit=limit, offset=offset)
    found = [(distance_miles(lat, lon, row.lat, row.lon), row)
             for row in session.execute(_PAGE[bool(service)], params)]
    found.sort(key=lambda pair: (pair[0], pair[1].id))
    return found


def search(
    session: Session,
    lat: float,
    lon: float,
    service: str | None = None,
    radius_miles: int = WIDENING_MILES[0],
    limit: int = 3,
    offset: int = 0,
    widen: Sequence[int] = WIDENING_MILES,
    min_results: int = 1,
) -> SearchResult:
    """Providers near (lat, lon), nearest first, a page of `limit` from `offset`.

    When fewer than `min_results` lie within `radius_miles`, the search widens to the
    smallest larger radius in `widen` that has enough, and the result says which radius was
    asked for first.
    """
    used = radius_miles
    params = _params(session, lat, lon, radius_miles, service)
    if params is None:
        return SearchResult([], 0, radius_miles, offset)
    params.update(r2=_r2(radius_miles), cap=COUNT_CAP)
    total = int(session.execute(_CAPPED[bool(service)], params).scalar())
    larger = [r for r in widen if r > radius_miles]
    if total < min_results and larger:
        counts = count_within(session, lat, lon, larger, service)
        for radius, count in zip(larger, counts, strict=True):
            used, total = radius, count
            if count >= min_results:
                break
    page: list[tuple[float, object]] = []
    wanted = offset + limit
    # The nearest `wanted` inside a small circle are the nearest of all: try small circles
    # first, so a dense city sorts a few dozen rows, not thousands.
    steps = (used / 8, used / 2.5, used) if total > SMALL_COUNT else (used,)
    for step in steps:
        page = within(session, lat, lon, step, service, wanted, 0) if total else []
        if len(page) >= wanted or step == used:
            break
    hits = [_to_hit(row, d) for d, row in page[offset:offset + limit]]
    return SearchResult(hits, total, used, offset,
                        widened_from=radius_miles if used != radius_miles else None)


def get_many(session: Session, provider_ids: Sequence[int], lat: float, lon: float) -> list[Hit]:
    """Providers by id, in the order given (missing ones left out), with their distance from
    (lat, lon): one query."""
    rows = _rows(session, list(provider_ids))
    return [_to_hit(rows[pid], distance_miles(lat, lon, rows[pid].lat, rows[pid].lon))
            for pid in provider_ids if pid in rows]


def holds(session: Session, service: str | None = None, country: str | None = None) -> bool:
    """Whether the directory has any provider of a service (in a country): one indexed probe,
    cheap enough to ask before every search."""
    query = select(Provider.id)
    if country:
        query = query.where(Provider.country == country)
    if service:
        query = query.join(provider_services).join(Service).where(Service.code == service)
    return session.execute(query.limit(1)).first() is not None


def coverage(session: Session, service: str | None = None, country: str | None = None) -> int:
    """How many providers the directory holds for a service (and country)."""
    query = select(func.count(Provider.id))
    if country:
        query = query.where(Provider.country == country)
    if service:
        query = query.join(provider_services).join(Service).where(Service.code == service)
    return int(session.execute(query).scalar() or 0)
