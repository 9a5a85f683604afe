"""The provider directory library on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import csv
import random
import re
import subprocess
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from providers import db, importer, search
from providers.bundled import CMS_FILE, UK_FILE
from providers.geo import distance_miles, gazetteer
from settings import ROOT

UK_CSV = ROOT / "providers" / "data" / "uk_hospices.csv"
OUTCODES_CSV = ROOT / "providers" / "data" / "uk_outcode_centroids.csv"
LOCAL_SAMPLE = ROOT / "tests" / "data" / "local_list_sample.csv"

GENERIC_HEADER = ["source_id", "name", "services", "address_line1", "city", "region",
                  "postal_code", "country", "phone"]


def _brute_force(lat: float, lon: float, miles: float) -> list[tuple[float, str]]:
    """Every CMS hospice within `miles`, measured straight from the CSV and ZCTA file."""
    gaz = gazetteer()
    out = []
    with CMS_FILE.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            place = gaz.zip(row["Zip Code"])
            d = distance_miles(lat, lon, place.lat, place.lon)
            if d <= miles:
                out.append((d, row["CMS Certification Number (CCN)"]))
    return sorted(out)


def test_bundled_lists_are_loaded_once(directory_engine, tmp_path):
    with Session(directory_engine) as s:
        assert search.coverage(s, "hospice", "US") == 4643
        assert search.coverage(s, "hospice", "GB") == 215
        again = importer.import_file(s, CMS_FILE, "cms", progress=False)
        assert (again.added, again.updated, again.unchanged, again.rejected) == (0, 0, 4643, 0)
        uk = importer.import_file(s, UK_FILE, "uk", report_dir=tmp_path, progress=False)
        assert (uk.added, uk.updated, uk.unchanged, uk.rejected) == (0, 0, 215, 2)
        assert search.coverage(s, "hospice") == 4643 + 215
        assert search.coverage(s, "pain_management") == 0
        counts = dict(s.execute(text("SELECT source, COUNT(*) FROM providers GROUP BY source")
                                ).all())
    assert counts == {"cms_hospice": 4643, "cqc": 210, "care_inspectorate": 5}
    # The two rows left out, each with its reason: a care home, and a housing-support service
    report = {r["name"]: r["reason"] for r in csv.DictReader(uk.report_path.open())}
    assert set(report) == {"Bethesda Care Home", "Sunflower Home Care"}
    assert all("not a hospice or hospice-at-home service" in r for r in report.values())


def _uk_rows_by_distance(postcode: str) -> list[tuple[float, dict[str, str]]]:
    """The UK file's rows sorted by distance from a postcode's district centre, measured here
    from the two CSV files: the row's own lat/long where it has one, else its district's."""
    with OUTCODES_CSV.open(encoding="utf-8") as fh:
        centres = {r["outcode"]: (float(r["latitude"]), float(r["longitude"]))
                   for r in csv.DictReader(fh)}
    here = centres[postcode.split()[0]]
    out = []
    with UK_CSV.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            there = ((float(row["latitude"]), float(row["longitude"])) if row["latitude"]
                     else centres[row["postcode"].split()[0]])
            out.append((distance_miles(*here, *there), row))
    return sorted(out, key=lambda pair: pair[0])


@pytest.mark.parametrize("postcode", ["SW1A 1AA", "M1 1AE", "G2 1AA"])
def test_uk_hospices_nearest_a_postcode(directory_engine, postcode):
    place = gazetteer().resolve(postcode)
    with Session(directory_engine) as s:
        result = search.search(s, place.lat, place.lon, "hospice", limit=3,
                               widen=search.widening("GB"))
    expected = [(d, r) for d, r in _uk_rows_by_distance(postcode)
                if r["name"] not in ("Bethesda Care Home",) and d <= result.radius_miles]
    assert [h.source_id for h in result.hits] == [r["source_id"] for _, r in expected[:3]]
    assert result.total == len({r["source_id"] for _, r in expected})
    assert [h.distance_miles for h in result.hits] == [round(d, 1) for d, _ in expected[:3]]
    assert all(h.country == "GB" and h.as_of for h in result.hits)


def test_uk_kinds_come_from_the_register(directory_engine):
    with Session(directory_engine) as s:
        rows = {r.name: r for r in s.execute(text(
            "SELECT p.id, p.name, p.source, p.geo_precision, p.beds, p.as_of, p.phone, p.kinds"
            " FROM providers p WHERE p.source IN ('cqc', 'care_inspectorate')")).all()}
        children = {r.name for r in s.execute(text(
            "SELECT p.name FROM providers p JOIN provider_services ps ON ps.provider_id = p.id"
            " JOIN services sv ON sv.id = ps.service_id WHERE sv.code = 'childrens_hospice'"))}
    francis = rows["Francis House Children's Hospice"]
    assert francis.kinds == "childrens_hospice;hospice_inpatient" and francis.beds == 7
    assert francis.geo_precision == "given" and francis.as_of == "2025-11-01"
    accord = rows["ACCORD@Home (hospice at home service)"]
    assert accord.kinds == "hospice_at_home" and accord.source == "care_inspectorate"
    assert accord.geo_precision == "postcode_district" and accord.as_of == "2026-05-31"
    assert accord.phone == "+441415812000"
    assert rows["Royal Trinity Hospice"].beds == 28
    assert rows["Royal Trinity Hospice"].kinds == "hospice_inpatient"
    assert children == {name for name, r in rows.items() if "childrens_hospice" in (r.kinds or "")}
    assert {"Francis House Children's Hospice", "Helen and Douglas House"} <= children


def test_widening_stops_at_50_miles_in_great_britain(directory_engine):
    aberdeen = gazetteer().resolve("AB10 1AA")  # nearest listed service: Inverness, ~83 mi
    with Session(directory_engine) as s:
        result = search.search(s, aberdeen.lat, aberdeen.lon, "hospice",
                               widen=search.widening("GB"))
    assert result.hits == [] and result.radius_miles == 50 and result.widened_from == 25


def test_nearest_hospice_to_a_real_zip(directory_engine):
    place = gazetteer().resolve("36109")
    with Session(directory_engine) as s:
        result = search.search(s, place.lat, place.lon, "hospice")
    assert result.hits[0].name == "BAPTIST HOSPICE"
    assert result.hits[0].phone == "+13343955000"
    expected = _brute_force(place.lat, place.lon, 25)
    assert result.total == len(expected)
    assert [h.source_id for h in result.hits] == [ccn for _, ccn in expected[:3]]


def test_search_matches_brute_force_everywhere(directory_engine):
    """At 40 random real ZIPs, the indexed search finds exactly what a full scan finds."""
    gaz = gazetteer()
    rng = random.Random(3)
    zips = rng.sample(sorted(gaz.zcta), 40)
    with Session(directory_engine) as s:
        for z in zips:
            place = gaz.zip(z)
            expected = _brute_force(place.lat, place.lon, 25)
            got = search.within(s, place.lat, place.lon, 25, "hospice")
            assert [r.source_id for _, r in got] == [ccn for _, ccn in expected], z


def test_paging_walks_the_list_without_repeats(directory_engine):
    place = gazetteer().resolve("Tulsa, OK")
    with Session(directory_engine) as s:
        pages = [search.search(s, place.lat, place.lon, "hospice", limit=3, offset=o)
                 for o in (0, 3, 6)]
    names = [h.name for p in pages for h in p.hits]
    assert len(names) == 9 and len(set(names)) == 9
    distances = [h.distance_miles for p in pages for h in p.hits]
    assert distances == sorted(distances)
    assert pages[0].has_more and pages[0].total > 9


def test_widens_when_nothing_is_near(directory_engine):
    place = gazetteer().resolve("99723")  # Utqiagvik (Barrow), Alaska
    with Session(directory_engine) as s:
        result = search.search(s, place.lat, place.lon, "hospice")
        assert result.hits == [] and result.radius_miles == 100 and result.widened_from == 25
        remote = gazetteer().resolve("Alliance, NE")  # nearest hospice about 35 miles
        result = search.search(s, remote.lat, remote.lon, "hospice")
    assert result.widened_from == 25 and result.radius_miles == 50
    assert result.hits and all(h.distance_miles > 25 for h in result.hits)


def _count(engine, source: str) -> int:
    with Session(engine) as s:
        return s.execute(text("SELECT COUNT(*) FROM providers WHERE source = :source"),
                         {"source": source}).scalar()


@pytest.fixture
def scratch_source(directory_engine):
    """A source name for rows a test adds to the shared directory (other tests search the
    same database): the rows are deleted afterwards, whether the test passed or not."""
    source = "test_clinics"
    assert _count(directory_engine, source) == 0, f"rows of {source!r} left behind"
    try:
        yield source
    finally:
        with Session(directory_engine) as s:
            s.execute(text("DELETE FROM providers WHERE source = :source"), {"source": source})
            s.commit()
        assert _count(directory_engine, source) == 0


def test_generic_import_pain_clinics_uk_and_rejects(directory_engine, scratch_source, tmp_path):
    path = tmp_path / "clinics.csv"
    rows = [
        ["pc-1", "Lakeside Pain Clinic", "pain_management", "1 Main St", "Boise", "ID",
         "83702", "US", "(208) 555-0100"],
        ["pc-2", "Riverside Palliative Team", "palliative_care;pain_management", "", "Leeds",
         "", "LS1 4DY", "GB", "0113 496 0000"],
        ["pc-3", "No Zip Clinic", "pain_management", "", "", "", "", "US", ""],
        ["pc-4", "Odd Service", "massage", "", "", "", "83702", "US", ""],
        ["pc-1", "Lakeside Pain Clinic again", "pain_management", "", "", "", "83702", "US",
         ""],
    ]
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([GENERIC_HEADER, *rows])
    with Session(directory_engine) as s:
        summary = importer.import_file(s, path, "generic", source=scratch_source,
                                       report_dir=tmp_path, progress=False)
        assert (summary.added, summary.rejected) == (2, 3)
        report = list(csv.DictReader(summary.report_path.open()))
        reasons = {r["line"]: r["reason"] for r in report}
        assert "not a US ZIP" in reasons["4"] and "services must be" in reasons["5"]
        assert "appears twice" in reasons["6"]

        boise = gazetteer().resolve("Boise")
        hits = search.search(s, boise.lat, boise.lon, "pain_management").hits
        assert [h.name for h in hits] == ["Lakeside Pain Clinic"]
        assert hits[0].phone == "+12085550100"
        assert search.search(s, boise.lat, boise.lon, "hospice").hits[0].name != hits[0].name
        leeds = gazetteer().resolve("Leeds")
        uk = search.search(s, leeds.lat, leeds.lon, "palliative_care").hits
        assert [h.name for h in uk] == ["Riverside Palliative Team"]
        assert uk[0].phone == "+441134960000"

        # Re-running with one change updates that row and duplicates nothing.
        rows[0][1] = "Lakeside Pain & Spine Clinic"
        with path.open("w", newline="") as fh:
            csv.writer(fh).writerows([GENERIC_HEADER, *rows[:2]])
        again = importer.import_file(s, path, "generic", source=scratch_source,
                                     report_dir=tmp_path, progress=False)
        assert (again.added, again.updated, again.unchanged, again.rejected) == (0, 1, 1, 0)
    assert _count(directory_engine, scratch_source) == 2  # the fixture deletes them


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,phone\nX,1\n", "lacks the column(s) source_id, services, postal_code"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
    ],
)
def test_unusable_files_get_a_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    engine = db.make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    db.upgrade(engine)
    with Session(engine) as s, pytest.raises(importer.ImportFileError, match=re.escape(message)):
        importer.import_file(s, path, "generic", source="x1", progress=False)


def test_command_line_import_and_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    ok = subprocess.run([sys.executable, "-m", "providers", "--db", url, "import", "cms"],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "4643 added, 0 updated, 0 unchanged, 0 rejected" in ok.stdout
    assert "importing" in ok.stderr  # the progress bar
    bad = subprocess.run([sys.executable, "-m", "providers", "--db", url, "import", "generic",
                          str(tmp_path / "missing.csv"), "--source", "abc"],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "no such file" in bad.stderr


def test_library_does_not_import_rasa():
    code = ("import sys, providers.search, providers.importer, providers.geo, providers.db; "
            "print([m for m in sys.modules if m.split('.')[0] in ('rasa', 'rasa_sdk')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stderr


def test_a_local_list_loads_through_the_generic_import(directory_engine, tmp_path):
    """The sample a deploying organisation would write (README): a US hospital's palliative
    team and a UK region's services; searched the same way, then removed."""
    with Session(directory_engine) as s:
        try:
            summary = importer.import_file(s, LOCAL_SAMPLE, "generic", source="example_local",
                                           report_dir=tmp_path, progress=False)
            assert (summary.added, summary.rejected) == (4, 0), summary
            chicago = gazetteer().resolve("60614")
            team = search.search(s, chicago.lat, chicago.lon, "palliative_care").hits
            assert [h.name for h in team] == ["Example Hospital Palliative Care Team"]
            assert team[0].as_of == "2026-11-30" and team[0].phone == "+13125550142"
            leeds = gazetteer().resolve("LS1 4DY")
            uk = search.search(s, leeds.lat, leeds.lon, "palliative_care").hits
            assert [h.name for h in uk] == ["Example Community Palliative Care Team (Leeds)"]
            home = search.search(s, leeds.lat, leeds.lon, "hospice", limit=50).hits
            at_home = [h for h in home if h.source == "example_local"]
            assert [(h.name, h.kinds) for h in at_home] == [
                ("Example Hospice at Home Service (Leeds)", ("hospice_at_home",))]
        finally:
            s.execute(text("DELETE FROM providers WHERE source = 'example_local'"))
            s.commit()


def test_migrations_run_down_and_up(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    db.upgrade(engine)
    assert db.is_current(engine)
    from alembic import command

    command.downgrade(db.alembic_config(engine), "base")
    assert not db.is_current(engine)
    db.upgrade(engine)
    assert db.is_current(engine)
