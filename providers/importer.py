"""Load providers from CSV files: the CMS hospice list, the UK hospice list (CQC and the Care
Inspectorate, providers/data/uk_hospices.csv), or the generic format in README.md.

Idempotent: a record is keyed by (source, source_id); a re-run updates changed rows, leaves
unchanged ones alone and never duplicates. Rows that cannot be used are written to a report
with the reason, never dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from tqdm import tqdm

from providers.geo import UK_POSTCODE, Gazetteer, distance_miles, gazetteer, grid_cell
from providers.models import Provider, Service, utcnow
from providers.services import HOSPICE_KINDS

CMS_SOURCE = "cms_hospice"
CMS_COLUMNS = ("CMS Certification Number (CCN)", "Facility Name", "Address Line 1",
               "Address Line 2", "City", "State", "Zip Code", "County Name", "PhoneNumber",
               "Ownership Type", "Certification Date")
GENERIC_REQUIRED = ("source_id", "name", "services", "postal_code")
GENERIC_OPTIONAL = ("address_line1", "address_line2", "city", "region", "country", "county",
                    "phone", "website", "ownership", "lat", "lon", "beds", "as_of")
UK_FILE_NAME = "uk_hospices"
UK_SOURCES = {"England": "cqc", "Scotland": "care_inspectorate"}  # nation -> source
UK_COLUMNS = ("source_id", "name", "address", "town", "postcode", "phone", "nation",
              "service_type", "client_group", "provider_name", "county", "local_authority",
              "latitude", "longitude", "beds", "website", "data_date")
# A row's own point is used only within this distance of its postcode district's centre;
# farther, the row is rejected as inconsistent (none of the bundled rows is).
MAX_POINT_MILES = 15
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,39}$")


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (missing, wrong columns, wrong encoding)."""


class RowError(ValueError):
    """One row cannot be imported; the message is the reason written to the report."""


@dataclass
class ImportSummary:
    """What an import did. `rejected` rows are listed in `report_path`."""

    source: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    not_in_file: int = 0
    report_path: Path | None = None
    reasons: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        text = (f"{self.source}: {self.added} added, {self.updated} updated, "
                f"{self.unchanged} unchanged, {self.rejected} rejected")
        if self.not_in_file:
            text += f"; {self.not_in_file} already in the directory but not in this file (kept)"
        if self.report_path:
            text += f"\nrejected rows and reasons: {self.report_path}"
        return text


def normalise_phone(raw: str, country: str) -> str | None:
    """E.164 ('+13343955000') from a US or UK phone number as printed; None if unusable."""
    digits = re.sub(r"\D", "", raw or "")
    if country == "US":
        if len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]
        return f"+1{digits}" if len(digits) == 10 and digits[0] not in "01" else None
    if country == "GB":
        if digits.startswith("44"):
            digits = "0" + digits[2:]
        return f"+44{digits[1:]}" if len(digits) in (10, 11) and digits.startswith("0") else None
    return None


def _iso_date(text: str) -> str | None:
    for fmt in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text.strip(), fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _geocode(gaz: Gazetteer, postal_code: str, country: str) -> tuple[float, float, str]:
    if country == "US":
        code = postal_code.strip()
        if not re.fullmatch(r"\d{5}(-?\d{4})?", code):
            raise RowError(f"not a US ZIP code: {code!r}")
        place = gaz.zip(code[:5])
        if place is None:
            raise RowError(f"ZIP code {code[:5]} is not in the bundled ZIP data")
    else:
        code = postal_code.strip().upper()
        if not (UK_POSTCODE.fullmatch(code) or re.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]?", code)):
            raise RowError(f"not a UK postcode: {code!r}")
        place = gaz.postcode(code)
        if place is None:
            raise RowError(f"postcode district of {code!r} is not in the bundled data "
                           "(Northern Ireland BT postcodes are not included)")
    return place.lat, place.lon, place.precision


def _read_csv(path: Path) -> tuple[list[str], Iterator[dict[str, str]], int]:
    if not path.is_file():
        raise ImportFileError(f"no such file: {path}")
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            total = sum(1 for _ in fh) - 1
        fh = path.open(encoding="utf-8-sig", newline="")
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
    except UnicodeDecodeError as err:
        raise ImportFileError(f"{path} is not UTF-8 text: save it as UTF-8 CSV") from err

    def rows() -> Iterator[dict[str, str]]:
        with fh:
            for row in reader:
                yield {(k or "").strip(): (v or "").strip() if isinstance(v, str) else ""
                       for k, v in row.items()}

    return columns, rows(), max(total, 0)


Parsed = Iterator[tuple[dict[str, str], "dict | RowError"]]


