"""The line's JSON API and board page: auth (bearer or web session + CSRF), lists, actions, SSE."""

from __future__ import annotations

import json
import time

from harness.web import bearer
from sqlmodel import select

from factory.identity.models import User
from factory.identity.service import open_web_session
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line import jobs
from factory.line.bench_config import simulated_config
from factory.line.models import Slot
from factory.line.slots import Attachment, attach, register_benches


def _queued_job(ctx: AppContext, serial: str = "UNKNOWN-1") -> int:
    """A bench with a device in slot 1 and its queued job (no agent running)."""
    with session_scope(ctx.engine) as s:
        register_benches(s, simulated_config("1x2", agent="api-agent"), site="test-site", run_id="r", now=time.time())
        s.flush()
        slot = s.exec(select(Slot).where(Slot.code == "bench-1/slot-1")).one()
        attach(s, slot, Attachment(serial, "/dev/sdq", 1024, time.time()))
        job, _ = jobs.create_job(s, slot, provision_name="provision (simulated: nothing applied)", detected_epoch=None)
        return job.id


def test_everything_needs_a_caller(client) -> None:
    for url in ("/api/benches", "/api/jobs", "/api/devices", "/api/board", "/api/board/events"):
        r = client.get(url)
        assert r.status_code == 401 and r.json()["error"] == "unauthenticated", url
    assert client.post("/api/jobs/1/cancel").status_code == 401


def test_lists_and_detail(ctx, client, tokens) -> None:
    job_id = _queued_job(ctx)
    h = bearer(tokens["auditor"])
    benches = client.get("/api/benches", headers=h).json()
    slot = benches[0]["slots"][0]
    assert (slot["code"], slot["occupied"], slot["job"]["id"], slot["job"]["status"]) == (
        "bench-1/slot-1",
        True,
        job_id,
        "queued",
    )
    assert benches[0]["slots"][1]["occupied"] is False and benches[0]["agent_alive"] is False
    listed = client.get("/api/jobs", params={"status": "queued"}, headers=h).json()
    assert [j["id"] for j in listed] == [job_id] and listed[0]["pipeline"] == "quarantine"
    detail = client.get(f"/api/jobs/{job_id}", headers=h).json()
    assert [s["name"] for s in detail["steps"]] == ["quarantine"]
    assert "detected UNKNOWN-1 in bench-1/slot-1" in detail["log"][0]["message"]
    assert client.get("/api/jobs", params={"status": "nonsense"}, headers=h).status_code == 422
    assert client.get("/api/jobs/999999", headers=h).status_code == 404
    assert client.get("/api/devices", headers=h).json() == []
    board = client.get("/api/board", headers=h).json()
    assert set(board) == {"benches", "attention", "counts", "notices"} and board["counts"]["jobs"] == {"queued": 1}


def test_cancel_retry_abort(ctx, client, tokens) -> None:
    job_id = _queued_job(ctx)
    tech = bearer(tokens["technician"])
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=bearer(tokens["auditor"])).status_code == 403
    r = client.post(f"/api/jobs/{job_id}/cancel", headers=tech)
    assert (
        r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["reason"] == "cancelled by technician1"
    )
    r = client.post(f"/api/jobs/{job_id}/cancel", headers=tech)
    assert r.status_code == 409 and "nothing to cancel" in r.json()["reason"]
    r = client.post(f"/api/jobs/{job_id}/retry", headers=tech)
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["status"] == "queued" and new["attempt"] == 2
    assert f"retry of job {job_id} requested by technician1" in [line["message"] for line in new["log"]]
    assert client.post(f"/api/jobs/{job_id}/retry", headers=tech).status_code == 409  # one active job per slot
    r = client.post(f"/api/jobs/{new['id']}/abort", headers=tech)
    assert r.json()["status"] == "aborted" and r.json()["reason"] == "aborted by technician1"
    assert client.post(f"/api/jobs/{new['id']}/retry", headers=tech).status_code == 409  # aborted is final


def test_web_session_needs_csrf_for_actions(ctx, client, tokens) -> None:
    job_id = _queued_job(ctx)
    with session_scope(ctx.engine) as s:
        user = s.exec(select(User).where(User.name == "technician1")).one()
        cookie, web = open_web_session(s, user)
        csrf = web.csrf_token
    client.cookies.set("df_session", cookie)
    assert client.get("/api/benches").status_code == 200
    r = client.post(f"/api/jobs/{job_id}/cancel")
    assert r.status_code == 403 and "CSRF" in r.json()["reason"]
    r = client.post(f"/api/jobs/{job_id}/cancel", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    page = client.get("/board")
    assert page.status_code == 200 and "Bench board" in page.text and "/static/board.js" in page.text
    assert client.get("/static/board.js").status_code == 200
    client.cookies.clear()
    assert client.get("/board", follow_redirects=False).status_code == 303


def test_board_events_stream_a_snapshot(ctx, client, tokens) -> None:
    _queued_job(ctx)
    with client.stream("GET", "/api/board/events", headers=bearer(tokens["technician"])) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event, data = None, None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "board":
                data = json.loads(line.removeprefix("data: "))
                break
    assert data is not None and data["benches"][0]["slots"][0]["job"]["status"] == "queued"
