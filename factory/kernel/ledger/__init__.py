"""Custody ledger: canonical hashing, serialised appends, offline verification."""
