"""The provider directory: providers, services and which provider offers what.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SEED_SERVICES = [
    ("hospice", "hospice"),
    ("palliative_care", "palliative care"),
    ("pain_management", "pain management"),
]


def upgrade() -> None:
    services = op.create_table(
        "services",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(40), nullable=False, unique=True),
        sa.Column("label", sa.String(80), nullable=False),
    )
    op.create_table(
        "providers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address_line1", sa.String(200)),
        sa.Column("address_line2", sa.String(200)),
        sa.Column("city", sa.String(100)),
        sa.Column("region", sa.String(60)),
        sa.Column("postal_code", sa.String(12)),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("county", sa.String(100)),
        sa.Column("phone", sa.String(32)),
        sa.Column("website", sa.String(300)),
        sa.Column("ownership", sa.String(60)),
        sa.Column("certified_on", sa.String(10)),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("geo_precision", sa.String(24), nullable=False),
        sa.Column("cell", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source", "source_id", name="uq_providers_source_record"),
    )
    op.create_index("ix_providers_cell", "providers", ["cell", "lat", "lon"])
    op.create_table(
        "provider_services",
        sa.Column(
            "provider_id", sa.Integer, sa.ForeignKey("providers.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "service_id", sa.Integer, sa.ForeignKey("services.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index(
        "ix_provider_services_service", "provider_services", ["service_id", "provider_id"]
    )
    op.bulk_insert(services, [{"code": c, "label": label} for c, label in SEED_SERVICES])


def downgrade() -> None:
    op.drop_index("ix_provider_services_service", table_name="provider_services")
    op.drop_table("provider_services")
    op.drop_index("ix_providers_cell", table_name="providers")
    op.drop_table("providers")
    op.drop_table("services")
