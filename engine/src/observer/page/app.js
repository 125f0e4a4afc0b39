// The observer page: polls /api/tree, /api/processes and /api/metrics, draws the trees, the
// process table (sortable; ?sort=KEY sets the first order, ?select=NAME opens a process) and
// the charts, whose history lives in this page only.
"use strict";

const REFRESH_MS = 1500;
const HISTORY = 120;  // samples kept per chart
const params = new URLSearchParams(location.search);
let sortKey = params.get("sort") || "message_queue_len";
let selectedId = null;          // a pid's id text
let pendingSelect = params.get("select");
let processes = [];
const history = { time: [], processes: [], messages: [], utilisation: [] };
let previous = null;            // the last metrics sample, for rates

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function getJson(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

function displayName(p) {
  return p.registered_name || p.label || "";
}

// ---- The trees ------------------------------------------------------------------------------

function renderNode(n) {
  const kind = n.type === "supervisor" ? "supervisor" : "worker";
  const down = !n.pid || n.restarting;
  const title = n.registered_name || n.label || n.child_id || n.pid || "?";
  const box = el("div", { class: "box", title: n.behaviour || "" },
    title,
    el("span", { class: "behaviour" }, n.behaviour || (n.restarting ? "restarting" : "not running")),
    el("span", { class: "pid" }, n.pid || ""));
  const node = el("div", {
    class: "node " + kind + (down ? " down" : "") + (n.pid_id_text === selectedId ? " selected" : ""),
    "data-pid": n.pid || "", "data-id": n.pid_id_text, "data-name": n.registered_name || "",
    "data-label": n.label || "", "data-child-id": n.child_id || "", "data-behaviour": n.behaviour || "",
  }, box);
  if (n.pid) box.addEventListener("click", () => select(n.pid_id_text));
  if (n.error) node.append(el("div", { class: "tree-error" }, n.error));
  if (n.children.length) {
    const list = el("div", { class: "children" });
    for (const c of n.children) list.append(renderNode(c));
    node.append(list);
  }
  return node;
}

function renderTrees(data) {
  const tree = $("#tree");
  const roots = data.roots.map((r) => {
    const root = el("div", { class: "root", "data-root": r.root });
    if (r.tree) root.append(renderNode(r.tree));
    else root.append(el("div", { class: "tree-error" }, r.root + ": " + r.error));
    return root;
  });
  tree.replaceChildren(...roots);
  if (!roots.length) tree.append(el("p", { class: "hint" }, "no supervision tree"));
}

// ---- The process table ----------------------------------------------------------------------

const SORTS = {
  pid: (a, b) => (BigInt(a.pid_id_text) < BigInt(b.pid_id_text) ? -1 : 1),
  name: (a, b) => displayName(a).localeCompare(displayName(b)),
  behaviour: (a, b) => a.behaviour.localeCompare(b.behaviour),
  status: (a, b) => a.status.localeCompare(b.status),
  // The numeric columns, largest first.
  message_queue_len: (a, b) => b.message_queue_len - a.message_queue_len,
  reductions: (a, b) => b.reductions - a.reductions,
  memory: (a, b) => b.memory - a.memory,
};

function renderProcesses() {
  const sort = SORTS[sortKey] || SORTS.message_queue_len;
  const rows = processes.slice().sort(sort).map((p) => {
    const tr = el("tr", {
      "data-pid": p.pid, "data-id": p.pid_id_text, "data-name": p.registered_name,
      "data-label": p.label, "data-behaviour": p.behaviour,
      "data-queue": p.message_queue_len, "data-reductions": p.reductions, "data-memory": p.memory,
    },
      el("td", { class: "pid" }, p.pid),
      el("td", { class: "name" }, displayName(p)),
      el("td", { class: "behaviour" }, p.behaviour),
      el("td", { class: "status" }, p.status),
      el("td", { class: "num queue" }, p.message_queue_len),
      el("td", { class: "num reductions" }, p.reductions),
      el("td", { class: "num memory" }, p.memory));
    if (p.pid_id_text === selectedId) tr.classList.add("selected");
    tr.addEventListener("click", () => select(p.pid_id_text));
    return tr;
  });
  $("#processes tbody").replaceChildren(...rows);
  $("#processes").setAttribute("data-sort", sortKey);
  for (const th of document.querySelectorAll("#processes th"))
    th.classList.toggle("sorted", th.dataset.sort === sortKey);
  $("#process-count").textContent = "(" + processes.length + ")";
}

for (const th of document.querySelectorAll("#processes th")) {
  th.addEventListener("click", () => {
    sortKey = th.dataset.sort;
    renderProcesses();
  });
}

// ---- One process ----------------------------------------------------------------------------

async function select(id) {
  selectedId = id;
  for (const n of document.querySelectorAll(".selected")) n.classList.remove("selected");
  for (const n of document.querySelectorAll('[data-id="' + id + '"]')) n.classList.add("selected");
  let p;
  try {
    p = await getJson("/api/process?id=" + id);
  } catch (e) {
    $("#details-fields").replaceChildren(el("dt", {}, "error"), el("dd", {}, "gone (" + e.message + ")"));
    $("#details-state").textContent = "";
    return;
  }
  const pids = (list) => list.map((x) => x.pid).join(" ") || "none";
  const fields = [
    ["pid", p.pid], ["registered name", p.registered_name || "none"], ["label", p.label || "none"],
    ["behaviour", p.behaviour], ["type", p.type], ["status", p.status],
    ["parent", p.parent || "none"], ["message queue", p.message_queue_len], ["reductions", p.reductions],
    ["memory", p.memory + " B"], ["links", pids(p.links)], ["monitors", pids(p.monitors)],
    ["monitored by", pids(p.monitored_by)], ["traps exits", p.trap_exit ? "yes" : "no"],
  ];
  const dl = $("#details-fields");
  dl.replaceChildren();
  for (const [k, v] of fields) dl.append(el("dt", {}, k), el("dd", { "data-field": k }, v));
  $("#details-state").textContent = p.state || "(no state)";
  $("#details").classList.remove("empty");
  $("#details").setAttribute("data-pid", p.pid);
}

// ---- The charts -----------------------------------------------------------------------------

const COLOURS = ["#1d3557", "#e76f51", "#2a9d8f", "#e9c46a", "#8e44ad", "#f4a261", "#264653", "#c0392b"];

function drawChart(canvas, series, fixedMax) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 20;
  ctx.clearRect(0, 0, w, h);
  let max = fixedMax || 0;
  if (!fixedMax) for (const s of series) for (const v of s) max = Math.max(max, v);
  if (max <= 0) max = 1;
  ctx.strokeStyle = "#e1e6eb";
  ctx.fillStyle = "#5b6b7b";
  ctx.font = "10px sans-serif";
  for (let i = 0; i <= 2; i++) {
    const y = pad / 2 + (h - pad) * (i / 2);
    ctx.beginPath(); ctx.moveTo(30, y); ctx.lineTo(w - 4, y); ctx.stroke();
    const v = max * (1 - i / 2);
    ctx.fillText(v >= 100 ? Math.round(v) : v.toFixed(v >= 10 ? 0 : 2), 2, y + 3);
  }
  series.forEach((s, k) => {
    if (s.length < 1) return;
    ctx.strokeStyle = COLOURS[k % COLOURS.length];
    ctx.lineWidth = 2;
    ctx.beginPath();
    s.forEach((v, i) => {
      // The samples so far fill the width; once HISTORY are kept the chart scrolls.
      const x = 30 + (w - 34) * (s.length === 1 ? 1 : i / (s.length - 1));
      const y = pad / 2 + (h - pad) * (1 - v / max);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  });
}

function push(list, v) {
  list.push(v);
  if (list.length > HISTORY) list.shift();
}

function addSample(m) {
  push(history.processes, m.processes);
  let rate = 0;
  let utilisation = m.workers.map((w) => w.utilisation);
  if (previous) {
    const dt = m.time - previous.time;
    if (dt > 0) rate = Math.max(0, (m.messages_sent - previous.messages_sent) / dt);
    // Busy over the last interval, not since the start.
    utilisation = m.workers.map((w, i) => {
      const p = previous.workers[i];
      const alive = w.alive_seconds - (p ? p.alive_seconds : 0);
      const parked = w.parked_seconds - (p ? p.parked_seconds : 0);
      return alive > 0 ? Math.min(1, Math.max(0, 1 - parked / alive)) : w.utilisation;
    });
  }
  push(history.messages, rate);
  utilisation.forEach((u, i) => {
    history.utilisation[i] = history.utilisation[i] || [];
    push(history.utilisation[i], u);
  });
  previous = m;
  drawChart($("#chart-processes"), [history.processes]);
  drawChart($("#chart-messages"), [history.messages]);
  drawChart($("#chart-utilisation"), history.utilisation, 1);
  $("#workers").textContent = m.workers.map((w) =>
    "worker " + w.index + ": " + w.turns + " turns, " + w.steals + " steals, run queue " + w.run_queue).join(" · ") +
    " · spawns " + m.spawns + ", exits " + m.exits + ", timers pending " + m.timers_pending;
  renderSupervisors(m);
}

function renderSupervisors(m) {
  const body = $("#supervisors tbody");
  body.replaceChildren(...(m.supervisors || []).map((s) =>
    el("tr", { "data-pid": s.pid, "data-name": s.name || "" },
       el("td", {}, s.pid + (s.name ? " " + s.name : "") + (s.top_level ? " (top)" : "")),
       el("td", {}, s.behaviour), el("td", {}, s.restarts), el("td", {}, s.intensity_trips),
       el("td", {}, s.start_failures), el("td", {}, s.children_started))));
  const t = m.supervisor_totals;
  if (t) {
    $("#supervisor-totals").textContent = "all supervisors: " + t.restarts + " restarts, " + t.intensity_trips +
      " intensity trips, " + t.start_failures + " start failures; reports " + t.reports_delivered + " delivered, " +
      t.reports_dropped + " dropped";
  }
}

// ---- The loop -------------------------------------------------------------------------------

async function refresh() {
  try {
    const [tree, list, metrics] = await Promise.all([
      getJson("/api/tree"), getJson("/api/processes"), getJson("/api/metrics")]);
    processes = list.processes;
    renderTrees(tree);
    renderProcesses();
    addSample(metrics);
    if (pendingSelect) {
      const p = processes.find((x) => x.registered_name === pendingSelect || x.label === pendingSelect ||
                                      x.pid === pendingSelect || x.pid_id_text === pendingSelect);
      pendingSelect = null;
      if (p) await select(p.pid_id_text);
    }
    $("#status").textContent = "updated " + new Date().toLocaleTimeString();
    $("#status").classList.remove("error");
  } catch (e) {
    $("#status").textContent = "error: " + e.message;
    $("#status").classList.add("error");
  }
  setTimeout(refresh, REFRESH_MS);
}

refresh();
