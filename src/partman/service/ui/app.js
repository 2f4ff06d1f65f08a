// partman's web UI: plain JS over the JSON API, inline SVG for the timelines. No build step.
// Every value from the API goes into the page as text (textContent), never as markup.
"use strict";

const REFRESH_MS = 5000;
const MAX_TENANT_ROWS = 40;
const SVG_NS = "http://www.w3.org/2000/svg";
const RETIRE_KINDS = new Set(["drop", "detach", "archive"]);
const state = { token: "", mutations: true, refreshing: false, lastError: null };

// -- helpers ----------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, String(value));
  }
}

function headers(extra) {
  const h = Object.assign({ Accept: "application/json" }, extra || {});
  if (state.token) h.Authorization = "Bearer " + state.token;
  return h;
}

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = headers(opts.headers);
  const response = await fetch(path, opts);
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.message ? body.message : response.status + " " + response.statusText;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

function parseTime(text) {
  if (!text || text === "unbounded") return null;
  const t = Date.parse(text);
  return Number.isNaN(t) ? null : t;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return d + "d " + h + "h";
  if (h > 0) return h + "h " + m + "m";
  return m + "m " + (s % 60) + "s";
}

function shortTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().replace("T", " ").slice(0, 19) + "Z";
}

function day(iso) {
  return iso ? String(iso).slice(0, 16).replace("T", " ") : "";
}

// -- status and token -------------------------------------------------------------------------

function showStatus(status) {
  const chip = document.getElementById("status");
  const sched = status.scheduler || {};
  let role = status.role;
  let text = role + " · " + status.instance;
  if (sched.consecutive_failures > 0) {
    role = "error";
    text += " · failing (" + sched.consecutive_failures + ")";
  }
  chip.dataset.role = role;
  chip.textContent = text;
  const last = status.last_pass;
  const lastPass = document.getElementById("last-pass");
  if (last && !last.error) {
    lastPass.textContent = "last pass here " + shortTime(last.started_at) + " (" + last.trigger + ")";
  } else if (last && last.error) {
    lastPass.textContent = "last pass failed: " + last.error;
  } else {
    lastPass.textContent = sched.next_pass_at ? "next pass " + shortTime(sched.next_pass_at) : "";
  }
}

function showBanner(message) {
  const banner = document.getElementById("banner");
  if (message) {
    banner.textContent = message;
    banner.hidden = false;
  } else {
    banner.hidden = true;
    banner.textContent = "";
  }
}

// -- plan -------------------------------------------------------------------------------------

function groupedPlan(plan) {
  const groups = new Map();
  for (const op of plan.operations) {
    const key = [op.table, op.tenant, op.kind].join("\u0000");
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(op);
  }
  return [...groups.values()];
}

function showPlan(plan) {
  const box = document.getElementById("plan");
  const count = document.getElementById("plan-count");
  count.textContent = "(" + plan.operations.length + " operation" +
    (plan.operations.length === 1 ? "" : "s") + ")";
  box.replaceChildren();
  if (plan.operations.length === 0) {
    box.append(el("p", { class: "empty", id: "plan-empty",
      text: "Nothing to do: every managed table is covered and nothing has expired." }));
  } else {
    const body = el("tbody");
    for (const ops of groupedPlan(plan)) {
      const first = ops[0];
      const last = ops[ops.length - 1];
      body.append(el("tr", { class: "plan-row", "data-kind": first.kind, "data-table": first.table,
        "data-tenant": first.tenant === null ? "" : first.tenant },
        el("td", { class: "kind-" + first.kind, text: first.kind }),
        el("td", { text: first.table }),
        el("td", { text: first.tenant === null ? "–" : first.tenant }),
        el("td", { class: "num", text: ops.length }),
        el("td", { text: day(first.from) }),
        el("td", { text: day(last.to) }),
        el("td", { text: first.reason })));
    }
    box.append(el("table", { id: "plan-table" },
      el("thead", {}, el("tr", {}, ["operation", "table", "tenant", "partitions", "from", "to",
        "why (first)"].map((h) => el("th", { text: h })))),
      body));
  }
  if (plan.notices.length > 0) {
    const list = el("ul", { class: "notices" });
    for (const n of plan.notices) {
      list.append(el("li", { class: "level-" + n.level, text: n.level + ": " + n.table + ": " + n.message }));
    }
    box.append(list);
  }
}

