"""Who may still get in: disabling and enabling users, revoking API tokens, ending browser
sessions, unlocking throttled accounts and addresses, and throttled sign-in itself.

Every change appends an identity audit row (factory/identity/audit.py) in the same unit of work.
A revoked token or a disabled user is refused by every API process within the token cache's
bound (``FACTORY_TOKEN_CACHE_SECONDS``); browser sessions are checked on every request, so ending
one (or disabling its user) takes effect on the next request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from factory.identity import audit, throttle
from factory.identity.errors import DirectoryUnavailable, UnknownToken
from factory.identity.models import ApiToken, User, UserCredential, WebSession
from factory.identity.throttle import Kind
from factory.identity.views import get_user
from factory.kernel import clock
from factory.kernel.clock import utc_now
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import InvalidInput

SIGN_INS = "sign-ins"
PINS = "PIN entries"


# ---------------------------------------------------------------- sign-in and PIN throttling


@contextmanager
def login_attempt(engine: Engine, name: str, address: str | None) -> Iterator[Session]:
    """A throttled sign-in: refused at once while the account or the address is delayed or locked;
    otherwise counted as a failure first (its own short transaction), and given back only if the
    block — checking the password, opening a session — completes. The block's unit of work opens
    lazily, so it may talk to a directory before its first query without holding a lock.

    :raises Throttled: the account or the address is delayed or locked.
    """
    account = throttle.key(Kind.LOGIN_ACCOUNT, account_of(name))
    addresses = [throttle.key(Kind.LOGIN_ADDRESS, address)] if address else []
    with session_scope(engine) as session:
        throttle.prune(session, clock.now())
        throttle.reserve(session, [account, *addresses], clock.now(), SIGN_INS)
    try:
        with session_scope(engine) as session:
            yield session
            throttle.settle(session, account, addresses)
    except DirectoryUnavailable:
        # Not a guess: the directory could not be asked, so an outage locks nobody out.
        with session_scope(engine) as session:
            throttle.refund(session, [account, *addresses])
        raise


def account_of(typed: str) -> str:
    """The account a sign-in is counted against: every form one name may be typed in (``jsmith``,
    ``FORCE\\jsmith``, ``jsmith@force.example``, any domain, configured or not) counts against one
    throttle, so typing it another way buys no fresh attempts."""
    name = (typed or "").strip().lower().rpartition("\\")[2]
    return name.partition("@")[0] or name


def _pin_keys(staff_number: str, address: str | None) -> list[str]:
    officer = throttle.key(Kind.PIN_OFFICER, staff_number)
    return [officer, throttle.key(Kind.PIN_ADDRESS, address)] if address else [officer]


def pin_allowed(session: Session, staff_number: str, address: str | None) -> None:
    """:raises Throttled: too many wrong PINs for this officer or from this address."""
    throttle.check(session, _pin_keys(staff_number, address), clock.now(), PINS)


def pin_failed(session: Session, staff_number: str, address: str | None) -> None:
    """Count a wrong PIN (in a unit of work of its own: the refused hand-over was rolled back)."""
    throttle.fail(session, _pin_keys(staff_number, address), clock.now())


def pin_succeeded(session: Session, staff_number: str) -> None:
    throttle.forget(session, throttle.key(Kind.PIN_OFFICER, staff_number))


def unlock(session: Session, kind: str, subject: str, actor: str) -> bool:
    """Lift a lockout or delay: ``kind`` is ``account`` (a user name), ``officer`` (a staff
    number) or ``address`` (both sign-ins and PINs from it). False if nothing was counted.

    :raises InvalidInput: an unknown kind or an empty subject.
    """
    kinds = {
        "account": (Kind.LOGIN_ACCOUNT,),
        "officer": (Kind.PIN_OFFICER,),
        "address": (Kind.LOGIN_ADDRESS, Kind.PIN_ADDRESS),
    }
    if kind not in kinds:
        raise InvalidInput(f"unlock what? '{kind}' is not one of: {', '.join(kinds)}")
    if not (subject or "").strip():
        raise InvalidInput(f"name the {kind} to unlock")
    lifted = [throttle.lift(session, throttle.key(k, subject), actor) for k in kinds[kind]]
    return any(lifted)


# ---------------------------------------------------------------- users, tokens, sessions


def set_disabled(session: Session, name: str, disabled: bool, actor: str) -> tuple[User, int]:
    """Disable (every browser session ends; tokens are refused) or enable a user; returns the user
    and how many sessions were ended.

    :raises UnknownUser: no such user.
    :raises InvalidInput: an admin disabling their own account (so the last one cannot lock all out).
    """
    user = get_user(session, name)
    if disabled and user.name == actor:
        raise InvalidInput("you cannot disable your own account (another admin or the CLI can)")
    ended = end_user_sessions(session, user) if disabled else 0
    if user.disabled != disabled:
        user.disabled = disabled
        session.add(user)
        audit.record(
            session, actor, "disable" if disabled else "enable", f"user:{user.name}", f"{ended} sessions ended"
        )
    session.flush()
    return user, ended


def end_user_sessions(session: Session, user: User) -> int:
    """End every open browser session of ``user``; returns how many were open."""
    now = utc_now()
    rows = session.exec(
        select(WebSession).where(WebSession.user_id == user.id, col(WebSession.revoked_at).is_(None))
    ).all()
    for web in rows:
        web.revoked_at = now
        session.add(web)
    return len(rows)


def _revoke(session: Session, row: UserCredential, action: str, target: str, actor: str) -> None:
    """Mark a token or a browser session revoked (once) and audit it with its owner's name."""
    if row.revoked_at is None:
        row.revoked_at = utc_now()
        session.add(row)
        owner = session.get(User, row.user_id)
        audit.record(session, actor, action, target, f"user {owner.name if owner else '?'}")
        session.flush()


def revoke_token(session: Session, token_id: int, actor: str) -> ApiToken:
    """:raises UnknownToken: no token has this id."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise UnknownToken(f"no API token has id {token_id}")
    _revoke(session, token, "revoke-token", f"token:{token_id}", actor)
    return token


def revoke_user_tokens(session: Session, name: str, actor: str) -> int:
    """Revoke every live token of a user; returns how many.

    :raises UnknownUser: no such user.
    """
    user = get_user(session, name)
    rows = session.exec(select(ApiToken).where(ApiToken.user_id == user.id, col(ApiToken.revoked_at).is_(None))).all()
    for token in rows:
        revoke_token(session, token.id or 0, actor)
    return len(rows)


def end_session(session: Session, session_id: int, actor: str) -> WebSession:
    """End one browser session by its id (as listed); its user must log in again.

    :raises UnknownToken: no session has this id.
    """
    web = session.get(WebSession, session_id)
    if web is None:
        raise UnknownToken(f"no browser session has id {session_id}")
    _revoke(session, web, "end-session", f"session:{session_id}", actor)
    return web


def token_expiry(days: int, now: datetime | None = None) -> str:
    """When a token issued now for ``days`` days stops working."""
    return clock.format_utc((now or clock.now()) + timedelta(days=days))
