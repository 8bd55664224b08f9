"""Certificate search: every filter, failed outcomes from the ledger, keyset pagination."""

from __future__ import annotations

from harness.audit_data import failed_device, sanitised_device
from harness.domain import certify_all, move, receive

from api.schemas.audit import CertificatePage
from factory.audit.views import CertificateQuery, Outcome
from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.states import Event
from imaging.certificate import Destination


def _ids(body: dict) -> list[str]:
    return [i["certificate_id"] for i in body["items"]]


def _search(client, headers, **params) -> dict:
    r = client.get("/api/certificates", params=params, headers=headers["auditor"])
    assert r.status_code == 200, r.text
    return r.json()


def test_each_filter_narrows_to_the_matching_certificates(ctx, client, headers) -> None:
    _, a = sanitised_device(ctx, "DEV-A", ("A-M1", "A-M2"), asset_tag="TAG-A")
    _, b = sanitised_device(ctx, "DEV-B", ("B-M1",), destination=Destination.RECYCLING, purge=True)
    _, c = sanitised_device(ctx, "DEV-C", ("C-M1",), destination=Destination.EXTERNAL_REUSE)
    assert len(_ids(_search(client, headers))) == 4
    assert sorted(_ids(_search(client, headers, device_serial="DEV-A"))) == sorted(a)
    assert _ids(_search(client, headers, media_serial="A-M2")) == [a[1]]
    assert sorted(_ids(_search(client, headers, asset_tag="TAG-A"))) == sorted(a)
    assert _ids(_search(client, headers, method="ata-sanitize-crypto")) == b
    assert _ids(_search(client, headers, level="purge")) == b
    assert _ids(_search(client, headers, destination="external_reuse")) == c
    assert _ids(_search(client, headers, destination="external_reuse", level="purge")) == []
    hit = _search(client, headers, media_serial="C-M1")["items"][0]
    assert (hit["outcome"], hit["device_serial"], hit["level"], hit["method"]) == (
        "success", "DEV-C", "clear", "overwrite-zeros",
    )  # fmt: skip
    # date range: everything was issued today; tomorrow onwards finds nothing
    assert len(_ids(_search(client, headers, **{"from": "2000-01-01", "to": "2999-12-31"}))) == 4
    assert _ids(_search(client, headers, **{"from": "2999-01-01"})) == []
    assert _ids(_search(client, headers, to="2000-01-01")) == []
    first = _search(client, headers, device_serial="DEV-C")["items"][0]["at"]
    assert _ids(_search(client, headers, device_serial="DEV-C", **{"from": first[:19] + "Z"})) == c
    r = client.get("/api/certificates", params={"from": "yesterday"}, headers=headers["auditor"])
    assert r.status_code == 422 and "ISO 8601" in r.json()["reason"]


def test_failed_erase_outcomes_come_from_the_ledger(ctx, client, headers) -> None:
    failed_device(ctx, "DEV-F", "verification mismatch at offset 4096")
    _, ok = sanitised_device(ctx, "DEV-OK", ("OK-M1",))
    assert _ids(_search(client, headers)) == ok  # default: certificates only
    failures = _search(client, headers, outcome="failed")["items"]
    assert [(f["outcome"], f["device_serial"], f["reason"]) for f in failures] == [
        ("failed", "DEV-F", "verification mismatch at offset 4096")
    ]
    assert failures[0]["certificate_id"] is None and failures[0]["custody_seq"] > 0
    assert _search(client, headers, outcome="failed", media_serial="DEV-F-M")["items"] == failures
    everything = _search(client, headers, outcome="any")["items"]
    assert {i["outcome"] for i in everything} == {"success", "failed"} and len(everything) == 2
    # a failure has no method: filtering on one returns certificates only
    assert [i["outcome"] for i in _search(client, headers, outcome="any", method="overwrite-zeros")["items"]] == [
        "success"
    ]