def cms_records(rows: Iterable[dict[str, str]], gaz: Gazetteer) -> Parsed:
    """(row, record or RowError) for the CMS 'Hospice - General Information' rows."""
    for row in rows:
        try:
            ccn, name = row["CMS Certification Number (CCN)"], row["Facility Name"]
            if not ccn or not name:
                raise RowError("missing CCN or facility name")
            lat, lon, precision = _geocode(gaz, row["Zip Code"], "US")
            yield row, {
                "source_id": ccn, "name": name, "address_line1": row["Address Line 1"] or None,
                "address_line2": row["Address Line 2"] or None, "city": row["City"] or None,
                "region": row["State"] or None, "postal_code": row["Zip Code"][:5],
                "country": "US", "county": row["County Name"] or None,
                "phone": normalise_phone(row["PhoneNumber"], "US"), "website": None,
                "ownership": row["Ownership Type"] or None,
                "certified_on": _iso_date(row["Certification Date"]),
                "lat": lat, "lon": lon, "geo_precision": precision, "services": ["hospice"],
            }
        except RowError as err:
            yield row, err


def generic_records(
    rows: Iterable[dict[str, str]], gaz: Gazetteer, known_services: set[str]
) -> Parsed:
    """(row, record or RowError) for the generic CSV format (see providers/README.md)."""
    for row in rows:
        try:
            if not row.get("source_id") or not row.get("name"):
                raise RowError("missing source_id or name")
            services = [s.strip().lower() for s in re.split(r"[;|]", row["services"]) if s.strip()]
            unknown = sorted(set(services) - known_services)
            if not services or unknown:
                raise RowError(f"services must be some of {sorted(known_services)} "
                               f"separated by ';' (got {row['services']!r})")
            if set(services) & set(HOSPICE_KINDS) and "hospice" not in services:
                services.insert(0, "hospice")  # a kind of hospice is a hospice
            extra = {}
            if row.get("beds"):
                extra["beds"] = _beds(row["beds"])
            if row.get("as_of"):
                extra["as_of"] = _iso_date(row["as_of"])
                if extra["as_of"] is None:
                    raise RowError(f"as_of is not a date like 2026-11-01 (got {row['as_of']!r})")
            country = (row.get("country") or "US").upper().replace("UK", "GB")
            if country not in ("US", "GB"):
                raise RowError(f"country must be US or GB (got {row.get('country')!r})")
            if row.get("lat") and row.get("lon"):
                try:
                    lat, lon = float(row["lat"]), float(row["lon"])
                except ValueError as err:
                    raise RowError("lat/lon are not numbers") from err
                if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                    raise RowError("lat/lon out of range")
                precision = "given"
            else:
                lat, lon, precision = _geocode(gaz, row["postal_code"], country)
            yield row, {
                "source_id": row["source_id"][:64], "name": row["name"][:200],
                "address_line1": row.get("address_line1") or None,
                "address_line2": row.get("address_line2") or None,
                "city": row.get("city") or None, "region": row.get("region") or None,
                "postal_code": row["postal_code"].upper()[:12], "country": country,
                "county": row.get("county") or None,
                "phone": normalise_phone(row.get("phone", ""), country),
                "website": (row.get("website") or None) if (row.get("website") or "").startswith(
                    ("https://", "http://")) else None,
                "ownership": row.get("ownership") or None, "certified_on": None,
                "lat": lat, "lon": lon, "geo_precision": precision, "services": services,
                **extra,
            }
        except RowError as err:
            yield row, err


def _beds(text: str) -> int | None:
    return int(text) if (text or "").strip().isdigit() else None


def uk_kinds(row: dict[str, str]) -> list[str]:
    """The kinds of hospice a uk_hospices.csv row is, read mechanically from the register:
    children's (client group 'children', or 'child' in its or its provider's name), at home
    (CQC 'Home hospice care', or a Care Inspectorate 'Care at Home' service), in-patient
    (CQC 'Hospice' with a number of beds above 0)."""
    types = {t.strip() for t in re.split(r";| - ", row["service_type"])}
    kinds = []
    names = f"{row['name']} {row['provider_name']}".lower()
    if row["client_group"] == "children" or "child" in names:
        kinds.append("childrens_hospice")
    if "Home hospice care" in types or "Care at Home" in types:
        kinds.append("hospice_at_home")
    if "Hospice" in types and (_beds(row["beds"]) or 0) > 0:
        kinds.append("hospice_inpatient")
    return kinds


