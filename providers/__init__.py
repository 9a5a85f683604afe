"""The provider directory (hospices, palliative-care services, pain clinics).

A plain library with no Rasa import: SQLAlchemy models (`models`), Alembic migrations
(`migrations/`), import of public and local CSV data (`importer`), offline geocoding (`geo`)
and radius search (`search`). `python -m providers --help` is its command line.
"""
