"""The data shipped with the project, and loading it into an empty directory on first start."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from providers import db, importer, search

CMS_FILE = Path(__file__).parent / "data" / "cms_hospice_general_information.csv"


def ensure_ready(engine: Engine, report_dir: Path | None = None,
                 progress: bool = True) -> importer.ImportSummary | None:
    """Migrate the schema; import the bundled CMS hospice list if the directory is empty."""
    db.upgrade(engine)
    with Session(engine, future=True) as session:
        if search.holds(session):
            return None
        return importer.import_file(session, CMS_FILE, "cms", report_dir=report_dir,
                                    progress=progress)
