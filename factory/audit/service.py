"""What the audit area produces: offline-verifiable evidence bundles.

The audit area changes no record; its one output is a bundle (a zip an auditor checks without
the site's systems), built in ``bundle`` beside this module. Callers import it from here only.
"""

from __future__ import annotations

from factory.audit.bundle import MAX_DEVICES, BundleSummary, export_bundle

__all__ = ["MAX_DEVICES", "BundleSummary", "export_bundle"]
