"""What the technicians' page modules share: the role, one form-post runner (the action in one
unit of work, then a redirect; or the page again with the reason and the field it concerns), and
reading a page's data in a session."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

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


def act(
    ctx: AppContext,
    action: Callable[[Session], str],
    then: Callable[[str], str],
    refused: Callable[[FactoryError], Response],
) -> Response:
    """A form post: the action in one unit of work and a redirect to ``then(what it returned)``;
    when the factory refuses, nothing is written and ``refused`` shows the page again."""
    try:
        with session_scope(ctx.engine) as session:
            done = action(session)
    except FactoryError as exc:
        return refused(exc)
    return RedirectResponse(then(done), status_code=303)


def page(request: Request, me: Caller, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return render(request, template, me, status, **context)