def uk_records(rows: Iterable[dict[str, str]], gaz: Gazetteer) -> Parsed:
    """(row, record or RowError) for the UK hospice list (see data/uk_hospices_PROVENANCE.md).

    England's rows carry the CQC's own point, used when it lies near the postcode; Scotland's
    have none and are placed at their postcode district's centre."""
    for row in rows:
        try:
            source = UK_SOURCES.get(row["nation"])
            if source is None:
                raise RowError(f"nation {row['nation']!r} is not covered by this import")
            if not row["source_id"] or not row["name"]:
                raise RowError("missing source_id or name")
            kinds = uk_kinds(row)
            if source == "care_inspectorate" and "hospice_at_home" not in kinds:
                raise RowError(f"registered as {row['service_type']!r}: not a hospice or "
                               "hospice-at-home service")
            lat, lon, precision = _geocode(gaz, row["postcode"], "GB")
            if row["latitude"] and row["longitude"]:
                given = float(row["latitude"]), float(row["longitude"])
                miles = distance_miles(lat, lon, *given)
                if miles > MAX_POINT_MILES:
                    raise RowError(f"lat/long is {miles:.0f} miles from postcode district "
                                   f"{row['postcode']!r}")
                (lat, lon), precision = given, "given"
            website = row["website"] or ""
            yield row, {
                "source": source, "source_id": row["source_id"][:64], "name": row["name"][:200],
                "address_line1": row["address"][:200] or None, "address_line2": None,
                "city": row["town"] or None, "region": None,
                "postal_code": row["postcode"].upper()[:12], "country": "GB",
                "county": row["county"] or row["local_authority"] or None,
                "phone": normalise_phone(row["phone"], "GB"),
                "website": website if website.startswith(("https://", "http://")) else None,
                "ownership": None, "certified_on": None, "beds": _beds(row["beds"]),
                "as_of": _iso_date(row["data_date"]), "lat": lat, "lon": lon,
                "geo_precision": precision, "services": ["hospice", *kinds],
            }
        except RowError as err:
            yield row, err


def _hash(record: dict) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def import_file(
    session: Session,
    path: Path,
    kind: str = "cms",
    source: str | None = None,
    report_dir: Path | None = None,
    progress: bool = True,
) -> ImportSummary:
    """Import `path` ('cms', 'uk' or 'generic' format) into the directory and commit."""
    path = Path(path)
    columns, rows, total = _read_csv(path)
    if kind == "cms":
        source, sources = CMS_SOURCE, {CMS_SOURCE}
        missing = [c for c in CMS_COLUMNS if c not in columns]
    elif kind == "uk":
        source, sources = UK_FILE_NAME, set(UK_SOURCES.values())
        missing = [c for c in UK_COLUMNS if c not in columns]
    elif kind == "generic":
        if not source or not SOURCE_NAME.match(source):
            raise ImportFileError("--source must be a short name: lower-case letters, digits, "
                                  "'-' or '_' (for example 'stmarys_pain')")
        sources = {source}
        missing = [c for c in GENERIC_REQUIRED if c not in columns]
    else:
        raise ImportFileError(f"unknown format {kind!r}: use 'cms', 'uk' or 'generic'")
    if missing:
        raise ImportFileError(f"{path.name} lacks the column(s) {', '.join(missing)}")

    services = {s.code: s for s in session.execute(select(Service)).scalars()}
    gaz = gazetteer()
    records = {"cms": lambda: cms_records(rows, gaz), "uk": lambda: uk_records(rows, gaz),
               "generic": lambda: generic_records(rows, gaz, set(services))}[kind]()
    existing = {
        (src, sid): (pid, h) for pid, src, sid, h in session.execute(
            select(Provider.id, Provider.source, Provider.source_id, Provider.content_hash)
            .where(Provider.source.in_(sorted(sources)))
        )
    }
    summary = ImportSummary(source)
    rejects: list[tuple[int, str, dict[str, str]]] = []
    seen: set[tuple[str, str]] = set()
    bar = tqdm(records, total=total, desc=f"importing {path.name}", unit=" rows",
               disable=not progress)
    for line, (row, record) in enumerate(bar, start=2):
        if isinstance(record, RowError):
            rejects.append((line, str(record), row))
            continue
        key = (record.pop("source", source), record["source_id"])
        if key in seen:
            rejects.append((line, f"source_id {key[1]!r} appears twice in the file", row))
            continue
        seen.add(key)
        codes = record.pop("services")
        digest = _hash({**record, "services": codes})
        for optional in ("beds", "as_of"):  # not in older records' hashes: add after hashing
            record.setdefault(optional, None)
        if key in existing and existing[key][1] == digest:
            summary.unchanged += 1
            continue
        if key in existing:
            provider = session.get(Provider, existing[key][0])
            summary.updated += 1
        else:
            provider = Provider(source=key[0], source_id=key[1], created_at=utcnow())
            session.add(provider)
            summary.added += 1
        for name, value in record.items():
            setattr(provider, name, value)
        provider.kinds = ";".join(sorted(set(codes) & set(HOSPICE_KINDS))) or None
        provider.cell = grid_cell(record["lat"], record["lon"])
        provider.content_hash = digest
        provider.updated_at = utcnow()
        provider.services = [services[c] for c in codes]
    session.commit()
    summary.rejected = len(rejects)
    summary.not_in_file = len(set(existing) - seen)
    for _, reason, _ in rejects:
        key = reason.split(":")[0]
        summary.reasons[key] = summary.reasons.get(key, 0) + 1
    if rejects:
        report_dir = Path(report_dir or path.parent)
        report_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        summary.report_path = report_dir / f"rejected-{source}-{stamp}.csv"
        with summary.report_path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["line", "reason", *columns])
            for line, reason, row in rejects:
                writer.writerow([line, reason, *(row.get(c, "") for c in columns)])
    return summary
