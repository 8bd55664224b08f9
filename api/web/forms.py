"""Small helpers shared by the page routers: uploads, the certificate verifier, scanned lists."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import UploadFile

from factory.custody.acceptance import Acceptance
from factory.custody.documents import MAX_DOCUMENT_BYTES, Upload
from factory.kernel.context import AppContext
from factory.kernel.lifecycle.guards import CertificateVerifier


def read_upload(file: UploadFile | None) -> Upload | None:
    """The uploaded file as an evidence Upload; None when no file was chosen.

    Reads one byte past the limit so an oversized file is refused by the document service
    rather than held in memory whole.
    """
    if file is None or not file.filename:
        return None
    content = file.file.read(MAX_DOCUMENT_BYTES + 1)
    return Upload(content=content, media_type=file.content_type or "", filename=file.filename)


def acceptance_from_form(name: str, pin: str, signature: UploadFile | None) -> Acceptance:
    """An officer accepts with a PIN typed on the bench keyboard or a signature image."""
    upload = read_upload(signature)
    return Acceptance(name=name, signature=upload, pin=pin or None)


def verifier(ctx: AppContext) -> CertificateVerifier:
    return ctx.site_keys.verifier()


def scanned(values: Iterable[str]) -> list[str]:
    """Scanned codes in scan order, blanks and repeats dropped."""
    return list(dict.fromkeys(v.strip() for v in values if v and v.strip()))
