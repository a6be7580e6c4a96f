/* fednet dashboard: shared helpers (formatting, DOM, live socket, charts). */
"use strict";

window.FN = (function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  let clockOffset = 0; // server time minus browser time, in seconds

  function now() { return Date.now() / 1000 + clockOffset; }
  function syncClock(serverNow) { if (typeof serverNow === "number") clockOffset = serverNow - Date.now() / 1000; }

  /* -- formatting ---------------------------------------------------------- */
  const fmt = {
    pct(v, digits = 1) { return v == null ? "–" : (v * 100).toFixed(digits) + "%"; },
    num(v, digits = 4) { return v == null ? "–" : Number(v).toFixed(digits); },
    int(v) { return v == null ? "–" : Number(v).toLocaleString("en-US"); },
    duration(s) {
      if (s == null || !isFinite(s)) return "–";
      s = Math.max(0, s);
      if (s < 1) return Math.round(s * 1000) + " ms";
      if (s < 10) return s.toFixed(1) + " s";
      if (s < 60) return Math.round(s) + " s";
      const m = Math.floor(s / 60), sec = Math.round(s % 60);
      if (m < 60) return m + " min " + String(sec).padStart(2, "0") + " s";
      const h = Math.floor(m / 60);
      return h + " h " + String(m % 60).padStart(2, "0") + " min";
    },
    ago(ts) {
      if (ts == null) return "–";
      const d = Math.max(0, now() - ts);
      if (d < 5) return "just now";
      if (d < 60) return Math.floor(d) + " s ago";
      if (d < 3600) return Math.floor(d / 60) + " min ago";
      if (d < 86400) return Math.floor(d / 3600) + " h ago";
      return Math.floor(d / 86400) + " d ago";
    },
    since(ts) {
      if (ts == null) return "–";
      const d = Math.max(0, now() - ts);
      return d < 60 ? Math.floor(d) + " s" : fmt.duration(d).replace(/ \d+ s$/, "");
    },
    when(ts) {
      if (ts == null) return "";
      return new Date(ts * 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "medium" });
    },
    bytes(n) {
      if (n == null) return "–";
      const units = ["B", "KB", "MB", "GB", "TB"];
      let i = 0;
      while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
      return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + " " + units[i];
    },
  };

  /* -- DOM ----------------------------------------------------------------- */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c == null) continue;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }
  const $ = (id) => document.getElementById(id);
  function setText(id, text) { const n = $(id); if (n && n.textContent !== text) n.textContent = text; }
  function badge(status) { return el("span", { class: "badge badge-" + status, text: status }); }

  function setProgress(bar, fraction, opts = {}) {
    const pct = Math.round(Math.max(0, Math.min(1, fraction || 0)) * 100);
    bar.setAttribute("aria-valuenow", String(pct));
    bar.dataset.done = pct >= 100 ? "yes" : "no";
    bar.dataset.state = opts.state || "";
    bar.firstElementChild.style.width = pct + "%";
    return pct;
  }

  /* -- HTTP ---------------------------------------------------------------- */
  async function post(url, body) {
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      credentials: "same-origin",
      body: body === undefined ? "{}" : JSON.stringify(body),
    });
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    return { status: res.status, ok: res.ok, data: data || {} };
  }

  function explain(res, verb) {
    if (res.status === 401) return "Log in as admin to " + verb + " training.";
    if (res.status === 403) return (res.data && res.data.error === "missing or invalid CSRF token") ? "Your session expired; reload the page and try again." : "Only an admin may " + verb + " training.";
    return (res.data && res.data.error) || "The server answered " + res.status + ".";
  }

  /* Two clicks stop a run: the first arms the button for a few seconds. */
  function bindStop(button, runId, onError) {
    let armed = null;
    button.addEventListener("click", async () => {
      const id = runId();
      if (id == null) return;
      if (!armed) {
        button.classList.add("confirm");
        button.textContent = "Confirm stop";
        armed = setTimeout(() => { armed = null; button.classList.remove("confirm"); button.textContent = "Stop"; }, 4000);
        return;
      }
      clearTimeout(armed); armed = null;
      button.disabled = true;
      button.textContent = "Stopping…";
      const res = await post("/api/runs/" + id + "/stop");
      button.disabled = false;
      button.classList.remove("confirm");
      button.textContent = "Stop";
      if (!res.ok) onError(explain(res, "stop"));
    });
  }

  /* -- redraws ---------------------------------------------------------------- */
  /* Events can arrive by the hundred per second (fast rounds). State is
     updated at once, but schedule(render, ...) redraws each part of the page
     at most once per animation frame, so the page stays responsive. */
  function scheduler() {
    const dirty = new Set();
    let frame = 0;
    return function schedule(...renders) {
      renders.forEach((render) => dirty.add(render));
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        const due = [...dirty];
        dirty.clear();
        due.forEach((render) => render());
      });
    };
  }

  /* -- live socket ----------------------------------------------------------- */
  /* Connects to /ws/dashboard, reconnects with backoff, drops stale events. */
  function live(handlers) {
    const pill = $("live");
    let seq = handlers.seq || 0, delay = 500, ws = null, timer = null;
    function state(s, text) {
      if (!pill) return;
      pill.dataset.state = s;
      pill.querySelector(".live-text").textContent = text;
    }
    function connect() {
      clearTimeout(timer);
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      ws = new WebSocket(proto + "//" + location.host + "/ws/dashboard");
      ws.onopen = () => { delay = 500; state("open", "Live"); };
      ws.onmessage = (e) => {
        const msg = JSON.parse(e.data);
        if (msg.type === "snapshot") {
          seq = msg.seq; syncClock(msg.now); handlers.snapshot(msg); return;
        }
        if (msg.seq != null) {
          if (msg.seq <= seq) return;
          seq = msg.seq;
        }
        handlers.event(msg);
      };
      ws.onclose = () => {
        state("closed", "Reconnecting");
        ws = null;
        timer = setTimeout(connect, delay * (0.75 + Math.random() / 2));
        delay = Math.min(delay * 2, 10000);
      };
    }
    const retryNow = () => { if (!ws) { delay = 500; connect(); } };
    window.addEventListener("online", retryNow);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) retryNow(); });
    connect();
    return { get socket() { return ws; } };
  }

  /* -- charts ---------------------------------------------------------------- */
  const SERIES = {
    accuracy: [
      { key: "accuracy", label: "Global model", color: "--accent" },
      { key: "federated_accuracy", label: "Clients' validation", color: "--accent-2" },
    ],
    loss: [
      { key: "loss", label: "Global model", color: "--accent" },
      { key: "federated_loss", label: "Clients' validation", color: "--accent-2" },
    ],
  };

  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  /* One metric chart (accuracy or loss per round) that grows in place. */
  function chart(container, legend, kind) {
    const defs = SERIES[kind];
    const isPct = kind === "accuracy";
    const show = (v) => (v == null ? "–" : isPct ? fmt.pct(v) : fmt.num(v));
    let plot = null, maxRound = 1, rounds = [];

    function legendDefault() {
      legend.replaceChildren(...defs.filter((d) => rounds.some((r) => r[d.key] != null)).map((d) =>
        el("span", {}, el("i", { style: "background:" + cssVar(d.color) }), d.label)));
    }
    function legendAt(idx) {
      const r = rounds[idx];
      if (!r) return legendDefault();
      legend.replaceChildren(el("span", { text: "Round " + r.server_round }),
        ...defs.filter((d) => r[d.key] != null).map((d) =>
          el("span", {}, el("i", { style: "background:" + cssVar(d.color) }), d.label + " " + show(r[d.key]))));
    }
    function make() {
      const muted = cssVar("--muted"), grid = cssVar("--border");
      const opts = {
        width: Math.max(200, container.clientWidth), height: 220,
        padding: [10, 12, 0, 0],
        legend: { show: false },
        cursor: { drag: { x: false, y: false }, points: { size: 7 } },
        scales: {
          x: { time: false, range: () => [1, Math.max(2, maxRound)] },
          y: { range: (u, min, max) => {
            if (min == null) return [0, 1];
            const pad = Math.max((max - min) * 0.12, 0.01);
            return isPct ? [Math.max(0, min - pad), Math.min(1, max + pad)] : [Math.max(0, min - pad), max + pad];
          } },
        },
        axes: [
          { stroke: muted, grid: { show: false }, ticks: { stroke: grid, size: 4 }, size: 34,
            values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? String(v) : "")) },
          { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { show: false }, size: 52,
            values: (u, vals) => vals.map((v) => (isPct ? Math.round(v * 1000) / 10 + "%" : v.toFixed(2))) },
        ],
        series: [{ label: "Round" }].concat(defs.map((d) => ({
          label: d.label, stroke: cssVar(d.color), width: 2, spanGaps: true,
          points: { size: 6, fill: cssVar(d.color) },
        }))),
        hooks: { setCursor: [(u) => (u.cursor.idx == null ? legendDefault() : legendAt(u.cursor.idx))] },
      };
      plot = new uPlot(opts, data(), container);
    }
    function data() {
      return [rounds.map((r) => r.server_round)].concat(defs.map((d) => rounds.map((r) => r[d.key] ?? null)));
    }
    function update(newRounds, totalRounds) {
      rounds = (newRounds || []).slice().sort((a, b) => a.server_round - b.server_round);
      const last = rounds.length ? rounds[rounds.length - 1].server_round : 0;
      // The whole session for short ones; a window that grows with long ones.
      maxRound = Math.max(2, last, Math.min(totalRounds || 0, Math.max(10, Math.ceil(last * 1.25))));
      container.dataset.points = String(rounds.length);
      const empty = container.querySelector(".chart-empty");
      if (empty) empty.hidden = rounds.length > 0;
      if (!rounds.length) { if (plot) { plot.destroy(); plot = null; } legend.replaceChildren(); return; }
      if (!plot) make(); else plot.setData(data());
      legendDefault();
    }
    new ResizeObserver(() => { if (plot) plot.setSize({ width: Math.max(200, container.clientWidth), height: 220 }); }).observe(container);
    return { update };
  }

  return { fmt, el, $, setText, badge, setProgress, post, explain, bindStop, scheduler, live, chart, now, syncClock, csrf };
})();
