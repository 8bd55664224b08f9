"""The auditor's view: certificate search and checks, device histories with chain proofs,
exception reports re-derived from the ledger, and offline-verifiable evidence bundles.

Nothing here writes: every function reads the evidence tables (custody ledger, certificates) and
re-checks them rather than trusting state columns or flags.
"""
