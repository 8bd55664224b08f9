"""RFC 8785 (JCS) canonical JSON for the ledger, heads, anchors and bundles: the one fast
implementation in ``imaging/canonical_json.py`` (the certificate library uses it too), so a
ledger hash and a certificate digest are taken over bytes made the same way."""

from __future__ import annotations

from imaging.canonical_json import canonical_bytes

__all__ = ["canonical_bytes"]
