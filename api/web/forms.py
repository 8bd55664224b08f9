"""Small helpers shared by the page routers: form models, uploads, scanned lists, device cards."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import UploadFile
from pydantic import BaseModel

from factory.custody.service import MAX_DOCUMENT_BYTES, Acceptance, Upload
from factory.intake.views import device_view, get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import FactoryError


def read_upload(file: UploadFile | None) -> Upload | None:
    """The uploaded file as an evidence Upload; None when no file was chosen.

    Reads one byte past the limit so an oversized file is refused by the document service
    rather than held in memory whole.
    """
    if file is None or not file.filename:
        return None
    content = file.file.read(MAX_DOCUMENT_BYTES + 1)
    return Upload(content=content, media_type=file.content_type or "", filename=file.filename)


class AcceptanceForm(BaseModel):
    """An officer accepts with a PIN typed on the bench keyboard or a signature image."""

    accepted_name: str = ""
    pin: str = ""
    signature: UploadFile | None = None

    def acceptance(self) -> Acceptance:
        return Acceptance(name=self.accepted_name, signature=read_upload(self.signature), pin=self.pin or None)

    def values(self) -> dict[str, str]:
        """The fields echoed back into the form when it is refused (never the PIN or the file)."""
        return self.model_dump(exclude={"pin", "signature"})


def scanned(values: Iterable[str]) -> list[str]:
    """Scanned codes in scan order, blanks and repeats dropped."""
    return list(dict.fromkeys(v.strip() for v in values if v and v.strip()))


def device_or_none(ctx: AppContext, serial: str) -> dict[str, Any] | None:
    """The device card shown after an action (the serial comes back in the redirect's query)."""
    if not serial:
        return None
    with session_scope(ctx.engine) as session:
        try:
            return device_view(session, get_device(session, serial))
        except FactoryError:
            return None
