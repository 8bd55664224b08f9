"""Asset labels as PDF for the label printer, from the receive page and every device card."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import ContextDep
from api.params import Serial
from api.web.tech_pages import TechUser, read
from factory.custody.views import asset_label
from factory.kernel.errors import FactoryError

router = APIRouter(prefix="/tech", include_in_schema=False)


@router.get("/labels/{serial}")
def label(ctx: ContextDep, _me: TechUser, serial: Serial) -> Response:
    """The label PDF, shown inline so the browser's print dialog sends it to the label printer."""
    try:
        stored, pdf = read(ctx, lambda s: asset_label(s, serial, ctx.settings.site_name))
    except FactoryError as exc:
        return Response(exc.reason, status_code=exc.status_code, media_type="text/plain")
    disposition = f'inline; filename="label-{quote(stored, safe="")}.pdf"'
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": disposition})
