// Bench board: renders /api/board snapshots pushed over server-sent events; buttons call the
// job actions with the session's CSRF token. Text is set with textContent only (no HTML).
(function () {
  "use strict";

  var statusEl = document.getElementById("board-status");
  var connectionEl = document.getElementById("board-connection");
  var updatedEl = document.getElementById("board-updated");
  var actionEl = document.getElementById("board-action");
  var benchesEl = document.getElementById("benches");
  var attentionTable = document.getElementById("attention");
  var attentionEmpty = document.getElementById("attention-empty");
  var countsEl = document.getElementById("counts");
  var noticesList = document.getElementById("notices");
  var noticesEmpty = document.getElementById("notices-empty");
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // Times as people here read them: 24-hour UK time in London, whatever the browser's locale.
  var UK = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Europe/London", hourCycle: "h23", day: "2-digit", month: "2-digit", year: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit"
  });
  function ukTime(when) {
    var moment = when instanceof Date ? when : new Date(String(when).replace(/(\.\d{3})\d+/, "$1"));
    return isNaN(moment.getTime()) ? String(when) : UK.format(moment).replace(",", "");
  }

  function act(jobId, action) {
    fetch("/api/jobs/" + jobId + "/" + action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }
    }).then(function (r) {
      return r.json().then(function (body) {
        actionEl.textContent = r.ok ? ("Job " + jobId + ": " + action + " done") : ("Job " + jobId + ": " + (body.reason || r.status));
      });
    }).catch(function (e) { actionEl.textContent = "Action failed: " + e; });
  }

  function button(job, action, label) {
    var b = el("button", "act", label);
    b.type = "button";
    b.setAttribute("data-job", job.id);
    b.setAttribute("data-action", action);
    b.addEventListener("click", function () { act(job.id, action); });
    return b;
  }

  function actions(job) {
    var box = el("span", "actions");
    if (job.status === "queued" || job.status === "running") {
      box.appendChild(button(job, "cancel", "Cancel"));
      box.appendChild(button(job, "abort", "Abort"));
    } else if (job.status === "failed" || job.status === "cancelled" || job.status === "interrupted") {
      box.appendChild(button(job, "retry", "Retry"));
    }
    return box;
  }

  function slotCard(slot) {
    var job = slot.job;
    var state = slot.error ? "conflict" : (job ? job.status : (slot.occupied ? "waiting" : "empty"));
    var card = el("div", "slot " + state);
    card.id = "slot-" + slot.code.replace(/[^A-Za-z0-9-]/g, "-");
    card.setAttribute("data-status", state);
    card.appendChild(el("div", "code", slot.code));
    if (!slot.occupied && !slot.error) {
      card.appendChild(el("div", null, "empty"));
      return card;
    }
    var device = slot.device;
    card.appendChild(el("div", "serial", device ? device.serial : (slot.attached_serial || (slot.attached_mac ? "MAC " + slot.attached_mac : "(no serial)"))));
    if (device) card.appendChild(el("div", "state", device.kind + " · " + device.state + (device.role ? " · " + device.role : "")));
    if (slot.error) card.appendChild(el("div", "reason", slot.error));
    if (job) {
      card.appendChild(el("div", "job", "job " + job.id + " · " + job.pipeline + " · " + job.status));
      if (job.current_step) {
        var step = el("div", job.current_step.indexOf("no-op") >= 0 ? "step noop" : "step", "step: " + job.current_step);
        card.appendChild(step);
      }
      if (job.status === "running") {
        var bar = el("progress");
        bar.max = 1;
        bar.value = job.progress || 0;
        bar.setAttribute("aria-label", "progress of job " + job.id);
        card.appendChild(bar);
      }
      if (job.reason) card.appendChild(el("div", "reason", job.reason));
      if (job.action) card.appendChild(el("div", "action", "→ " + job.action));
      card.appendChild(actions(job));
    }
    return card;
  }

  // A live region speaks on every change of its text: write it only when it says something new.
  function say(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  // The log announces additions: keep the notices already shown and insert only the new ones, in
  // the snapshot's order (newest first), so a push that repeats them says nothing.
  function showNotices(notices) {
    var wanted = notices.map(function (n) { return ukTime(n.at) + " · " + n.agent + " · " + n.message; });
    Array.prototype.slice.call(noticesList.children).forEach(function (li) {
      if (wanted.indexOf(li.textContent) < 0) li.remove();
    });
    var cursor = noticesList.firstChild;
    wanted.forEach(function (text) {
      if (cursor && cursor.textContent === text) {
        cursor = cursor.nextSibling;
      } else {
        noticesList.insertBefore(el("li", null, text), cursor);
      }
    });
    noticesList.hidden = notices.length === 0;
    noticesEmpty.hidden = notices.length !== 0;
  }

  // The benches and the attention list are drawn afresh on every push (progress ticks several
  // times a second): a keyboard user's focus on a job button moves to the new button.
  function focusedAction() {
    var active = document.activeElement;
    return active && active.classList && active.classList.contains("act") ? [active.closest("table") ? "attention" : "benches", active.getAttribute("data-job"), active.getAttribute("data-action")] : null;
  }

  function refocus(focus) {
    if (!focus) return;
    var box = focus[0] === "attention" ? attentionTable : benchesEl;
    var again = box.querySelector('button[data-job="' + focus[1] + '"][data-action="' + focus[2] + '"]');
    if (again) again.focus();
  }

  function render(snapshot) {
    var focus = focusedAction();
    benchesEl.textContent = "";
    document.getElementById("benches-empty").hidden = snapshot.benches.length > 0;
    snapshot.benches.forEach(function (bench) {
      var box = el("section", "bench");
      var title = el("h3", null, bench.name + " — agent " + (bench.agent || "none") + " — " + bench.running + "/" + bench.max_jobs + " running ");
      if (!bench.agent_alive) title.appendChild(el("span", "dead", "(controller not running)"));
      box.appendChild(title);
      var grid = el("div", "slots");
      bench.slots.forEach(function (slot) { grid.appendChild(slotCard(slot)); });
      box.appendChild(grid);
      benchesEl.appendChild(box);
    });
    var body = attentionTable.querySelector("tbody");
    body.textContent = "";
    snapshot.attention.forEach(function (job) {
      var row = el("tr");
      var slot = job.slot ? job.slot + (job.pulled ? " (pulled out)" : "") : "not in a slot";
      var what = job.id === null ? job.status : "job " + job.id + " " + job.status;
      [slot, job.device_serial, what, job.reason || "", job.action || ""].forEach(function (v) {
        row.appendChild(el("td", null, v));
      });
      var cell = el("td");
      // A pulled device's slot holds nothing to retry: its row says what to do instead.
      if (job.id !== null && !job.pulled) cell.appendChild(actions(job));
      row.appendChild(cell);
      body.appendChild(row);
    });
    attentionTable.hidden = snapshot.attention.length === 0;
    attentionEmpty.hidden = snapshot.attention.length !== 0;
    showNotices(snapshot.notices || []);
    refocus(focus);
    var parts = [];
    Object.keys(snapshot.counts.devices).sort().forEach(function (k) { parts.push(k + ": " + snapshot.counts.devices[k]); });
    countsEl.textContent = "Devices by state — " + parts.join(", ");
  }

  function connect() {
    var source = new EventSource("/api/board/events");
    source.addEventListener("board", function (event) {
      render(JSON.parse(event.data));
      statusEl.className = "board-status";
      say(connectionEl, "Live");
      updatedEl.textContent = " · updated " + ukTime(new Date());
    });
    source.onerror = function () {
      statusEl.className = "board-status stale";
      say(connectionEl, "Connection lost: retrying…");
    };
  }

  connect();
})();
