"""custody workflows: officers, vehicles, waves, allocations, consignments, acceptances,
evidence documents, transfers, WEEE disposal batches, destructions, four-eyes approvals

Revision ID: 0004
Revises: 0002

Evidence documents and acceptance records are append-only (same triggers as the ledger).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from factory.kernel.db.append_only import create_statements, drop_statements

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

APPEND_ONLY = ("evidence_document", "acceptance_record")


def upgrade() -> None:
    op.create_table(
        "evidence_document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("media_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("evidence_document", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_document_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_evidence_document_sha256"), ["sha256"], unique=False)

    op.create_table(
        "officer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_number", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("team", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("at_profile", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("pin_hash", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("staff_number"),
    )
    op.create_table(
        "vehicle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fleet_number", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("registration", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("decommissioned_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fleet_number"),
    )
    op.create_table(
        "wave",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("cohort", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("target_devices", sa.Integer(), nullable=False),
        sa.Column("courier_cap_percent", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "acceptance_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("officer_id", sa.Integer(), nullable=False),
        sa.Column("accepted_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("signature_document_id", sa.Integer(), nullable=True),
        sa.Column("record_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("record", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("accepted_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device.id"],
        ),
        sa.ForeignKeyConstraint(
            ["officer_id"],
            ["officer.id"],
        ),
        sa.ForeignKeyConstraint(
            ["signature_document_id"],
            ["evidence_document.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("record_sha256"),
    )
    with op.batch_alter_table("acceptance_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acceptance_record_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_acceptance_record_officer_id"), ["officer_id"], unique=False)

    op.create_table(
        "allocation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("officer_id", sa.Integer(), nullable=True),
        sa.Column("vehicle_id", sa.Integer(), nullable=True),
        sa.Column("wave_id", sa.Integer(), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("device_kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("allocated_seq", sa.Integer(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device.id"],
        ),
        sa.ForeignKeyConstraint(
            ["officer_id"],
            ["officer.id"],
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicle.id"],
        ),
        sa.ForeignKeyConstraint(
            ["wave_id"],
            ["wave.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("allocation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_allocation_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_allocation_officer_id"), ["officer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_allocation_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_allocation_vehicle_id"), ["vehicle_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_allocation_wave_id"), ["wave_id"], unique=False)

    op.create_table(
        "consignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("courier", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("recipient_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("recipient_address", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("seal_numbers", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("manifest_document_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("handed_over_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("delivered_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("failed_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("failure_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("returned_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("pod_recipient_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("pod_document_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["manifest_document_id"],
            ["evidence_document.id"],
        ),
        sa.ForeignKeyConstraint(
            ["pod_document_id"],
            ["evidence_document.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    with op.batch_alter_table("consignment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consignment_status"), ["status"], unique=False)

    op.create_table(
        "destruction_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("requested_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("evidence_document_id", sa.Integer(), nullable=False),
        sa.Column("witnessed_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("destroyed_seq", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device.id"],
        ),
        sa.ForeignKeyConstraint(
            ["evidence_document_id"],
            ["evidence_document.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("destruction_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_destruction_record_device_id"), ["device_id"], unique=False)

    op.create_table(
        "disposal_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recycler_id", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("ewc_code", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("sic_code", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("contains_batteries", sa.Boolean(), nullable=False),
        sa.Column("containment", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("place", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("hierarchy_declaration", sa.Boolean(), nullable=False),
        sa.Column("collected_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("transferor_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("transferee_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("hazardous_note_reference", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("wtn_document_id", sa.Integer(), nullable=True),
        sa.Column("recycler_certificate_ref", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("recycler_certificate_document_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("closed_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["recycler_certificate_document_id"],
            ["evidence_document.id"],
        ),
        sa.ForeignKeyConstraint(
            ["recycler_id"],
            ["custodian.id"],
        ),
        sa.ForeignKeyConstraint(
            ["wtn_document_id"],
            ["evidence_document.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("disposal_batch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_disposal_batch_recycler_id"), ["recycler_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_disposal_batch_status"), ["status"], unique=False)

    op.create_table(
        "transfer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("note_document_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["note_document_id"],
            ["evidence_document.id"],
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["custodian.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("transfer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transfer_organisation_id"), ["organisation_id"], unique=False)

    op.create_table(
        "approval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("allocation_id", sa.Integer(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("requested_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("approved_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("approved_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("used_seq", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["allocation_id"],
            ["allocation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_approval_allocation_id"), ["allocation_id"], unique=False)

    op.create_table(
        "consignment_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consignment_id", sa.Integer(), nullable=False),
        sa.Column("allocation_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("handover_scanned_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("delivery_scanned_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("returned_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["allocation_id"],
            ["allocation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["consignment_id"],
            ["consignment.id"],
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("consignment_id", "device_id", name="uq_consignment_device"),
    )
    with op.batch_alter_table("consignment_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consignment_item_allocation_id"), ["allocation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consignment_item_consignment_id"), ["consignment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consignment_item_device_id"), ["device_id"], unique=False)

    op.create_table(
        "disposal_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.Column("collected_seq", sa.Integer(), nullable=True),
        sa.Column("disposed_seq", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["disposal_batch.id"],
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id", "device_id", name="uq_disposal_batch_device"),
    )
    with op.batch_alter_table("disposal_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_disposal_item_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_disposal_item_device_id"), ["device_id"], unique=False)

    op.create_table(
        "transfer_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transfer_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device.id"],
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["transfer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_id"),
    )
    with op.batch_alter_table("transfer_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transfer_item_transfer_id"), ["transfer_id"], unique=False)

    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        for stmt in create_statements(dialect, table):
            op.execute(stmt)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        for stmt in drop_statements(dialect, table):
            op.execute(stmt)
    with op.batch_alter_table("transfer_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transfer_item_transfer_id"))

    op.drop_table("transfer_item")
    with op.batch_alter_table("disposal_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disposal_item_device_id"))
        batch_op.drop_index(batch_op.f("ix_disposal_item_batch_id"))

    op.drop_table("disposal_item")
    with op.batch_alter_table("consignment_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consignment_item_device_id"))
        batch_op.drop_index(batch_op.f("ix_consignment_item_consignment_id"))
        batch_op.drop_index(batch_op.f("ix_consignment_item_allocation_id"))

    op.drop_table("consignment_item")
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_allocation_id"))

    op.drop_table("approval")
    with op.batch_alter_table("transfer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transfer_organisation_id"))

    op.drop_table("transfer")
    with op.batch_alter_table("disposal_batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disposal_batch_status"))
        batch_op.drop_index(batch_op.f("ix_disposal_batch_recycler_id"))

    op.drop_table("disposal_batch")
    with op.batch_alter_table("destruction_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_destruction_record_device_id"))

    op.drop_table("destruction_record")
    with op.batch_alter_table("consignment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consignment_status"))

    op.drop_table("consignment")
    with op.batch_alter_table("allocation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_allocation_wave_id"))
        batch_op.drop_index(batch_op.f("ix_allocation_vehicle_id"))
        batch_op.drop_index(batch_op.f("ix_allocation_status"))
        batch_op.drop_index(batch_op.f("ix_allocation_officer_id"))
        batch_op.drop_index(batch_op.f("ix_allocation_device_id"))

    op.drop_table("allocation")
    with op.batch_alter_table("acceptance_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acceptance_record_officer_id"))
        batch_op.drop_index(batch_op.f("ix_acceptance_record_device_id"))

    op.drop_table("acceptance_record")
    op.drop_table("wave")
    op.drop_table("vehicle")
    op.drop_table("officer")
    with op.batch_alter_table("evidence_document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_document_sha256"))
        batch_op.drop_index(batch_op.f("ix_evidence_document_kind"))

    op.drop_table("evidence_document")