def test_keyset_pagination_walks_every_row_once_newest_first(ctx, client, headers) -> None:
    device_id = receive(ctx, "DEV-P", tuple(f"P-M{i}" for i in range(5)))
    move(ctx, device_id, Event.START_SANITISE)
    ids = certify_all(ctx, device_id, destination=Destination.INTERNAL_REUSE)
    move(ctx, device_id, Event.FAIL, evidence={"reason": "second pass failed"})
    failed_device(ctx, "DEV-Q", "drive frozen")
    for outcome, expected in (("success", 5), ("any", 7)):
        seen: list[tuple[str, str]] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 2, "outcome": outcome, **({"cursor": cursor} if cursor else {})}
            body = _search(client, headers, **params)
            seen += [(i["at"], i["certificate_id"] or str(i["custody_seq"])) for i in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == expected and len(set(seen)) == expected, seen
        assert pages == -(-expected // 2)
        assert [at for at, _ in seen] == sorted((at for at, _ in seen), reverse=True)
    assert {key for _, key in seen} >= set(ids)
    r = client.get("/api/certificates", params={"cursor": "not-a-cursor"}, headers=headers["auditor"])
    assert r.status_code == 422 and "cursor" in r.json()["reason"]


def test_pages_are_exactly_what_the_declared_response_model_writes(ctx, client, headers) -> None:
    """The search writes its JSON itself (no re-validation per request); it must be byte for byte
    what ``CertificatePage`` would have produced, pinned to a device (served on the event loop)
    or not (a worker thread), certificates and failures, with and without a next page."""
    failed_device(ctx, "DEV-J-F", "erase reported success but verification read non-zero")
    sanitised_device(ctx, "DEV-J", ("J-M1", "J-M2"), asset_tag="TAG-J")
    for params in (
        {"device_serial": "DEV-J"},
        {"asset_tag": "TAG-J", "limit": 1},
        {"outcome": "any"},
        {"outcome": "failed", "media_serial": "DEV-J-F-M"},
        {"outcome": "any", "limit": 2},
    ):
        r = client.get("/api/certificates", params=params, headers=headers["auditor"])
        assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
        assert r.json()["items"], params
        assert r.content == CertificatePage.model_validate_json(r.content).model_dump_json().encode(), params
    paged = client.get("/api/certificates", params={"outcome": "any", "limit": 1}, headers=headers["auditor"]).json()
    assert paged["next_cursor"]


def test_text_the_database_cannot_hold_is_refused_not_a_server_error(ctx, client, headers) -> None:
    r = client.get("/api/certificates", params={"device_serial": "DEV\x00X"}, headers=headers["auditor"])
    if ctx.settings.is_sqlite:
        assert r.status_code == 200 and r.json()["items"] == []
    else:  # PostgreSQL text cannot contain NUL: the driver's error becomes the API's 422
        assert r.status_code == 422 and r.json()["error"] == "invalid_input", r.text


def test_a_search_never_waits_for_a_writer(ctx, client, headers) -> None:
    """A pinned search runs on the event loop: on SQLite it must read a WAL snapshot, not queue
    for the write lock a long unit of work may hold (it would stall every request)."""
    sanitised_device(ctx, "DEV-W", ("W-M1",))
    with session_scope(ctx.engine) as s:
        s.connection()  # SQLite: BEGIN IMMEDIATE, the write lock held until this block ends
        for params in ({"device_serial": "DEV-W"}, {"level": "clear"}):
            assert [i["device_serial"] for i in _search(client, headers, **params)["items"]] == ["DEV-W"]


def test_only_one_devices_certificates_are_searched_on_the_event_loop() -> None:
    """The rule the API uses to skip the worker thread: bounded by a per-device index, or not."""
    assert CertificateQuery(device_serial="X").index_bounded
    assert CertificateQuery(media_serial="M", level="purge", cursor="c").index_bounded
    assert CertificateQuery(asset_tag="T", issued_from=None).index_bounded
    assert not CertificateQuery(device_serial="X", outcome=Outcome.ANY).index_bounded  # failures walk their index
    assert not CertificateQuery(device_serial="X", outcome=Outcome.FAILED).index_bounded
    assert not CertificateQuery(level="purge").index_bounded and not CertificateQuery().index_bounded


def test_the_async_paths_page_writer_gives_the_dataclass_pages_bytes() -> None:
    """``_certificate_page_json`` writes dicts in place of ErasureOutcome: the same bytes, order
    (ties on the time broken by id) and cursor as ``_page`` over the dataclasses."""
    import orjson

    from factory.audit.search import _certificate_outcomes, _certificate_page_json, _page

    def row(cid: str, at: str, seq: int) -> tuple:
        return (cid, at, "DEV-P", None, f"M-{seq}", "purge", "nist-purge", "internal_reuse", "ab" * 32, seq)

    day2, day3 = "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"
    rows = [row("b", day2, 1), row("c", day2, 2), row("a", day3, 3)]
    for limit in (1, 2, 3, 50):
        for ordered in (rows, rows[::-1]):
            expected = orjson.dumps(_page(_certificate_outcomes(list(ordered)), limit))
            assert _certificate_page_json(list(ordered), limit) == expected, limit
    assert _certificate_page_json([], 5) == orjson.dumps(_page([], 5)) == b'{"items":[],"next_cursor":null}'
