"""The audit area's typed errors: each a kernel error, so the API and the CLI already map them
(to 404, 409 or 422 with a one-line reason) without knowing this area."""

from __future__ import annotations

from factory.kernel.errors import Conflict, InvalidInput, NotFound


class AuditRequestInvalid(InvalidInput):
    """A search, report or export asked for something the evidence cannot answer as asked
    (a malformed date bound or cursor, a limit out of range, an empty or oversized export)."""


class CertificateNotFound(NotFound):
    """No stored certificate has the given id."""


class CertificateUnrenderable(Conflict):
    """A stored certificate whose content no longer renders (altered, or not JSON)."""


__all__ = ["AuditRequestInvalid", "CertificateNotFound", "CertificateUnrenderable"]
