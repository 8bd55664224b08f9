"""Path parameters shared by the JSON routes and the pages, bounded by the same limits as the CLI.

One definition per kind of identifier, so a serial is bounded alike in `/api/...` and on the pages.
"""

from typing import Annotated

from fastapi import Path

from factory.kernel import limits

RowId = Annotated[int, Path(ge=1, le=limits.ROW_ID)]
Serial = Annotated[str, Path(min_length=1, max_length=limits.SERIAL)]
Reference = Annotated[str, Path(min_length=1, max_length=limits.REFERENCE)]
UserName = Annotated[str, Path(min_length=1, max_length=limits.NAME)]
CertificateId = Annotated[str, Path(min_length=1, max_length=limits.CERTIFICATE_ID)]