async function applyNow() {
  const button = document.getElementById("apply");
  const result = document.getElementById("apply-result");
  result.classList.remove("error");
  if (!state.token) {
    const given = window.prompt("Bearer token of this partman service:");
    if (!given) return;
    setToken(given);
  }
  button.disabled = true;
  result.textContent = "applying…";
  try {
    const report = await api("/api/apply", { method: "POST" });
    if (report.skipped_reason) {
      result.textContent = "pass skipped: " + report.skipped_reason;
    } else {
      result.textContent = "applied: created " + report.partitions_created + ", retired " +
        report.partitions_retired + ", failed " + report.operations_failed + ", skipped " +
        report.operations_skipped + " (run " + report.run_id.slice(0, 8) + ")";
    }
    result.dataset.runId = report.run_id;
  } catch (error) {
    result.textContent = "apply failed: " + error.message;
    result.classList.add("error");
  } finally {
    button.disabled = !state.mutations;
    await refresh();
  }
}

// -- timelines --------------------------------------------------------------------------------

function niceStep(span) {
  const hour = 3600e3;
  const steps = [hour, 3 * hour, 6 * hour, 12 * hour, 24 * hour, 2 * 24 * hour, 7 * 24 * hour,
    14 * 24 * hour, 30 * 24 * hour, 91 * 24 * hour, 365 * 24 * hour];
  for (const s of steps) if (span / s <= 16) return s;
  return steps[steps.length - 1];
}

function tickLabel(t, step) {
  const iso = new Date(t).toISOString();
  if (step < 24 * 3600e3) return iso.slice(5, 10) + " " + iso.slice(11, 16);
  return iso.slice(5, 10);
}

