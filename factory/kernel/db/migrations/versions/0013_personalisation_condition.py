"""personalisation: officers' structured assistive-technology needs, the personalisation QA
results, and the device-condition evidence the line routes returned devices by

Revision ID: 0013
Revises: 0012

``officer.at_needs`` holds the structured profile (canonical JSON; empty: no needs). Free-text
``at_profile`` values recorded before are carried over where they name known features
("screen-reader", "magnifier x3", ...); a value that names none is left as words only and the
officer shows no needs until someone records them (import or edit).
"""

from __future__ import annotations

import json
import re

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("officer", sa.Column("at_needs", sa.Text(), nullable=False, server_default=""))
    _carry_over_profiles()
    op.create_table(
        "personalisation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("allocation_id", sa.Integer(), sa.ForeignKey("allocation.id"), nullable=False),
        sa.Column("device_id", sa.Integer(), sa.ForeignKey("device.id"), nullable=False),
        sa.Column("needs", sa.Text(), nullable=False),
        sa.Column("needs_digest", sa.String(64), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("missing", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_personalisation_allocation_id", "personalisation", ["allocation_id"])
    op.create_index("ix_personalisation_device_id", "personalisation", ["device_id"])
    op.create_table(
        "device_condition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), sa.ForeignKey("device.id"), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("route", sa.String(32), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_device_condition_device_id", "device_condition", ["device_id"])


# The words a free-text profile could use, frozen here: a migration must not import area code,
# which changes after it. Each sets one field of the structured profile.
_WORDS = {
    "screen-reader": ("screen_reader", True),
    "screenreader": ("screen_reader", True),
    "nvda": ("screen_reader", True),
    "jaws": ("screen_reader", True),
    "magnifier": ("magnifier", True),
    "high-contrast": ("high_contrast", True),
    "large-text": ("large_text", True),
    "dictation": ("dictation", True),
}


def _structured(words: str) -> str:
    """Canonical JSON of the features a free-text profile names ("" if it names none)."""
    found = {}
    for raw in re.split(r"[;,]", words):
        word = re.sub(r"[\s_-]+", "-", raw.strip().lower())
        if word in _WORDS:
            field, value = _WORDS[word]
            found[field] = value
            if word in ("nvda", "jaws"):
                found["screen_reader_product"] = word
    if not found:
        return ""
    profile = {"screen_reader": False, "screen_reader_product": "nvda", "magnifier": False, "magnifier_zoom": 2.0,
               "high_contrast": False, "large_text": False, "dictation": False} | found  # fmt: skip
    return json.dumps(profile, sort_keys=True, separators=(",", ":"))


def _carry_over_profiles() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, at_profile FROM officer WHERE at_profile <> ''")).all()
    for officer_id, words in rows:
        needs = _structured(words)
        if needs:
            conn.execute(sa.text("UPDATE officer SET at_needs = :n WHERE id = :id").bindparams(n=needs, id=officer_id))


def downgrade() -> None:
    op.drop_index("ix_device_condition_device_id", "device_condition")
    op.drop_table("device_condition")
    op.drop_index("ix_personalisation_device_id", "personalisation")
    op.drop_index("ix_personalisation_allocation_id", "personalisation")
    op.drop_table("personalisation")
    with op.batch_alter_table("officer") as batch:
        batch.drop_column("at_needs")
