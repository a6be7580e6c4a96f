/* fednet dashboard: the live overview page. */
"use strict";

(function () {
  const { fmt, el, $, setText, badge, setProgress, post, explain } = FN;
  const PHASES = { waiting: "Waiting for clients", fit: "Training", evaluate: "Evaluating", idle: "Aggregating", done: "Finishing" };
  const ACTIVE = ["queued", "running"];
  const CLIENT_AUTH = { sites: "site credentials", join_token: "shared join token", open: "open" };
  // Viewers get no launch form and no Stop button: the page leaves them out.

  const state = {
    status: {}, statusAt: 0,
    clients: new Map(),
    runs: [],
    progress: null, progressAt: 0,
    run: null, // the active run, or the newest one, with its rounds
  };
  const charts = {
    accuracy: FN.chart($("chart-accuracy"), $("acc-legend"), "accuracy"),
    loss: FN.chart($("chart-loss"), $("loss-legend"), "loss"),
  };
  let formTouched = false;

  /* -- state updates --------------------------------------------------------- */
  function applySnapshot(s) {
    state.status = s.status; state.statusAt = Date.now();
    state.clients = new Map(s.clients.map((c) => [c.id, c]));
    state.runs = s.runs;
    state.progress = s.progress; state.progressAt = Date.now();
    state.run = s.current_run;
    renderAll();
    preselectTask();
  }

  const schedule = FN.scheduler();

  function applyEvent(ev) {
    switch (ev.type) {
      case "client_joined": case "client_left": case "client_status":
        state.clients.set(ev.client.id, ev.client);
        schedule(renderClients, renderKpis);
        break;
      case "round_progress":
        setProgressState(ev.progress);
        schedule(renderSession);
        break;
      case "run_status":
        upsertRun(ev.run);
        if (!state.run || state.run.id !== ev.run.id) {
          if (!state.run || ev.run.id > state.run.id) state.run = Object.assign({ rounds: [] }, ev.run);
        } else {
          Object.assign(state.run, ev.run);
        }
        setProgressState(ev.progress);
        schedule(renderAll);
        break;
      case "round_finished":
        onRoundFinished(ev.run_id, ev.round);
        break;
      case "server_status":
        state.status = ev.status; state.statusAt = Date.now();
        schedule(renderStatus);
        break;
    }
  }

  function setProgressState(progress) { state.progress = progress; state.progressAt = Date.now(); }

  function upsertRun(run) {
    const i = state.runs.findIndex((r) => r.id === run.id);
    const merged = Object.assign({}, i >= 0 ? state.runs[i] : {}, run);
    if (i >= 0) state.runs[i] = merged; else state.runs.unshift(merged);
    state.runs.sort((a, b) => b.id - a.id);
  }

  function onRoundFinished(runId, round) {
    const row = state.runs.find((r) => r.id === runId);
    if (row) Object.assign(row, { completed_rounds: round.server_round, accuracy: round.accuracy, loss: round.loss });
    if (state.run && state.run.id === runId) {
      const rounds = state.run.rounds, last = rounds[rounds.length - 1];
      if (!last || last.server_round < round.server_round) rounds.push(round);
      else state.run.rounds = rounds.filter((r) => r.server_round !== round.server_round).concat([round]);
      state.run.completed_rounds = round.server_round;
    }
    for (const [cid, metrics] of Object.entries(round.client_metrics || {})) {
      const c = state.clients.get(cid);
      if (c) c.last_round = Object.assign({ server_round: round.server_round }, metrics);
    }
    schedule(renderAll);
  }

  /* -- rendering ------------------------------------------------------------- */
  function renderAll() { renderStatus(); renderKpis(); renderSession(); renderCharts(); renderClients(); renderRuns(); }

  function connectedClients() { return [...state.clients.values()].filter((c) => c.status !== "disconnected"); }

  function renderStatus() {
    const s = state.status;
    const uptime = s.uptime_s == null ? null : s.uptime_s + (Date.now() - state.statusAt) / 1000;
    setText("srv-uptime", fmt.duration(uptime));
    setText("srv-rx", fmt.bytes(s.bytes_received));
    setText("srv-tx", fmt.bytes(s.bytes_sent));
    setText("srv-join", s.join_token_required ? "required" : "not required");
    setText("srv-admin", s.admin_token_required ? "required" : "not set");
    if (s.client_auth) setText("srv-client-auth", CLIENT_AUTH[s.client_auth] || s.client_auth);
  }

  function renderKpis() {
    const online = connectedClients();
    setText("kpi-clients", String(online.length));
    const busy = online.filter((c) => c.status !== "idle").length;
    setText("kpi-clients-sub", online.length ? (busy ? busy + " busy · " : "") + fmt.int(online.reduce((n, c) => n + c.num_examples, 0)) + " examples" : "none connected");
    const run = state.run;
    if (!run) { setText("kpi-session", "Idle"); setText("kpi-session-sub", "no sessions yet"); }
    else {
      setText("kpi-session", doneRounds() + " / " + run.config.rounds);
      setText("kpi-session-sub", "run " + run.id + " · " + run.status);
    }
    const rounds = (run && run.rounds) || [];
    kpiMetric("accuracy", rounds, (v) => fmt.pct(v), 100, " pts");
    kpiMetric("loss", rounds, (v) => fmt.num(v, 3), 1, "");
  }

  function kpiMetric(key, rounds, show, scale, unit) {
    const last = rounds[rounds.length - 1], prev = rounds[rounds.length - 2];
    setText("kpi-" + key, last && last[key] != null ? show(last[key]) : "–");
    const sub = $("kpi-" + key + "-sub");
    if (!last || last[key] == null) { sub.textContent = "after the first round"; return; }
    if (!prev || prev[key] == null) { sub.textContent = "round " + last.server_round; return; }
    const d = (last[key] - prev[key]) * scale;
    const good = key === "loss" ? d <= 0 : d >= 0;
    const digits = key === "loss" ? 3 : 1;
    sub.replaceChildren(el("span", { class: good ? "up" : "down", text: (d >= 0 ? "+" : "−") + Math.abs(d).toFixed(digits) + unit }), " vs round " + prev.server_round);
  }

  function doneRounds() {
    const run = state.run;
    if (!run) return 0;
    const last = run.rounds && run.rounds.length ? run.rounds[run.rounds.length - 1].server_round : 0;
    return Math.max(run.completed_rounds || 0, last);
  }

  function activeProgress() {
    const p = state.progress;
    return p && state.run && p.run_id === state.run.id ? p : null;
  }

  function renderSession() {
    const run = state.run;
    $("session-empty").hidden = !!run;
    $("session-body").hidden = !run;
    const stop = $("stop-run"), dl = $("download-model"), details = $("session-details");
    if (!run) { if (stop) stop.hidden = true; dl.hidden = details.hidden = true; renderLaunchState(); return; }
    const p = activeProgress();
    const total = run.config.rounds, done = doneRounds();
    const title = $("session-title");
    title.replaceChildren("Run " + run.id + " ", badge(run.status));
    // An async (FedBuff) run counts model versions, not rounds; a gossip run steps.
    const isAsync = run.config.mode === "async", isGossip = run.config.mode === "gossip";
    const unit = isAsync ? "Version " : isGossip ? "Step " : "Round ";
    setText("session-sub", run.config.task + " · " + run.config.model + " · " + run.config.strategy + " · " +
      (isAsync ? "async, K=" + run.config.buffer_size + " updates per version"
        : isGossip ? "gossip, k=" + run.config.gossip_peers + " peers per step"
        : (run.config.clients_per_round || "all") + " clients per round") + " · " + run.config.local_epochs + " local epochs");
    const current = p ? Math.min(Math.max(p.server_round, done), total) : done;
    setText("session-label", unit + current + " of " + total);
    const pct = setProgress($("session-bar"), total ? done / total : 0, { state: run.status });
    setText("session-pct", pct + "%");
    renderRoundBar(p);
    setText("session-phase", p ? PHASES[p.phase] || p.phase : run.status[0].toUpperCase() + run.status.slice(1));
    const durations = (run.rounds || []).map((r) => r.duration_s).filter((d) => d != null);
    setText("session-avg", durations.length ? fmt.duration(durations.reduce((a, b) => a + b, 0) / durations.length) : "–");
    const err = $("session-error");
    err.hidden = !run.error; err.textContent = run.error || "";
    if (stop) stop.hidden = !ACTIVE.includes(run.status);
    dl.hidden = !done; dl.href = "/api/runs/" + run.id + "/model";
    details.hidden = false; details.href = "/runs/" + run.id;
    renderTimes();
    renderLaunchState();
  }

  function renderRoundBar(p) {
    const block = $("round-bar").parentElement;
    block.hidden = !p;
    if (!p) return;
    // The feed sends counts, not names: its events keep one size whatever N.
    const n = p.selected_count || 0, k = p.reported_count || 0;
    let label = PHASES[p.phase] || p.phase, count = "";
    if (state.run.config.mode === "async" && p.phase === "fit") {
      label = "Version " + p.server_round + " · training";
      count = n + " clients training, " + k + " folded into the next version";
    } else if (p.phase === "fit" || p.phase === "evaluate") {
      label = (state.run.config.mode === "gossip" ? "Step " : "Round ") + p.server_round + " · " + label.toLowerCase();
      count = k + " of " + n + " clients reported";
    } else if (p.phase === "waiting") {
      const c = state.run.config, needed = c.mode === "gossip" ? Math.max(c.min_clients, c.gossip_peers + 1) : c.min_clients;
      count = connectedClients().length + " of " + needed + " needed";
    }
    setText("round-label", label);
    setText("round-count", count);
    setProgress($("round-bar"), p.phase === "fit" || p.phase === "evaluate" ? (n ? k / n : 0) : p.phase === "idle" ? 1 : 0);
  }

  /* Times move every second; everything else only changes on events. */
  function renderTimes() {
    const run = state.run, p = activeProgress();
    if (run) {
      let elapsed = null, eta = "–";
      if (p) {
        const drift = (Date.now() - state.progressAt) / 1000;
        elapsed = p.elapsed_s + drift;
        const durations = (run.rounds || []).map((r) => r.duration_s);
        const left = run.config.rounds - doneRounds();
        if (durations.length) {
          const avg = durations.reduce((a, b) => a + b, 0) / durations.length;
          const inRound = p.round_elapsed_s != null && p.phase !== "idle" ? p.round_elapsed_s + drift : 0;
          eta = "~" + fmt.duration(Math.max(0, avg * left - Math.min(inRound, avg)));
        } else {
          eta = "estimating…";
        }
      } else if (run.started_at && run.finished_at) {
        elapsed = run.finished_at - run.started_at;
        eta = run.status === "finished" ? "done" : "–";
      }
      setText("session-elapsed", fmt.duration(elapsed));
      setText("session-eta", eta);
    }
    document.querySelectorAll("[data-ago]").forEach((n) => { n.textContent = fmt.ago(Number(n.dataset.ago)); });
    document.querySelectorAll("[data-since]").forEach((n) => { n.textContent = fmt.since(Number(n.dataset.since)); });
    renderStatus();
  }

  function renderCharts() {
    const run = state.run;
    const rounds = (run && run.rounds) || [];
    charts.accuracy.update(rounds, run ? run.config.rounds : 0);
    charts.loss.update(rounds, run ? run.config.rounds : 0);
  }

  function lastRoundCell(c) {
    const r = c.last_round;
    if (!r) return el("span", { class: "muted", text: "–" });
    const acc = r.val_accuracy ?? r.train_accuracy, loss = r.val_loss ?? r.train_loss;
    return el("span", { class: "metric" },
      el("span", { class: "muted", text: "R" + r.server_round + " · " }),
      acc != null ? el("b", { text: fmt.pct(acc) }) : null,
      loss != null ? el("span", { class: "muted", text: " · loss " + fmt.num(loss, 3) }) : null);
  }

  function trainersText(c) {
    const names = (c.trainers || []).map((t) => t.name);
    return names.length ? " · trainers " + names.join(", ") : "";
  }

  function renderClients() {
    const all = [...state.clients.values()].sort((a, b) =>
      (a.status === "disconnected") - (b.status === "disconnected") || a.name.localeCompare(b.name, undefined, { numeric: true }));
    $("clients-body").replaceChildren(...all.map((c) => el("tr", { "data-client": c.id, class: c.status === "disconnected" ? "gone" : null },
      el("td", { "data-label": "Name" }, el("span", { class: "cell-name", text: c.name }),
        el("span", { class: "cell-sub", text: (c.address ? c.task + " · " + c.address : c.task) + trainersText(c) }),
        c.note ? el("span", { class: "note", text: c.note }) : null),
      el("td", { "data-label": "Status", class: "client-status" }, badge(c.status)),
      el("td", { "data-label": "Examples", class: "num", text: fmt.int(c.num_examples) }),
      el("td", { "data-label": "Connected", title: fmt.when(c.connected_since) }, el("span", { "data-since": c.connected_since, text: fmt.since(c.connected_since) })),
      el("td", { "data-label": "Last seen", title: fmt.when(c.last_seen), "data-ago": c.last_seen, text: fmt.ago(c.last_seen) }),
      el("td", { "data-label": "Last round" }, lastRoundCell(c)))));
    renderTrainerNames();
    const online = connectedClients().length;
    $("clients-empty").hidden = all.length > 0;
    $("clients-table").hidden = all.length === 0;
    setText("clients-sub", all.length ? online + " connected" + (all.length > online ? " · " + (all.length - online) + " recently left" : "") : "Waiting for clients to connect");
  }

  // The launch form's model field suggests the trainers the connected sites
  // offer (GET /api/clients: trainers), the built-ins first.
  function renderTrainerNames() {
    const list = $("trainer-names");
    if (!list) return;
    const builtin = ["logreg", "mlp"];
    const offered = new Set(connectedClients().flatMap((c) => (c.trainers || []).map((t) => t.name)));
    const names = [...builtin, ...[...offered].filter((n) => !builtin.includes(n)).sort()];
    list.replaceChildren(...names.map((n) => el("option", { value: n })));
  }

  function renderRuns() {
    $("runs-body").replaceChildren(...state.runs.map((r) => {
      const dur = r.started_at ? (r.finished_at || FN.now()) - r.started_at : null;
      return el("tr", { "data-run": r.id },
        el("td", { "data-label": "Run" }, el("a", { href: "/runs/" + r.id, class: "cell-name", text: "Run " + r.id })),
        el("td", { "data-label": "Status" }, badge(r.status)),
        el("td", { "data-label": "Task", text: r.config.task + " · " + r.config.model }),
        el("td", { "data-label": "Rounds", class: "num", text: r.completed_rounds + " / " + r.config.rounds }),
        el("td", { "data-label": "Accuracy", class: "num", text: fmt.pct(r.accuracy) }),
        el("td", { "data-label": "Loss", class: "num", text: fmt.num(r.loss, 3) }),
        el("td", { "data-label": "Started", title: fmt.when(r.created_at), "data-ago": r.created_at, text: fmt.ago(r.created_at) }),
        el("td", { "data-label": "Duration", class: "num", text: fmt.duration(dur) }));
    }));
    $("runs-empty").hidden = state.runs.length > 0;
    $("runs-table").hidden = state.runs.length === 0;
  }

  /* -- launch form ------------------------------------------------------------ */
  const form = $("launch-form");

  function renderLaunchState() {
    const busy = !!(state.run && ACTIVE.includes(state.run.status));
    const button = $("launch");
    if (!button || button.dataset.sending === "yes") return;
    button.disabled = busy;
    button.textContent = busy ? "A session is running" : "Launch session";
  }

  function preselectTask() {
    if (formTouched || !form) return;
    const tasks = new Set(connectedClients().map((c) => c.task));
    if (tasks.size === 1) form.elements.task.value = [...tasks][0];
  }

  // A strategy's own fields (data-strategies: the strategies that read the
  // field) show only while it is chosen, a mode's (data-modes) likewise; a
  // fieldset left empty hides too.
  function showStrategyFields() {
    if (!form || !form.elements.strategy) return;
    const strategy = form.elements.strategy.value;
    for (const field of form.querySelectorAll(".field[data-strategies]")) {
      field.hidden = !field.dataset.strategies.split(" ").includes(strategy);
    }
    const mode = form.elements.mode ? form.elements.mode.value : "sync";
    for (const field of form.querySelectorAll(".field[data-modes]")) {
      field.hidden = !field.dataset.modes.split(" ").includes(mode);
    }
    for (const set of form.querySelectorAll("fieldset[data-group]")) {
      set.hidden = !set.querySelector(".field:not([hidden])");
    }
  }

  function formBody() {
    const body = {};
    for (const input of form.querySelectorAll("input[name], select[name]")) {
      // A hidden field is one the chosen strategy ignores: the server's default.
      const field = input.closest(".field");
      if (field && field.hidden) continue;
      if (input.tagName === "SELECT") {
        body[input.name] = input.dataset.kind === "bool" ? input.value === "true" : input.value;
        continue;
      }
      const raw = input.value.trim();
      if (input.dataset.kind === "list") {
        body[input.name] = raw.split(",").map((s) => s.trim()).filter((s) => s);
        continue;
      }
      if (input.dataset.kind === "text") {
        body[input.name] = raw;
        continue;
      }
      const n = Number(raw);
      body[input.name] = raw === "" ? null : Number.isFinite(n) ? n : raw;
    }
    return body;
  }

  function clearErrors() {
    form.querySelectorAll(".field.invalid").forEach((f) => f.classList.remove("invalid"));
    form.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; });
    $("launch-error").hidden = true;
  }

  function showErrors(fields) {
    const other = [];
    for (const [name, message] of Object.entries(fields || {})) {
      const slot = form.querySelector('[data-error-for="' + CSS.escape(name) + '"]');
      if (!slot) { other.push(name + ": " + message); continue; }
      slot.textContent = message;
      slot.closest(".field").classList.add("invalid");
      const details = slot.closest("details");
      if (details) details.open = true;
    }
    return other;
  }

  function formError(message, link) {
    const box = $("launch-error");
    box.replaceChildren(message, link ? el("a", { href: link, text: " Log in" }) : "");
    box.className = "alert alert-error";
    box.hidden = false;
  }

  if (form) form.addEventListener("input", (e) => {
    formTouched = true;
    if (e.target.name === "strategy" || e.target.name === "mode") showStrategyFields();
    const field = e.target.closest(".field");
    if (field) { field.classList.remove("invalid"); field.querySelector(".field-error").textContent = ""; }
  });

  if (form) form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors();
    const button = $("launch");
    button.dataset.sending = "yes"; button.disabled = true; button.textContent = "Launching…";
    let res;
    try { res = await post("/api/runs", formBody()); }
    catch (err) { res = { status: 0, ok: false, data: { error: "The server cannot be reached." } }; }
    button.dataset.sending = "no";
    renderLaunchState();
    if (res.status === 201) {
      const box = $("launch-error");
      box.className = "alert alert-ok"; box.textContent = "Run " + res.data.id + " launched."; box.hidden = false;
      setTimeout(() => { box.hidden = true; }, 4000);
      return;
    }
    if (res.status === 400) {
      const other = showErrors(res.data.fields);
      if (other.length || !Object.keys(res.data.fields || {}).length) formError(other.join("; ") || res.data.error);
      return;
    }
    formError(explain(res, "launch"), res.status === 401 ? "/login?next=/" : null);
  });

  if ($("stop-run")) FN.bindStop($("stop-run"), () => (state.run ? state.run.id : null), (msg) => {
    const err = $("session-error"); err.textContent = msg; err.hidden = false;
  });

  /* -- start -------------------------------------------------------------------- */
  showStrategyFields();
  const initial = JSON.parse($("snapshot").textContent);
  FN.syncClock(initial.now);
  applySnapshot(initial);
  FN.live({ seq: initial.seq, snapshot: applySnapshot, event: applyEvent });
  setInterval(renderTimes, 1000);
})();