function timeline(table, partitions, coverage, plan, defaults, now) {
  const mine = partitions.filter((p) => p.table === table.table);
  const defaultParts = mine.filter((p) => p.is_default);
  const regular = mine.filter((p) => !p.is_default);
  const ops = plan.operations.filter((o) => o.table === table.table);
  const retiring = new Map(ops.filter((o) => RETIRE_KINDS.has(o.kind)).map((o) => [o.partition, o]));
  const creating = ops.filter((o) => o.kind === "create");

  // rows: registered tenants (with coverage) first, then any other tenant seen in the catalog
  const rows = [];
  const seen = new Set();
  for (const c of coverage.filter((c) => c.table === table.table)) {
    const key = c.tenant === null ? "" : c.tenant;
    if (!seen.has(key)) { seen.add(key); rows.push({ tenant: c.tenant, coverage: c }); }
  }
  for (const p of regular) {
    const key = p.tenant === null ? "" : p.tenant;
    if (!seen.has(key)) { seen.add(key); rows.push({ tenant: p.tenant, coverage: null }); }
  }
  const hidden = Math.max(0, rows.length - MAX_TENANT_ROWS);
  const shownRows = rows.slice(0, MAX_TENANT_ROWS);

  // the time range: everything shown, and at least a little around now
  let lo = now - 3 * 86400e3;
  let hi = now + 2 * 86400e3;
  for (const item of [...regular, ...creating]) {
    const a = parseTime(item.from);
    const b = parseTime(item.to);
    if (a !== null) lo = Math.min(lo, a);
    if (b !== null) hi = Math.max(hi, b);
  }
  const labelW = 200;
  const width = Math.max(720, Math.min(1300, (document.body.clientWidth || 1200) - 90));
  const plotW = width - labelW - 10;
  const rowH = 18;
  const top = 22;
  const defaultRowCount = defaultParts.length > 0 ? 1 : 0;
  const height = top + (shownRows.length + defaultRowCount) * rowH + 8;
  const x = (t) => labelW + ((t - lo) / (hi - lo)) * plotW;
  const clamp = (t, fallback) => (t === null ? fallback : Math.min(hi, Math.max(lo, t)));

  const root = svg("svg", { width: width, height: height, role: "img",
    "aria-label": "partitions of " + table.table + " per tenant over time",
    "data-table": table.table });
  const axis = svg("g", { class: "axis" });
  const step = niceStep(hi - lo);
  for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) {
    axis.append(svg("line", { class: "grid", x1: x(t), x2: x(t), y1: top - 4, y2: height - 4 }));
    axis.append(svg("text", { x: x(t) + 2, y: 12, text: tickLabel(t, step) }));
  }
  root.append(axis);

  shownRows.forEach((row, i) => {
    const y = top + i * rowH;
    const label = row.tenant === null ? "(all rows)" : row.tenant;
    const g = svg("g", { class: "tenant-row", "data-tenant": row.tenant === null ? "" : row.tenant });
    let runwayText = "";
    let low = false;
    if (row.coverage) {
      runwayText = " · runway " + duration(row.coverage.runway_seconds);
      low = row.coverage.runway_seconds <= 0;
    } else if (row.tenant !== null) {
      runwayText = " · not registered";
    }
    g.append(svg("text", { x: 4, y: y + 12, class: low ? "runway-low" : "" },
      svg("title", { text: label + runwayText }),
      (label.length > 18 ? label.slice(0, 17) + "…" : label) + runwayText));
    for (const p of regular.filter((p) => p.tenant === row.tenant)) {
      const a = clamp(parseTime(p.from), lo);
      const b = clamp(parseTime(p.to), hi);
      let cls = "ahead";
      if (retiring.has(p.partition)) cls = "drop";
      else if (p.owner === "foreign") cls = "foreign";
      else if (b <= now) cls = "past";
      else if (a <= now) cls = "current";
      const rows = p.estimated_rows === null || p.estimated_rows < 0 ? "?" : p.estimated_rows;
      let tip = p.partition + "\n" + p.from + " → " + p.to + "\nrows ≈ " + rows + " · " + p.owner;
      if (cls === "drop") tip += "\nretention: " + retiring.get(p.partition).kind + " next pass";
      g.append(svg("rect", { class: "part " + cls, x: x(a), y: y + 2,
        width: Math.max(1, x(b) - x(a)), height: rowH - 5,
        "data-partition": p.partition, "data-state": cls }, svg("title", { text: tip })));
    }
    for (const op of creating.filter((o) => o.tenant === row.tenant)) {
      const a = clamp(parseTime(op.from), lo);
      const b = clamp(parseTime(op.to), hi);
      g.append(svg("rect", { class: "part planned", x: x(a), y: y + 3,
        width: Math.max(1, x(b) - x(a)), height: rowH - 7, "data-partition": op.partition,
        "data-state": "planned" }, svg("title", { text: op.partition + " (to be created)\n" + op.reason })));
    }
    root.append(g);
  });

  if (defaultParts.length > 0) {
    const y = top + shownRows.length * rowH;
    const d = defaultParts[0];
    const rows = defaults[table.table] !== undefined ? defaults[table.table] : d.estimated_rows;
    const has = rows !== null && rows > 0;
    const g = svg("g", { class: "default-row", "data-default-rows": rows === null ? "" : rows });
    g.append(svg("text", { x: 4, y: y + 12, class: has ? "runway-low" : "" },
      "DEFAULT · " + (rows === null ? "?" : rows) + " row" + (rows === 1 ? "" : "s")));
    g.append(svg("rect", { class: "default-bar" + (has ? " has-rows" : ""), x: labelW, y: y + 2,
      width: plotW, height: rowH - 5, "data-partition": d.partition },
      svg("title", { text: d.partition + ": " + (rows === null ? "?" : rows) +
        " row(s) outside every partition's range; they move into their partitions as those are created" })));
    root.append(g);
  }

  const nx = x(now);
  root.append(svg("line", { class: "now", x1: nx, x2: nx, y1: top - 6, y2: height - 4 }));
  root.append(svg("text", { class: "now", x: nx + 3, y: top - 1, text: "now" }));

  const wrap = el("div", { class: "timeline" }, root);
  if (hidden > 0) wrap.append(el("p", { class: "muted", text: "… and " + hidden + " more tenants (GET /api/tables/" + table.table + "/tenants)" }));
  return wrap;
}

