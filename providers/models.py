"""SQLAlchemy 1.4 models of the provider directory. Change them only with a migration."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()


def utcnow() -> datetime:
    """Timezone-aware now, stored as UTC."""
    return datetime.now(timezone.utc)


provider_services = Table(
    "provider_services",
    Base.metadata,
    Column("provider_id", ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True),
    Column("service_id", ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_provider_services_service", "service_id", "provider_id"),
)


class Service(Base):
    """A kind of care: hospice, palliative care, pain management, ..."""

    __tablename__ = "services"
    id = Column(Integer, primary_key=True)
    code = Column(String(40), nullable=False, unique=True)
    label = Column(String(80), nullable=False)


class Provider(Base):
    """One place or organisation that offers one or more services."""

    __tablename__ = "providers"
    __table_args__ = (
        UniqueConstraint("source", "source_id", name="uq_providers_source_record"),
        Index("ix_providers_cell", "cell", "lat", "lon"),
    )

    id = Column(Integer, primary_key=True)
    source = Column(String(40), nullable=False)  # e.g. "cms_hospice", or a loader's name
    source_id = Column(String(64), nullable=False)  # the record's id in that source
    name = Column(String(200), nullable=False)
    address_line1 = Column(String(200))
    address_line2 = Column(String(200))
    city = Column(String(100))
    region = Column(String(60))  # US state code, or UK nation/county
    postal_code = Column(String(12))
    country = Column(String(2), nullable=False)  # ISO 3166: US, GB
    county = Column(String(100))
    phone = Column(String(32))  # E.164, e.g. +13343955000
    website = Column(String(300))
    ownership = Column(String(60))
    certified_on = Column(String(10))  # ISO date, when the source gives one
    beds = Column(Integer)  # in-patient beds, when the source gives a number
    as_of = Column(String(10))  # ISO date the source's record is from, when it says
    # Its kinds of hospice (services.HOSPICE_KINDS, ';'-joined), copied from `services` at
    # import so that a search shows them without another query.
    kinds = Column(String(100))
    lat = Column(Float, nullable=False)
    lon = Column(Float, nullable=False)
    geo_precision = Column(String(24), nullable=False)  # see providers.geo.PRECISIONS
    cell = Column(Integer, nullable=False)  # providers.geo.grid_cell(lat, lon): search index
    content_hash = Column(String(64), nullable=False)  # of the source row: unchanged rows skip
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)

    services = relationship(Service, secondary=provider_services, lazy="selectin")

    def service_codes(self) -> list[str]:
        """Codes of the services offered, sorted."""
        return sorted(s.code for s in self.services)
