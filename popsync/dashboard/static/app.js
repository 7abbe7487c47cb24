// popsync dashboard: polls /api/state every second and redraws the figures in place (no page reload).
// Plain JS, no libraries, nothing fetched from elsewhere: the page works on a closed network.
"use strict";

const POLL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";

// The outcome vocabulary of DOMAIN.md, in report order, with the page's colours.
const OUTCOME_COLOURS = {
  "cleaned": "#2e7d32",
  "corrected": "#81c784",
  "unsynced/mismatch": "#f9a825",
  "unsynced/not_found": "#ef6c00",
  "unsynced/malformed_id": "#c62828",
  "unsynced/missing_fields": "#8e24aa",
  "unsynced/deceased": "#546e7a",
  "unsynced/moved": "#1e88e5",
  "unsynced/duplicate": "#d81b60",
  "unsynced/ineligible": "#6d4c41",
};

const RUN_STATUS = {
  waiting: ["Đang chờ dữ liệu", "waiting for results"],
  running: ["Đang xử lý", "running"],
  idle: ["Không có bản ghi mới", "idle: nothing decided in 10 s"],
  done: ["Hoàn tất", "done: every record has an outcome, every linked procedure has ended"],
  offline: ["Mất kết nối", "disconnected: retrying"],
};

const CONSUMER_STATUS = {
  OK: "Bình thường",
  WARN: "Cảnh báo",
  STALL: "Ngưng trệ",
  STOP: "Dừng",
  REWIND: "Tua lại",
};

