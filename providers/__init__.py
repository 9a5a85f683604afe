"""The provider directory (hospices, palliative-care services, pain clinics).

A plain library with no Rasa import: SQLAlchemy models, import of public data, geocoding and
search arrive with the directory issue. Empty for now, so the layout is in place.
"""
