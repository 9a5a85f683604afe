"""The data shipped with the project, and loading it into the directory on first start."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from providers import db, importer
from providers.models import Provider
from settings import Settings

DATA = Path(__file__).parent / "data"
CMS_FILE = DATA / "cms_hospice_general_information.csv"
UK_FILE = DATA / "uk_hospices.csv"
# format -> (file, the sources its rows go to)
BUNDLED = {
    "cms": (CMS_FILE, {importer.CMS_SOURCE}),
    "uk": (UK_FILE, set(importer.UK_SOURCES.values())),
}


def default_report_dir() -> Path:
    """Where reports of rejected rows go when an import of a bundled list names none."""
    return Settings.from_env().var_dir / "import-reports"


def ensure_ready(engine: Engine, report_dir: Path | None = None,
                 progress: bool = True) -> str | None:
    """Migrate the schema; import each bundled list whose sources the directory lacks (so a
    directory made before the UK list existed gets it on its next start). Returns the
    imports' summaries, or None when nothing was imported. Rejected rows (the UK list has
    two) are reported in `report_dir`, by default NAVIGATOR_VAR_DIR/import-reports."""
    report_dir = report_dir or default_report_dir()
    db.upgrade(engine)
    done = []
    with Session(engine, future=True) as session:
        for kind, (path, sources) in BUNDLED.items():
            held = session.execute(select(Provider.id).where(
                Provider.source.in_(sorted(sources))).limit(1)).first()
            if held is None:
                done.append(str(importer.import_file(session, path, kind,
                                                     report_dir=report_dir,
                                                     progress=progress)))
    return "\n".join(done) or None
