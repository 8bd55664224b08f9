"""The line signs tree heads by itself (issue 15), so an entry appended behind its back shows as an
unsigned tail within the site's bound: once the unsigned tail reaches ``FACTORY_HEAD_EVERY_ENTRIES``
entries or its oldest entry is ``FACTORY_HEAD_EVERY_SECONDS`` old. On the same looks it witnesses
the other sites sharing the database: it cosigns the latest head of every other site's log it has
not cosigned yet (``ledger.cosign``), so each log is signed by more keys than its own site's.

It runs on the controller's heartbeat, looks at most every few seconds, and checks in a read-only
snapshot first: on SQLite a write transaction every beat would queue behind the jobs for nothing.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import Engine

from factory.kernel.config import Settings
from factory.kernel.db.engine import read_scope, session_scope
from factory.kernel.errors import KeyStoreError
from factory.kernel.key_files import load_private_key
from factory.kernel.ledger.cosign import cosign_due, cosign_logs
from factory.kernel.ledger.heads import HeadPolicy, head_due, sign_if_due
from factory.kernel.site_keys import SiteKeys

log = logging.getLogger(__name__)

LOOK_EVERY_SECONDS = 5.0  # the shortest gap between two looks, whatever the heartbeat's rate


class ScheduledHeads:
    def __init__(self, engine: Engine, settings: Settings, policy: HeadPolicy | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.policy = policy or HeadPolicy.from_env()  # a malformed setting stops the agent at start
        self.signed = 0
        self.cosigned = 0
        self._refused: set[str] = set()
        self._next_look = 0.0
        self._warned = False

    def tick(self) -> None:
        """Sign a head if one is due; a failure is logged and tried again at the next look."""
        now = time.monotonic()
        if now < self._next_look:
            return
        self._next_look = now + min(LOOK_EVERY_SECONDS, self.policy.every_seconds / 4)
        try:
            self._sign_if_due()
            self._cosign_if_due()
        except KeyStoreError as exc:
            if not self._warned:  # once: the line still runs, 'ledger verify' reports the tail
                log.warning("no scheduled tree heads: %s", exc)
                self._warned = True
        except Exception as exc:  # the database away: the next look tries again
            log.warning("signing a scheduled tree head failed: %s", exc)

    def _sign_if_due(self) -> None:
        with read_scope(self.engine) as conn:
            # head_due runs two plain SELECTs, which a Connection answers as a Session does.
            due = head_due(conn, self.policy)  # type: ignore[arg-type]
        if not due:
            return
        key = load_private_key(self.settings)
        with session_scope(self.engine) as s:
            head = sign_if_due(s, key, self.settings.site_name, self.policy)
        if head is not None:
            self.signed += 1
            log.info("signed tree head at size %s", head.tree_size)

    def _cosign_if_due(self) -> None:
        site = self.settings.site_name
        with read_scope(self.engine) as conn:
            due = cosign_due(conn, site)
        if not due:
            return
        # The site key list as this line's own database holds it (every site registers its keys there).
        key, keyring = load_private_key(self.settings), SiteKeys(self.settings, lambda: self.engine).keyring()
        with session_scope(self.engine) as s:
            made, refused = cosign_logs(s, key, site, keyring)
        self.cosigned += len(made)
        for cosig in made:
            log.info("cosigned log %s at size %s", cosig.log, cosig.tree_size)
        for reason in set(refused) - self._refused:  # never cosigned; said once, 'ledger verify' names it too
            log.warning("did not cosign %s", reason)
        self._refused |= set(refused)
