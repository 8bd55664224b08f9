"""What the technicians' page modules share: the role, one form-post runner (the action in one
unit of work, then a redirect; or the page again with the reason and the field it concerns),
reading a page's data in a session, and a stored PDF sent as a download."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import Caller, page_user
from api.web.render import render
from factory.identity.models import Role
from factory.kernel.context import AppContext
from factory.kernel.db.engine import Session, session_scope
from factory.kernel.errors import FactoryError

TechUser = Annotated[Caller, Depends(page_user(Role.TECHNICIAN))]
T = TypeVar("T")


def read(ctx: AppContext, reader: Callable[[Session], T]) -> T:
    """What a page shows, read in one session."""
    with session_scope(ctx.engine) as session:
        return reader(session)


def field_of(exc: FactoryError, fields: dict[str, tuple[str, ...]], default: str) -> str:
    """The form field a refusal is about: the first whose words appear in the reason, else ``default``."""
    reason = exc.reason.lower()
    return next((name for name, words in fields.items() if any(w in reason for w in words)), default)


def _unguarded(_session: Session) -> AbstractContextManager[None]:
    return nullcontext()


def act(
    ctx: AppContext,
    action: Callable[[Session], str],
    then: Callable[[str], str],
    refused: Callable[[FactoryError], Response],
    guard: Callable[[Session], AbstractContextManager[None]] = _unguarded,
) -> Response:
    """A form post: the action in one unit of work and a redirect to ``then(what it returned)``;
    when the factory refuses, nothing is written (but what ``guard`` keeps around the action, such
    as a wrong PIN counted) and ``refused`` shows the page again."""
    try:
        with session_scope(ctx.engine) as session, guard(session):
            done = action(session)
    except FactoryError as exc:
        return refused(exc)
    return RedirectResponse(then(done), status_code=303)


def page(request: Request, me: Caller, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return render(request, template, me, status, **context)


def pdf_download(
    ctx: AppContext, reader: Callable[[Session], tuple[bytes, str]], disposition: str = "attachment"
) -> Response:
    """The PDF ``reader`` returns with its file name; a refusal is the reason as plain text (these
    are links, not forms: there is no page to show it on)."""
    try:
        content, name = read(ctx, reader)
    except FactoryError as exc:
        return Response(exc.reason, status_code=exc.status_code, media_type="text/plain")
    headers = {"Content-Disposition": f'{disposition}; filename="{quote(name)}"'}
    return Response(content, media_type="application/pdf", headers=headers)
