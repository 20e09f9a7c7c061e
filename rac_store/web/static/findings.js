// Live findings: Server-Sent Events from /findings/live, added on top of the table.
// Every value is set with textContent (never as HTML). Pausing closes the stream;
// resuming reopens it from the last event seen in each shard, so nothing is lost.
"use strict";

(function () {
  const feed = document.getElementById("feed");
  if (!feed || !feed.dataset.liveUrl) return;
  const tbody = document.querySelector("#findings tbody");
  const statusEl = document.getElementById("live-status");
  const toggle = document.getElementById("live-toggle");
  const countEl = document.getElementById("live-count");
  const base = feed.dataset.base || "";
  const types = (feed.dataset.types || "").split(",").filter(Boolean);
  const positions = feed.dataset.since.split(",");
  const seen = new Set();
  const MAX_ROWS = 500;
  let source = null;
  let paused = false;
  let received = 0;
  let retryTimer = null;

  function setStatus(text, cls) {
    statusEl.textContent = text;
    statusEl.className = "live-status " + cls;
  }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function iso(ms) {
    return new Date(ms).toISOString();
  }

  function addRow(f) {
    const row = document.createElement("tr");
    row.className = "finding fresh t-" + f.type;
    cell(row, iso(f.at_ms), "when");
    const tag = document.createElement("span");
    tag.className = "tag t-" + f.type;
    tag.textContent = f.type;
    cell(row, "").appendChild(tag);
    const link = document.createElement("a");
    link.className = "run";
    link.href = base + "/runs/" + encodeURIComponent(f.run_id);
    link.textContent = f.run_id;
    cell(row, "").appendChild(link);
    cell(row, f.domain ? f.domain + "/" + f.action : "");
    const details = Object.keys(f.details || {}).sort().map((k) => k + "=" + f.details[k]);
    cell(row, details.length ? details.join(" ") : (f.due_ms != null ? "due " + iso(f.due_ms) : ""), "details");
    cell(row, f.source, "muted");
    tbody.insertBefore(row, tbody.firstChild);
    while (tbody.rows.length > MAX_ROWS) tbody.deleteRow(tbody.rows.length - 1);
    const empty = document.getElementById("no-findings");
    if (empty) empty.remove();
  }

  function url() {
    const params = new URLSearchParams();
    params.set("since", positions.join(","));
    types.forEach((t) => params.append("type", t));
    return feed.dataset.liveUrl + "?" + params.toString();
  }

  function connect() {
    retryTimer = null;
    setStatus("connecting…", "connecting");
    source = new EventSource(url());
    source.addEventListener("open", () => setStatus("live", "live"));
    source.addEventListener("finding", (event) => {
      const f = JSON.parse(event.data);
      const id = f.stream_id + "@" + f.shard;
      positions[f.shard] = f.stream_id;
      if (seen.has(id)) return;
      seen.add(id);
      addRow(f);
      received += 1;
      countEl.textContent = received + " new since the page loaded";
    });
    source.addEventListener("error", (event) => {
      if (event.data) {
        const problem = JSON.parse(event.data);
        setStatus("error: " + problem.message, "error");
      } else {
        setStatus("reconnecting…", "connecting");
      }
      disconnect();
      if (!paused) retryTimer = window.setTimeout(connect, 2000);
    });
  }

  function disconnect() {
    if (source) source.close();
    source = null;
    if (retryTimer) window.clearTimeout(retryTimer);
    retryTimer = null;
  }

  toggle.addEventListener("click", () => {
    paused = !paused;
    if (paused) {
      disconnect();
      setStatus("paused", "paused");
      toggle.textContent = "resume";
    } else {
      toggle.textContent = "pause";
      connect();
    }
  });

  connect();
})();
