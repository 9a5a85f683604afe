"""`python -m providers ...`: migrate, import and search the provider directory."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sqlalchemy.orm import Session

from providers import bundled, db, importer, search
from providers.geo import LocationError, gazetteer
from providers.services import SERVICES
from settings import Settings


def _engine(args: argparse.Namespace):  # noqa: ANN202
    return db.make_engine(args.db or Settings.from_env().directory)


def cmd_init(args: argparse.Namespace) -> int:
    engine = _engine(args)
    summary = bundled.ensure_ready(engine, report_dir=args.report_dir)
    print(summary or "directory is up to date and already holds data")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    engine = _engine(args)
    db.upgrade(engine)
    path = Path(args.file) if args.file else bundled.BUNDLED.get(args.format, (None,))[0]
    if args.format == "generic" and not args.file:
        print("error: the generic format needs a FILE", file=sys.stderr)
        return 2
    report_dir = args.report_dir or (None if args.file else bundled.default_report_dir())
    started = time.perf_counter()
    with Session(engine, future=True) as session:
        summary = importer.import_file(session, path, args.format, source=args.source,
                                       report_dir=report_dir)
    print(f"{summary}\n({time.perf_counter() - started:.1f} s)")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    try:
        place = gazetteer().resolve(args.location)
    except LocationError as err:
        print(f"cannot place {args.location!r}: {err}", file=sys.stderr)
        return 1
    engine = _engine(args)
    with Session(engine, future=True) as session:
        result = search.search(session, place.lat, place.lon, args.service,
                               radius_miles=args.radius, limit=args.limit)
    grew = f" (widened from {result.widened_from})" if result.widened_from else ""
    print(f"{place.label} [{place.precision}]: {result.total} within "
          f"{result.radius_miles} miles{grew}")
    for hit in result.hits:
        print(f"  {hit.distance_miles:6.1f} mi  {hit.name}  {hit.city}, "
              f"{hit.region or hit.postal_code}  {hit.phone or ''}")
    return 0


def cmd_build_places(_args: argparse.Namespace) -> int:
    from providers import build_places

    print(build_places.build())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m providers", description=__doc__)
    parser.add_argument("--db", help="database URL (default: NAVIGATOR_DIRECTORY_URL or "
                        "sqlite under var/)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="migrate; import the bundled hospice lists not yet held")
    p.add_argument("--report-dir", type=Path, default=None)
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("import", help="import a CSV file (idempotent)")
    p.add_argument("format", choices=["cms", "uk", "generic"])
    p.add_argument("file", nargs="?", help="CSV file (cms, uk: default the bundled list)")
    p.add_argument("--source", help="generic: a short name for where the rows come from")
    p.add_argument("--report-dir", type=Path, default=None,
                   help="where to write rejected rows (default: beside the file; for a "
                   "bundled list, NAVIGATOR_VAR_DIR/import-reports)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("search", help="search near a ZIP, town or postcode")
    p.add_argument("location")
    p.add_argument("--service", choices=sorted(SERVICES), default=None)
    p.add_argument("--radius", type=int, default=25)
    p.add_argument("--limit", type=int, default=5)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("build-places", help="rebuild data/us_places.csv and uk_places.csv")
    p.set_defaults(func=cmd_build_places)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except importer.ImportFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
