"""An officer's assistive-technology needs as structured data: what the personalise step applies
with the playbooks' accessibility role, and what the issue guard checks the device's QA against.

Recorded on the officer as canonical JSON (``Officer.at_needs``); ``Officer.at_profile`` keeps the
words a person reads ("screen reader (JAWS), magnifier x3.0"). A profile is entered or imported as
those words ("screen-reader, jaws, magnifier x3, dictation") or as a JSON object; anything else is
refused, so nothing a person typed is silently ignored.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from factory.kernel.errors import InvalidInput

SCREEN_READERS = ("nvda", "jaws")  # Windows products; Linux devices use Orca
_FEATURE_LABELS = {
    "screen_reader": "screen reader",
    "magnifier": "magnifier",
    "high_contrast": "high contrast",
    "large_text": "large text",
    "dictation": "dictation",
}
# Words accepted for each feature (lower case, '-', '_' and spaces folded to '-').
_WORDS: dict[str, dict[str, Any]] = {
    "screen-reader": {"screen_reader": True},
    "screenreader": {"screen_reader": True},
    "nvda": {"screen_reader": True, "screen_reader_product": "nvda"},
    "jaws": {"screen_reader": True, "screen_reader_product": "jaws"},
    "orca": {"screen_reader": True},
    "magnifier": {"magnifier": True},
    "zoomtext": {"magnifier": True},
    "high-contrast": {"high_contrast": True},
    "large-text": {"large_text": True},
    "dictation": {"dictation": True},
    "dragon": {"dictation": True},
    "speech-recognition": {"dictation": True},
}
_ZOOM = re.compile(r"^magnifier(?:-?x|:)(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class AtNeeds:
    screen_reader: bool = False
    screen_reader_product: str = "nvda"
    magnifier: bool = False
    magnifier_zoom: float = 2.0
    high_contrast: bool = False
    large_text: bool = False
    dictation: bool = False

    def __post_init__(self) -> None:
        if self.screen_reader_product not in SCREEN_READERS:
            known = ", ".join(SCREEN_READERS)
            raise InvalidInput(f"screen reader '{self.screen_reader_product}' is not one of {known}")
        if not 1.0 <= float(self.magnifier_zoom) <= 32.0:
            raise InvalidInput(f"magnifier zoom {self.magnifier_zoom} is outside 1-32")

    @property
    def features(self) -> list[str]:
        return [name for name in _FEATURE_LABELS if getattr(self, name)]

    @property
    def any(self) -> bool:
        return bool(self.features)

    def summary(self) -> str:
        """What a person reads: "screen reader (NVDA), magnifier x2.0"; "" for no needs."""
        words = []
        for name in self.features:
            label = _FEATURE_LABELS[name]
            if name == "screen_reader":
                label += f" ({self.screen_reader_product.upper()})"
            elif name == "magnifier":
                label += f" x{float(self.magnifier_zoom):.1f}"
            words.append(label)
        return ", ".join(words)

    def to_json(self) -> str:
        """Canonical (sorted keys, no spaces): stored, and hashed by :meth:`digest`."""
        return "" if not self.any else json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        """Names this exact profile: a QA pass counts only for the profile it ran with."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def playbook_vars(self) -> dict[str, Any]:
        return asdict(self)

    def missing_labels(self) -> list[str]:
        return [_FEATURE_LABELS[name] for name in self.features]


NO_NEEDS = AtNeeds()


def from_json(text: str | None) -> AtNeeds:
    """The stored form back (empty: no needs).

    :raises InvalidInput: not a JSON object of the known fields.
    """
    if not (text or "").strip():
        return NO_NEEDS
    try:
        data = json.loads(text or "")
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"assistive-technology profile is not JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise InvalidInput("assistive-technology profile must be a JSON object")
    known = {f.name: f.type for f in fields(AtNeeds)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InvalidInput(f"assistive-technology profile has unknown fields: {', '.join(unknown)}")
    for name, value in data.items():
        wanted = {"screen_reader_product": str, "magnifier_zoom": (int, float)}.get(name, bool)
        if not isinstance(value, wanted) or (wanted == (int, float) and isinstance(value, bool)):
            raise InvalidInput(f"assistive-technology profile field {name} has the wrong type")
    return AtNeeds(**data)


def parse(text: str | None) -> AtNeeds:
    """A profile as typed or imported: words separated by ',' or ';', or a JSON object.

    :raises InvalidInput: a word that names no feature, or bad JSON.
    """
    value = (text or "").strip()
    if value.startswith("{"):
        return from_json(value)
    needs = NO_NEEDS
    for raw in re.split(r"[;,]", value):
        word = re.sub(r"[\s_-]+", "-", raw.strip().lower())
        if not word or word in ("none", "-"):
            continue
        zoom = _ZOOM.match(word.replace("\u00d7", "x"))  # the multiplication sign, as typed on a form
        if zoom:
            needs = replace(needs, magnifier=True, magnifier_zoom=float(zoom.group(1)))
        elif word in _WORDS:
            needs = replace(needs, **_WORDS[word])
        else:
            known = ", ".join(sorted(_WORDS))
            raise InvalidInput(f"assistive-technology need '{raw.strip()[:40]}' is not one of: {known}, magnifier xN")
    return needs


@dataclass(frozen=True)
class ImportRow:
    line: int
    staff_number: str
    needs: AtNeeds


def read_import(text: str) -> list[ImportRow]:
    """CSV with a header naming ``staff_number`` and ``at_profile`` (other columns ignored).

    :raises InvalidInput: no such columns, an empty staff number, a bad profile (with its line).
    """
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"staff_number", "at_profile"} <= {f.strip() for f in reader.fieldnames}:
        raise InvalidInput("the import needs a header with the columns staff_number and at_profile")
    rows = []
    for row in reader:
        if row.get(None):  # type: ignore[call-overload]  # DictReader's key for fields beyond the header
            raise InvalidInput(
                f"line {reader.line_num} has more fields than the header: quote a profile with commas, or use ';'"
            )
        clean = {(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        if not clean.get("staff_number"):
            raise InvalidInput(f"line {reader.line_num}: no staff number")
        try:
            needs = parse(clean.get("at_profile", ""))
        except InvalidInput as exc:
            raise InvalidInput(f"line {reader.line_num} ({clean['staff_number']}): {exc.reason}") from exc
        rows.append(ImportRow(reader.line_num, clean["staff_number"], needs))
    return rows
