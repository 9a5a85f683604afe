"""Kinds of hospice (in-patient, at home, children's), beds, and the date a source's data is from.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SEED_SERVICES = [
    ("hospice_inpatient", "in-patient hospice"),
    ("hospice_at_home", "hospice at home"),
    ("childrens_hospice", "children's hospice"),
]


def upgrade() -> None:
    services = sa.table("services", sa.column("code", sa.String), sa.column("label", sa.String))
    op.bulk_insert(services, [{"code": c, "label": label} for c, label in SEED_SERVICES])
    op.add_column("providers", sa.Column("beds", sa.Integer))
    op.add_column("providers", sa.Column("as_of", sa.String(10)))
    op.add_column("providers", sa.Column("kinds", sa.String(100)))


def downgrade() -> None:
    with op.batch_alter_table("providers") as batch:
        batch.drop_column("kinds")
        batch.drop_column("as_of")
        batch.drop_column("beds")
    codes = ", ".join(f"'{c}'" for c, _ in SEED_SERVICES)
    op.execute(f"DELETE FROM services WHERE code IN ({codes})")