// Vietnamese number style: "." groups thousands, "," is the decimal mark.
function vnInt(n) {
  if (n === null || n === undefined) return "—";
  const sign = n < 0 ? "-" : "";
  return sign + String(Math.round(Math.abs(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ".");
}

function vnNumber(n, decimals) {
  if (n === null || n === undefined) return "—";
  const [whole, frac] = Math.abs(n).toFixed(decimals).split(".");
  return (n < 0 ? "-" : "") + vnInt(Number(whole)) + (frac ? "," + frac : "");
}

function vnMs(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms >= 1000 ? vnNumber(ms / 1000, ms >= 100000 ? 0 : 1) + " s" : vnInt(ms) + " ms";
}

// One unit for a whole axis: seconds once the top of the scale passes 2 s.
function msAxis(v, top) {
  if (top < 2000) return vnInt(v) + " ms";
  return vnNumber(v / 1000, Number.isInteger(top / 4000) ? 0 : 1) + " s";
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function setText(root, testid, text, value) {
  const node = root.querySelector(`[data-testid="${testid}"]`);
  if (!node) return;
  if (node.textContent !== text) node.textContent = text;
  if (value !== undefined) node.dataset.value = value === null ? "" : String(value);
}

// ---- sources -------------------------------------------------------------------------------

function figure(testid, vi, en, cls) {
  return el("div", { class: "fig " + (cls || "") },
    el("dt", {}, vi, el("small", { text: en })),
    el("dd", { "data-testid": testid, text: "0" }));
}

function sourceCard(src) {
  const legend = el("table", { class: "legend", "data-testid": "outcomes" });
  const body = el("tbody");
  for (const o of src.outcomes) {
    body.append(el("tr", { "data-testid": "outcome", "data-outcome": o.outcome },
      el("td", {}, el("i", { class: "sw", style: `background:${OUTCOME_COLOURS[o.outcome] || "#999"}` })),
      el("td", { class: "vi", text: o.label }),
      el("td", { class: "code", text: o.outcome }),
      el("td", { class: "n", "data-testid": "outcome-count", text: o.count_text }),
      el("td", { class: "n share", "data-testid": "outcome-share", text: o.share_text })));
  }
  legend.append(body);
  return el("article", { class: "source", "data-testid": `source-${src.id}`, "data-source": src.id },
    el("header", {},
      el("h2", {}, src.sector_label + " ", el("span", { class: "prov", text: `(${src.province})` })),
      el("span", { class: "en", text: `${src.sector} · tỉnh/province ${src.province}` }),
      el("span", { class: "badge", "data-testid": "source-status" })),
    el("p", { class: "line", "data-testid": "report-line", title: "dòng báo cáo · report line" }),
    el("div", { class: "headline" },
      el("span", { class: "pct", "data-testid": "percent" }),
      el("span", { class: "ratio" }, el("b", { "data-testid": "ratio" }),
        el("small", { text: " bản ghi đã làm sạch · cleaned/synced of all records" }))),
    el("div", { class: "progress", "data-testid": "progress", title: "đồng bộ · chưa đồng bộ · đang chờ" },
      el("div", { class: "seg synced" }), el("div", { class: "seg unsynced" })),
    el("p", { class: "open-note", "data-testid": "open-note", hidden: "" },
      "Tổng số không biết trước: bản ghi do thủ tục liên thông tạo ra (thẻ BHYT trẻ em dưới 6 tuổi) ",
      el("small", { text: "total not known in advance: records made by linked procedures (children's health-insurance cards)" })),
    el("dl", { class: "figures" },
      figure("published", "Tổng số", "published", ""),
      figure("reconciled", "Đã đối soát", "reconciled", ""),
      figure("synced", "Đã đồng bộ", "synced", "good"),
      figure("unsynced", "Chưa đồng bộ", "unsynced", "warn"),
      figure("pending", "Đang chờ", "pending", "muted"),
      figure("made", "Do liên thông tạo", "made by linked procedures", "muted")),
    el("h3", {}, "Kết quả theo loại ", el("small", { text: "outcome breakdown" })),
    el("div", { class: "stack", "data-testid": "outcome-bar" }),
    el("div", { class: "stack-label" },
      "Chưa đồng bộ theo nguyên nhân ", el("small", { text: "unsynced by cause" })),
    el("div", { class: "stack thin", "data-testid": "unsynced-bar" }),
    legend);
}

function drawStack(bar, outcomes, filter) {
  const parts = outcomes.filter((o) => o.count > 0 && filter(o.outcome));
  const whole = parts.reduce((a, o) => a + o.count, 0);
  const key = parts.map((o) => o.outcome + ":" + o.count).join(",");
  if (bar.dataset.key === key) return;
  bar.dataset.key = key;
  bar.replaceChildren(...parts.map((o) => el("span", {
    class: "part",
    style: `flex-grow:${o.count};background:${OUTCOME_COLOURS[o.outcome] || "#999"}`,
    title: `${o.label} (${o.outcome}): ${o.count_text}`,
  })));
  if (!whole) bar.append(el("span", { class: "none", text: "—" }));
}

function updateSource(card, src) {
  const t = src.texts;
  setText(card, "report-line", t.report_line);
  setText(card, "percent", t.percent);
  setText(card, "ratio", t.ratio, src.synced);
  setText(card, "published", t.published, src.published);
  setText(card, "reconciled", t.reconciled, src.reconciled);
  setText(card, "synced", t.synced, src.synced);
  setText(card, "unsynced", t.unsynced, src.unsynced);
  setText(card, "pending", t.pending, src.pending);
  setText(card, "made", t.made, src.made);
  card.querySelector('[data-testid="made"]').parentElement.hidden = !src.made;
  for (const id of ["published", "pending"]) {  // nothing to say for a total nobody published
    card.querySelector(`[data-testid="${id}"]`).parentElement.hidden = src.open;
  }
  const badge = card.querySelector('[data-testid="source-status"]');
  const state = src.done ? "done" : src.open ? "open" : src.reconciled ? "running" : "waiting";
  badge.dataset.status = state;
  badge.textContent = src.done ? "Hoàn tất · done"
    : src.open ? "Theo liên thông · made by linked procedures" : `Đã đối soát ${t.progress_percent}`;
  // A total nobody knows in advance has no progress to show: the counts only, no bar.
  card.dataset.open = String(src.open);
  card.querySelector('[data-testid="progress"]').hidden = src.open;
  card.querySelector('[data-testid="open-note"]').hidden = !src.open;
  card.querySelector(".seg.synced").style.width = (100 * src.shares.synced).toFixed(3) + "%";
  card.querySelector(".seg.unsynced").style.width = (100 * src.shares.unsynced).toFixed(3) + "%";
  drawStack(card.querySelector('[data-testid="outcome-bar"]'), src.outcomes, () => true);
  drawStack(card.querySelector('[data-testid="unsynced-bar"]'), src.outcomes, (o) => o.startsWith("unsynced/"));
  for (const o of src.outcomes) {
    const row = card.querySelector(`tr[data-outcome="${o.outcome}"]`);
    if (!row) continue;
    row.classList.toggle("zero", o.count === 0);
    setText(row, "outcome-count", o.count_text, o.count);
    setText(row, "outcome-share", o.share_text);
  }
}

function renderSources(sources) {
  const box = document.querySelector('[data-testid="sources"]');
  box.querySelector('[data-testid="sources-empty"]').hidden = sources.length > 0;
  for (const src of sources) {
    let card = box.querySelector(`[data-source="${src.id}"]`);
    if (!card) {
      card = sourceCard(src);
      box.append(card);
    }
    updateSource(card, src);
  }
}

// The card `selector` finds (made by `make` the first time) as the `index`th child of `box`: the state's
// order, which a card arriving late (a death chain before the first birth chain) must not change.
function placed(box, index, selector, make) {
  const card = box.querySelector(selector) || make();
  if (box.children[index] !== card) box.insertBefore(card, box.children[index] || null);
  return card;
}

// ---- linked procedures ---------------------------------------------------------------------------

const CHAIN_KIND = { birth: "khai sinh · birth", death: "khai tử · death" };

function chainCard(chain) {
  return el("article", { class: "chain", "data-testid": `chain-${chain.id}`, "data-chain": chain.id, "data-kind": chain.kind },
    el("header", {},
      el("h3", {}, `“${chain.name}” `, el("span", { class: "prov", text: `(${chain.province})` })),
      el("span", { class: "en", text: `${CHAIN_KIND[chain.kind] || chain.kind} chain · tỉnh/province ${chain.province}` }),
      el("span", { class: "badge", "data-testid": "chain-percent" })),
    el("p", { class: "line", "data-testid": "chain-report-line", title: "dòng báo cáo · report line" }),
    el("div", { class: "progress", "data-testid": "chain-progress", title: "hoàn thành · dừng giữa chừng · đang xử lý" },
      el("div", { class: "seg completed" }), el("div", { class: "seg stalled" }), el("div", { class: "seg in-progress" })),
    el("dl", { class: "figures" },
      figure("chain-started", "Tiếp nhận", "started", ""),
      figure("chain-completed", "Hoàn thành", "completed", "good"),
      figure("chain-stalled", "Dừng giữa chừng", "stalled", "bad"),
      figure("chain-in-progress", "Đang xử lý", "in progress", "muted"),
      el("div", { class: "fig" },
        el("dt", {}, "Thời gian trung vị", el("small", { text: "median chain time" })),
        el("dd", { "data-testid": "chain-median", text: "—" }),
        el("small", { class: "times", "data-testid": "chain-times" }))));
}

function updateChain(card, chain) {
  const t = chain.texts;
  setText(card, "chain-report-line", t.report_line);
  setText(card, "chain-started", t.started, chain.started);
  setText(card, "chain-completed", t.completed, chain.completed);
  setText(card, "chain-stalled", t.stalled, chain.stalled);
  setText(card, "chain-in-progress", t.in_progress, chain.in_progress);
  setText(card, "chain-median", t.median, chain.completed ? chain.duration_s.p50 : null);
  setText(card, "chain-times", chain.completed ? `p95 ${t.p95} · tối đa/max ${t.max}` : "");
  setText(card, "chain-percent", `Hoàn thành ${t.ratio} · ${t.percent}`);
  card.querySelector(".seg.completed").style.width = (100 * chain.shares.completed).toFixed(3) + "%";
  card.querySelector(".seg.stalled").style.width = (100 * chain.shares.stalled).toFixed(3) + "%";
  card.querySelector(".seg.in-progress").style.width = (100 * chain.shares.in_progress).toFixed(3) + "%";
}

function renderChains(chains, run) {
  const panel = document.querySelector('[data-testid="chains-panel"]');
  panel.hidden = chains.length === 0 && !run.not_begun;
  const box = panel.querySelector('[data-testid="chains"]');
  chains.forEach((chain, i) => {
    const card = placed(box, i, `[data-chain="${chain.id}"]`, () => chainCard(chain));
    updateChain(card, chain);
  });
  const note = panel.querySelector('[data-testid="chains-not-begun"]');
  note.hidden = !run.not_begun;
  note.dataset.value = String(run.not_begun);
  note.replaceChildren(`Chờ bắt đầu: ${vnInt(run.not_begun)} hồ sơ đã đăng ký, chưa vào liên thông `,
    el("small", { text: "registered births and deaths whose chain has not started yet" }));
}

// ---- cleansing loop --------------------------------------------------------------------------------

function loopCard(loop) {
  return el("article", { class: "loop", "data-testid": `cleansing-${loop.id}`, "data-cleansing": loop.id },
    el("header", {},
      el("h3", {}, loop.sector_label + " ", el("span", { class: "prov", text: `(${loop.province})` })),
      el("span", { class: "en", text: `${loop.sector} · tỉnh/province ${loop.province}` }),
      el("span", { class: "badge", "data-testid": "cleansing-percent" })),
    el("p", { class: "line", "data-testid": "cleansing-report-line", title: "dòng báo cáo · report line" }),
    el("div", { class: "progress", "data-testid": "cleansing-progress", title: "đã sửa, đồng bộ · gửi lại, vẫn chưa đồng bộ · chưa sửa" },
      el("div", { class: "seg fixed" }), el("div", { class: "seg resent" })),
    el("dl", { class: "figures" },
      figure("cleansing-tasks", "Chưa đồng bộ lần đầu", "tasks: unsynced first outcomes", "warn"),
      figure("cleansing-republished", "Đã sửa, gửi lại", "re-published", ""),
      figure("cleansing-fixed", "Đã đồng bộ sau khi sửa", "fixed: unsynced → synced", "good")),
    el("table", { class: "legend kinds", "data-testid": "cleansing-kinds" }, el("tbody")));
}

function updateLoop(card, loop) {
  const t = loop.texts;
  setText(card, "cleansing-report-line", t.report_line);
  setText(card, "cleansing-tasks", t.tasks, loop.tasks);
  setText(card, "cleansing-republished", t.republished, loop.republished);
  setText(card, "cleansing-fixed", t.fixed, loop.fixed);
  setText(card, "cleansing-percent", `Đã sửa ${t.ratio} · ${t.percent}`);
  const resent = Math.max(0, loop.shares.republished - loop.shares.fixed);
  card.querySelector(".seg.fixed").style.width = (100 * loop.shares.fixed).toFixed(3) + "%";
  card.querySelector(".seg.resent").style.width = (100 * resent).toFixed(3) + "%";
  const key = loop.kinds.map((k) => `${k.outcome}:${k.fixed}/${k.tasks}`).join(",");
  const body = card.querySelector('[data-testid="cleansing-kinds"] tbody');
  if (body.dataset.key === key) return;
  body.dataset.key = key;
  body.replaceChildren(...loop.kinds.map((k) => el("tr", { "data-testid": "cleansing-kind", "data-outcome": k.outcome },
    el("td", {}, el("i", { class: "sw", style: `background:${OUTCOME_COLOURS[k.outcome] || "#999"}` })),
    el("td", { class: "vi", text: k.label }),
    el("td", { class: "code", text: k.outcome }),
    el("td", { class: "n", "data-testid": "kind-fixed", "data-value": String(k.fixed), text: `${k.fixed_text}/${k.tasks_text}` }),
    el("td", { class: "n share", text: k.percent }))));
}

function renderCleansing(loops) {
  const panel = document.querySelector('[data-testid="cleansing-panel"]');
  panel.hidden = loops.length === 0;
  const box = panel.querySelector('[data-testid="cleansing"]');
  loops.forEach((loop, i) => {
    const card = placed(box, i, `[data-cleansing="${loop.id}"]`, () => loopCard(loop));
    updateLoop(card, loop);
  });
}

// ---- run totals ------------------------------------------------------------------------------

function renderRun(state) {
  const run = state.run, t = run.texts, doc = document;
  setText(doc, "run-reconciled", t.reconciled, run.reconciled);
  setText(doc, "run-published", t.published, run.published);
  setText(doc, "run-synced", t.synced, run.synced);
  setText(doc, "run-percent", t.percent);
  setText(doc, "run-unsynced", t.unsynced, run.unsynced);
  setText(doc, "run-pending", t.pending, run.pending);
  setText(doc, "run-rejected", t.rejected, run.rejected);
  setText(doc, "run-rate", t.records_per_s, run.records_per_s);
  setText(doc, "run-avg-rate", t.avg_records_per_s, run.avg_records_per_s);
  const lag = run.lag_p50_ms === null ? "—" : `${vnMs(run.lag_p50_ms)} · ${vnMs(run.lag_p95_ms)}`;
  setText(doc, "run-lag", lag);
  setText(doc, "elapsed", clock(state.elapsed_s));
  setText(doc, "updated", new Date(state.generated_at_ms).toLocaleTimeString("vi-VN"));
  setStatus(state.status);
  const alert = doc.querySelector('[data-testid="alert"]');
  const problem = state.collector_error || state.consumers.error;
  alert.hidden = !problem;
  alert.textContent = problem ? "Lỗi đọc dữ liệu · read error: " + problem : "";
}

function setStatus(status) {
  const node = document.querySelector('[data-testid="run-status"]');
  const [vi, en] = RUN_STATUS[status] || [status, ""];
  node.dataset.status = status;
  node.replaceChildren(vi, el("small", { text: en }));
}

// ---- charts ------------------------------------------------------------------------------------

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// The top of a scale of 4 round steps (1, 2, 2,5, 5 or 7,5 times a power of ten) that holds v.
function niceMax(v) {
  if (!(v > 4)) return 4;  // whole records and milliseconds: no fractional ticks
  const raw = v / 4, p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 7.5, 10].map((m) => m * p).find((s) => s >= raw);
  return 4 * step;
}

// series: [{colour, points: [[t, value|null], ...], area}]; gaps where value is null.
function drawChart(node, series, format, span) {
  const w = Math.max(node.clientWidth, 200), h = Math.max(node.clientHeight, 120);
  const pad = { l: 64, r: 12, t: 10, b: 24 };
  node.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const all = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v !== null);
  const ts = series.flatMap((s) => s.points.map((p) => p[0]));
  const tMax = ts.length ? Math.max(...ts) : span;
  const tMin = Math.max(0, tMax - span);
  const yMax = niceMax(all.length ? Math.max(...all) : 0);
  const x = (t) => pad.l + ((t - tMin) / Math.max(tMax - tMin, 1)) * (w - pad.l - pad.r);
  const y = (v) => h - pad.b - (v / yMax) * (h - pad.t - pad.b);
  const kids = [];
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    kids.push(svg("line", { x1: pad.l, x2: w - pad.r, y1: y(v), y2: y(v), class: i ? "grid" : "axis" }));
    const label = svg("text", { x: pad.l - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" });
    label.textContent = format(v, yMax);
    kids.push(label);
  }
  for (let i = 0; i <= 4; i++) {
    const t = tMin + ((tMax - tMin) * i) / 4;
    const label = svg("text", { x: x(t), y: h - 6, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle", class: "tick" });
    label.textContent = clock(t);
    kids.push(label);
  }
  for (const s of series) {
    let path = "", area = "", start = null, last = null;
    for (const [t, v] of s.points) {
      if (t < tMin) continue;
      if (v === null) {
        if (start !== null && s.area) area += `L${x(last)},${y(0)}L${x(start)},${y(0)}Z`;
        start = last = null;
        continue;
      }
      const cmd = last === null ? "M" : "L";
      path += `${cmd}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      area += `${cmd}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      if (start === null) start = t;
      last = t;
    }
    if (start !== null && s.area) area += `L${x(last)},${y(0)}L${x(start)},${y(0)}Z`;
    if (s.area && area) kids.push(svg("path", { d: area, fill: s.colour, "fill-opacity": "0.15", stroke: "none" }));
    if (path) kids.push(svg("path", { d: path, fill: "none", stroke: s.colour, "stroke-width": "2", "stroke-linejoin": "round" }));
  }
  if (!all.length) {
    const none = svg("text", { x: w / 2, y: h / 2, "text-anchor": "middle", class: "nodata" });
    none.textContent = "Chưa có số liệu · no data yet";
    kids.push(none);
  }
  node.replaceChildren(...kids);
}

function renderCharts(state) {
  const hist = state.history;
  const span = Math.max(60, Math.min(state.history_s, hist.length ? hist[hist.length - 1].t : 0));
  drawChart(document.querySelector('[data-testid="chart-throughput"]'),
    [{ colour: "#2e7d32", area: true, points: hist.map((s) => [s.t, s.records_per_s]) }],
    (v) => vnInt(v), span);
  drawChart(document.querySelector('[data-testid="chart-lag"]'), [
    { colour: "#1565c0", points: hist.map((s) => [s.t, s.lag_p50_ms]) },
    { colour: "#e65100", points: hist.map((s) => [s.t, s.lag_p95_ms]) },
  ], msAxis, span);
}

// ---- consumers ------------------------------------------------------------------------------

function renderConsumers(c) {
  const table = document.querySelector('[data-testid="consumers"]');
  const empty = document.querySelector('[data-testid="consumers-empty"]');
  const counts = document.querySelector('[data-testid="consumer-counts"]');
  table.hidden = !c.partitions.length;
  empty.hidden = c.partitions.length > 0;
  if (!c.available) empty.replaceChildren("Không có giám sát consumer ", el("small", { text: "no lag monitor attached" }));
  else if (!c.partitions.length) empty.replaceChildren("Chưa có nhóm consumer nào ", el("small", { text: "no consumer group yet" }));
  counts.replaceChildren(...Object.entries(c.counts).filter(([, n]) => n > 0).map(([s, n]) =>
    el("span", { class: "pill", "data-status": s, text: `${CONSUMER_STATUS[s] || s} · ${s}: ${n}` })));
  table.tBodies[0].replaceChildren(...c.partitions.map((p) => el("tr", { "data-status": p.status },
    el("td", { text: p.group ?? "" }),
    el("td", { text: p.topic ?? "" }),
    el("td", { class: "n", text: String(p.partition ?? "") }),
    el("td", { class: "n", text: vnInt(p.committed) }),
    el("td", { class: "n", text: vnInt(p.end) }),
    el("td", { class: "n", text: vnInt(p.lag) }),
    el("td", { class: "n", text: p.records === null || p.records === undefined ? "—" : vnInt(p.records) }),
    el("td", { class: "n", text: p.seconds_behind === null || p.seconds_behind === undefined ? "—" : vnNumber(p.seconds_behind, 1) + " s" }),
    el("td", {}, el("span", { class: "pill", "data-status": p.status, text: `${CONSUMER_STATUS[p.status] || p.status} · ${p.status}` })))));
}

// ---- polling ---------------------------------------------------------------------------------

async function poll() {
  try {
    const response = await fetch("/api/state", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const state = await response.json();
    renderRun(state);
    renderSources(state.sources);
    renderChains(state.chains, state.chains_run);
    renderCleansing(state.cleansing);
    renderCharts(state);
    renderConsumers(state.consumers);
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  } catch (err) {
    setStatus("offline");
    console.warn("popsync dashboard: poll failed", err);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