function addTenantForm(table) {
  const input = el("input", { type: "text", placeholder: "tenant id", "aria-label": "tenant id" });
  const retention = el("input", { type: "text", placeholder: "retention (inherit)", size: 16,
    "aria-label": "retention" });
  const button = el("button", { type: "button", class: "secondary", text: "Add tenant" });
  const result = el("span", { class: "result", role: "status" });
  button.addEventListener("click", async () => {
    result.classList.remove("error");
    if (!state.token) {
      const given = window.prompt("Bearer token of this partman service:");
      if (!given) return;
      setToken(given);
    }
    const body = { tenant_id: input.value };
    if (retention.value.trim()) body.retention_period = retention.value.trim();
    button.disabled = true;
    try {
      const t = await api("/api/tables/" + encodeURIComponent(table.table) + "/tenants", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      result.textContent = "added " + t.tenant_id + "; its partitions come with the next pass";
      input.value = "";
      retention.value = "";
    } catch (error) {
      result.textContent = error.message;
      result.classList.add("error");
    } finally {
      button.disabled = !state.mutations;
      await refresh();
    }
  });
  return el("div", { class: "add-tenant" }, input, retention, button, result);
}

function showTables(tables, parts, plan) {
  const box = document.getElementById("tables");
  const now = parseTime(parts.now) || Date.now();
  const open = new Map([...box.querySelectorAll(".add-tenant")].map((f) => [f.closest(".table-card").dataset.table, f]));
  // The add-tenant forms are kept across refreshes, but moving a node into its new card blurs
  // it: someone typing a tenant id when the refresh lands would type into nothing. Give the
  // focus (and the caret) back in the same task, before any keystroke can arrive.
  const active = document.activeElement;
  const typing = active instanceof HTMLInputElement && box.contains(active)
    ? { node: active, start: active.selectionStart, end: active.selectionEnd } : null;
  box.replaceChildren();
  if (tables.length === 0) {
    box.append(el("p", { class: "empty", text: "No managed tables yet." }));
    return;
  }
  for (const t of tables) {
    const card = el("div", { class: "table-card", "data-table": t.table });
    card.append(el("h3", { text: t.table }));
    const bits = [
      "every " + t.partition_interval,
      "keeps " + t.retention_period + " (" + t.retention_action + ")",
      t.partition_count + " ahead",
      t.tenants + " tenant" + (t.tenants === 1 ? "" : "s"),
      t.partitions + " partitions",
      "shortest runway " + duration(t.min_runway_seconds),
    ];
    if (t.default_partition) bits.push("default partition: " + (t.default_rows === null ? "?" : t.default_rows) + " rows");
    card.append(el("div", { class: "policy", text: bits.join(" · ") }));
    card.append(timeline(t, parts.partitions, parts.coverage, plan, parts.default_rows, now));
    if (t.tenant_column !== null) card.append(open.get(t.table) || addTenantForm(t));
    box.append(card);
  }
  if (typing && typing.node.isConnected && document.activeElement !== typing.node) {
    typing.node.focus();
    typing.node.setSelectionRange(typing.start, typing.end);
  }
}

// -- runs and errors --------------------------------------------------------------------------

function showRuns(runs) {
  const body = document.querySelector("#runs tbody");
  body.replaceChildren();
  if (runs.length === 0) {
    body.append(el("tr", {}, el("td", { colspan: 9, class: "empty", text: "No runs yet." })));
    return;
  }
  for (const r of runs) {
    const s = r.summary || {};
    body.append(el("tr", { class: "run outcome-" + r.outcome, "data-run-id": r.run_id },
      el("td", { text: shortTime(r.started_at) }),
      el("td", { class: "num", text: r.duration_ms === null ? "–" : (r.duration_ms / 1000).toFixed(2) + "s" }),
      el("td", { text: r.outcome }),
      el("td", { class: "num", text: s.partitions_created ?? "" }),
      el("td", { class: "num", text: s.partitions_retired ?? "" }),
      el("td", { class: "num", text: s.operations_failed ?? "" }),
      el("td", { class: "num", text: s.operations_skipped ?? "" }),
      el("td", { class: "num", text: s.default_rows ?? "" }),
      el("td", { text: r.manager })));
  }
}

function showErrors(status, failed, skipped, plan) {
  const list = document.getElementById("errors");
  list.replaceChildren();
  const items = [];
  const sched = status.scheduler || {};
  if (sched.last_error) {
    items.push({ level: "error", at: sched.last_error.at,
      text: "scheduler (" + sched.last_error.kind + "): " + sched.last_error.message });
  }
  if (status.prepare_error) {
    items.push({ level: "error", at: status.prepare_error.at, text: "config: " + status.prepare_error.message });
  }
  for (const n of plan.notices) {
    if (n.level === "error" || n.level === "warning") items.push({ level: n.level, at: null, text: n.table + ": " + n.message });
  }
  const audit = [...failed.entries, ...skipped.entries].sort((a, b) => b.id - a.id).slice(0, 25);
  for (const e of audit) {
    items.push({ level: e.outcome, at: e.at,
      text: e.outcome + " " + e.operation + " " + (e.partition_name || e.table || "") + ": " + (e.error || e.reason || "") });
  }
  if (items.length === 0) {
    list.append(el("li", { class: "empty", text: "No errors." }));
    return;
  }
  for (const item of items) {
    list.append(el("li", { class: "level-" + item.level },
      el("span", { class: "when", text: item.at ? shortTime(item.at) : "now" }), item.text));
  }
}

// -- the loop ---------------------------------------------------------------------------------

async function refresh() {
  if (state.refreshing) return;
  state.refreshing = true;
  try {
    const [status, tables, parts, plan, runs, failed, skipped] = await Promise.all([
      api("/api/status"),
      api("/api/tables"),
      api("/api/partitions"),
      api("/api/plan"),
      api("/api/runs?limit=15"),
      api("/api/audit?outcome=failed&limit=15"),
      api("/api/audit?outcome=skipped&limit=15"),
    ]);
    showStatus(status);
    showPlan(plan);
    showTables(tables, parts, plan);
    showRuns(runs);
    showErrors(status, failed, skipped, plan);
    showBanner(null);
    document.body.dataset.loaded = "true";
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      showBanner("This service needs its token to show anything: enter it above. (" + error.message + ")");
    } else {
      showBanner("Cannot load: " + error.message);
    }
    const chip = document.getElementById("status");
    chip.dataset.role = "error";
    chip.textContent = "unavailable";
  } finally {
    state.refreshing = false;
  }
}

function setToken(token) {
  state.token = token;
  document.getElementById("token").value = token;
  try { sessionStorage.setItem("partman-token", token); } catch (e) { /* private mode */ }
}

async function init() {
  const input = document.getElementById("token");
  input.addEventListener("change", () => { setToken(input.value.trim()); refresh(); });
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    refresh();
  });
  document.getElementById("apply").addEventListener("click", applyNow);
  let stored = "";
  try { stored = sessionStorage.getItem("partman-token") || ""; } catch (e) { stored = ""; }
  try {
    const config = await api("/api/ui-config");
    state.mutations = config.mutations_enabled;
    if (config.token) stored = config.token;
    if (!config.mutations_enabled) {
      document.getElementById("apply").disabled = true;
      document.getElementById("apply").title = "this service is read-only (no token configured)";
    }
  } catch (e) { /* shown by refresh() */ }
  if (stored) setToken(stored);
  await refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}

init();
