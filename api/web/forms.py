"""Small helpers shared by the page routers: form models, uploads, scanned lists, device cards,
and dates and times as UK users type them (day first, 24-hour clock)."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from datetime import date, datetime, time
from typing import Any

from fastapi import UploadFile
from pydantic import BaseModel

from factory.custody.service import MAX_DOCUMENT_BYTES, Acceptance, Upload
from factory.intake.service import MediaSpec
from factory.intake.views import device_view, get_device
from factory.kernel.clock import uk_moment
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import FactoryError, InvalidInput
from factory.kernel.models.device import MediaType


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


class MediaScanForm(BaseModel):
    """A device's storage media as scanned: the first medium's serial, any further ones scanned into
    a list (a laptop with two drives), and the medium type they all share."""

    medium_serial: str = ""
    media_type: str = MediaType.SATA_SSD.value
    more_media: list[str] = []

    def media(self) -> list[MediaSpec]:
        first = [self.medium_serial.strip()] if self.medium_serial.strip() else []
        return [MediaSpec(self.media_type, serial) for serial in scanned([*first, *self.more_media])]


def device_or_none(ctx: AppContext, serial: str) -> dict[str, Any] | None:
    """The device card shown after an action (the serial comes back in the redirect's query)."""
    if not serial:
        return None
    with session_scope(ctx.engine) as session:
        try:
            return device_view(session, get_device(session, serial))
        except FactoryError:
            return None


# ---------------------------------------------------------------- dates and times, UK style
# A browser's <input type=date> shows the order of its locale (and headless Chromium ignores the
# locale), so date fields are text fields that take the date day first: 31/01/2026 (1/2/2026 too).
# yyyy-mm-dd is also taken: it cannot be misread. The template macro is tech_macros.date_field.
DATE_PATTERN = r"\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2}"
TIME_PATTERN = r"([01]?\d|2[0-3]):[0-5]\d"
_DAY_FIRST = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_ISO_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


class FieldError(InvalidInput):
    """A refusal about one form field: the page marks ``field`` invalid and ties the reason to it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


def day_first(day: date | None) -> str:
    """A date as UK users read it: 31/01/2026 ("" for none)."""
    return day.strftime("%d/%m/%Y") if day else ""


def parse_day(text: str, *, field: str, label: str) -> date | None:
    """A date typed day first (dd/mm/yyyy); None when left empty.

    :raises FieldError: not written dd/mm/yyyy, or no such day (31/02/2026).
    """
    value = (text or "").strip()
    if not value:
        return None
    if found := _DAY_FIRST.fullmatch(value):
        day, month, year = (int(g) for g in found.groups())
    elif found := _ISO_DAY.fullmatch(value):
        year, month, day = (int(g) for g in found.groups())
    else:
        raise FieldError(
            field, f"{label}: '{value[:20]}' is not a date written day first, dd/mm/yyyy (e.g. 31/01/2026)"
        )
    try:
        return date(year, month, day)
    except ValueError:
        why = f"{calendar.month_name[month]} {year} has no day {day}" if 1 <= month <= 12 else "months go 1 to 12"
        raise FieldError(field, f"{label}: {value} is not a real date ({why})") from None


def iso_day(text: str, *, field: str, label: str) -> str:
    """A filter typed on a page, for the filters the API and CLI share (ISO 8601): a date typed
    day first becomes YYYY-MM-DD; anything else (an ISO date or date-time) is passed on as typed,
    for the shared filter to check.

    :raises FieldError: a day-first date that is no such day.
    """
    value = (text or "").strip()
    if "/" not in value:
        return value
    day = parse_day(value, field=field, label=label)
    return day.isoformat() if day else ""


def parse_clock(text: str, *, field: str, label: str) -> time | None:
    """A time typed on the 24-hour clock (HH:MM); None when left empty.

    :raises FieldError: not HH:MM from 00:00 to 23:59.
    """
    value = (text or "").strip()
    if not value:
        return None
    if not re.fullmatch(TIME_PATTERN, value):
        raise FieldError(field, f"{label}: '{value[:20]}' is not a time on the 24-hour clock, HH:MM (e.g. 14:05)")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def parse_uk_moment(day_text: str, time_text: str, *, fields: tuple[str, str], label: str) -> datetime | None:
    """A UK local date (day first) and time (24-hour) typed in two fields, as an aware moment; None
    when both are empty.

    :raises FieldError: either is malformed, or one is given without the other.
    """
    day = parse_day(day_text, field=fields[0], label=f"{label} (date)")
    at = parse_clock(time_text, field=fields[1], label=f"{label} (time)")
    if day is None and at is None:
        return None
    if day is None:
        raise FieldError(fields[0], f"{label}: give the date too, dd/mm/yyyy")
    if at is None:
        raise FieldError(fields[1], f"{label}: give the time too, HH:MM on the 24-hour clock")
    return uk_moment(day, at)
