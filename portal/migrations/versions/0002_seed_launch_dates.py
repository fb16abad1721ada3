"""Seed the online-renewal launch dates of docs/markets.md ("Launch dates"); staff edit
them afterwards.

Revision ID: 0002
Revises: 0001
"""
import json
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DATA = Path(__file__).resolve().parents[2] / "markets" / "data" / "launches.json"


def upgrade():
    table = sa.table(
        "market_launch",
        sa.column("country", sa.String),
        sa.column("launch_date", sa.Date),
        sa.column("market_group", sa.String),
    )
    rows = {}
    for group in json.loads(DATA.read_text())["groups"]:
        for country in group["countries"]:
            rows.setdefault(country, {
                "country": country,
                "launch_date": date.fromisoformat(group["launch_date"]),
                "market_group": group["name"],
            })
    op.bulk_insert(table, list(rows.values()))


def downgrade():
    op.execute("DELETE FROM market_launch")
