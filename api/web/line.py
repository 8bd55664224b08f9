"""The bench board page: benches, slots, devices, live progress, failures with reason and action.

The page is a shell; its data comes from the JSON API (``/api/board``) and the live stream
(``/api/board/events``), authenticated by the same web session.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from api.deps import Caller, ContextDep, page_user
from api.web.render import render
from api.web.tech_pages import read
from factory.custody.views import low_pools
from factory.identity.models import Role

router = APIRouter(include_in_schema=False)

BoardUser = Annotated[Caller, Depends(page_user(Role.TECHNICIAN))]


@router.get("/board")
def board_page(request: Request, ctx: ContextDep, me: BoardUser) -> HTMLResponse:
    # The contingency pools at or below their low-stock level: a warning above the live board.
    return render(request, "board.html", me, low_pools=read(ctx, low_pools))
