/* fednet dashboard: one run's page, kept live while the run is active. */
"use strict";

(function () {
  const { fmt, el, $, setText, badge, setProgress } = FN;
  const run = JSON.parse($("run-data").textContent);
  const charts = {
    accuracy: FN.chart($("chart-accuracy"), $("acc-legend"), "accuracy"),
    loss: FN.chart($("chart-loss"), $("loss-legend"), "loss"),
  };

  // The rows come from the server's rounds_rows.html, the table's one renderer.
  // Fetches run one after another, so rows arrive in the order rounds did.
  let rowsQueue = Promise.resolve();
  function loadRows(since) {
    rowsQueue = rowsQueue.then(() => fetchRows(since)).catch(() => {});
  }

  async function fetchRows(since) {
    const res = await fetch("/runs/" + run.id + "/rounds?since=" + since);
    if (!res.ok) return;
    const body = $("rounds-body");
    for (const tr of [...body.querySelectorAll("tr")]) {
      if (Number(tr.dataset.round) > since) tr.remove();
    }
    body.insertAdjacentHTML("beforeend", await res.text());
    $("rounds-empty").hidden = body.querySelector("tr") !== null;
  }

  function renderFacts() {
    const last = run.rounds[run.rounds.length - 1];
    const best = run.rounds.reduce((b, r) => (r.accuracy != null && (b == null || r.accuracy > b) ? r.accuracy : b), null);
    const clients = new Set(run.rounds.flatMap((r) => r.clients));
    const elapsed = run.started_at ? (run.finished_at || FN.now()) - run.started_at : null;
    const facts = [
      ["Final accuracy", fmt.pct(last && last.accuracy)],
      ["Best accuracy", fmt.pct(best)],
      ["Final loss", fmt.num(last && last.loss)],
      ["Clients involved", String(clients.size)],
      ["Started", run.started_at ? fmt.when(run.started_at) : "–"],
      ["Duration", fmt.duration(elapsed)],
    ];
    $("run-facts").replaceChildren(...facts.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v }))));
  }

  // Epsilon spent per round against the budget (dp runs; the card is absent else).
  function renderPrivacy() {
    const card = $("privacy");
    if (!card || !run.privacy) return;
    const budget = run.privacy.budget;
    // Rounds arrive live before the run's own figure is refreshed.
    const spent = run.rounds.reduce((m, r) => (r.epsilon != null && r.epsilon > m ? r.epsilon : m), run.privacy.epsilon || 0);
    const share = (e) => (budget ? Math.round((e / budget) * 1000) / 10 + "%" : "–");
    setText("privacy-spent", fmt.num(spent, 3) + (budget ? " of " + fmt.num(budget, 3) + " · " + share(spent) : " (no budget)"));
    setProgress($("privacy-bar"), budget ? spent / budget : 0, { state: run.status });
    const rows = run.rounds.filter((r) => r.epsilon != null).map((r) => el("tr", {},
      el("td", { class: "num", text: String(r.server_round) }),
      el("td", { class: "num", text: fmt.num(r.epsilon, 4) }),
      el("td", { class: "num", text: budget ? fmt.num(budget, 4) : "none" }),
      el("td", { class: "num", text: share(r.epsilon) })));
    $("privacy-body").replaceChildren(...rows);
  }

  // The last round's metrics (the test set's when the coordinator has one,
  // else the sites' pooled validation rows) and its confusion matrix.
  const METRIC_NAMES = {
    accuracy: "Accuracy", balanced_accuracy: "Balanced accuracy", macro_f1: "Macro F1",
    auroc: "AUROC", sensitivity: "Sensitivity", specificity: "Specificity",
    log_loss: "Log loss", mse: "MSE", mae: "MAE", r2: "R²",
  };
  function renderMetrics() {
    const last = run.rounds[run.rounds.length - 1];
    const card = $("metrics-card");
    const test = last && Object.keys(last.test_metrics || {}).length ? last.test_metrics : null;
    const shown = test || (last && last.metrics) || {};
    card.hidden = !Object.keys(shown).length;
    if (card.hidden) return;
    setText("metrics-note", "Round " + last.server_round + ", " + (test ? "on the coordinator's test set" : "on the sites' validation rows, pooled") + ".");
    const names = Object.keys(METRIC_NAMES).filter((k) => k in shown);
    $("metrics-list").replaceChildren(...names.map((k) => el("div", { "data-metric": k },
      el("dt", { text: METRIC_NAMES[k] }), el("dd", {}, el("code", { text: fmt.num(shown[k], 4) })))));
    const matrix = last.confusion;
    $("confusion-wrap").hidden = !matrix;
    if (!matrix) return;
    const classes = (run.schema && run.schema.classes) || matrix.map((_, i) => String(i));
    $("confusion-head").replaceChildren(el("tr", {}, el("th", { text: "true \\ predicted" }),
      ...classes.map((c) => el("th", { class: "num", text: c }))));
    $("confusion-body").replaceChildren(...matrix.map((row, i) => el("tr", {},
      el("th", { text: classes[i] }),
      ...row.map((n, j) => el("td", { class: "num" + (i === j ? " hit" : ""), text: String(n) })))));
  }

  function render() {
    const done = Math.max(run.completed_rounds || 0, run.rounds.length ? run.rounds[run.rounds.length - 1].server_round : 0);
    const pct = setProgress($("session-bar"), done / run.config.rounds, { state: run.status });
    setText("run-pct", done + " of " + run.config.rounds + " · " + pct + "%");
    setText("run-rounds-done", String(done));
    $("run-status").replaceWith(Object.assign(badge(run.status), { id: "run-status" }));
    const stop = $("stop-run"); // admins only
    if (stop) stop.hidden = !["queued", "running"].includes(run.status);
    $("download-model").hidden = !done;
    renderFacts();
    renderPrivacy();
    renderMetrics();
    charts.accuracy.update(run.rounds, run.config.rounds);
    charts.loss.update(run.rounds, run.config.rounds);
  }

  if ($("stop-run")) FN.bindStop($("stop-run"), () => run.id, (msg) => {
    let box = $("run-error");
    if (!box) { box = el("p", { class: "alert alert-error", id: "run-error" }); $("run-facts").before(box); }
    box.textContent = msg;
  });

  render();
  const schedule = FN.scheduler();
  if (["queued", "running"].includes(run.status)) {
    FN.live({
      seq: 0,
      async snapshot(s) {
        if (s.current_run && s.current_run.id === run.id) Object.assign(run, s.current_run);
        else {
          // Not the newest run any more: read what the store recorded meanwhile.
          const res = await fetch("/api/runs/" + run.id);
          if (res.ok) Object.assign(run, await res.json());
        }
        render();
        loadRows(0);
      },
      event(ev) {
        if (ev.type === "round_finished" && ev.run_id === run.id) {
          const last = run.rounds[run.rounds.length - 1];
          if (!last || last.server_round < ev.round.server_round) run.rounds.push(ev.round);
          else run.rounds = run.rounds.filter((r) => r.server_round !== ev.round.server_round).concat([ev.round]);
          run.completed_rounds = ev.round.server_round;
          schedule(render);
          loadRows(ev.round.server_round - 1);
        } else if (ev.type === "run_status" && ev.run.id === run.id) {
          Object.assign(run, ev.run);
          schedule(render);
        }
      },
    });
  } else {
    $("live").hidden = true;
  }
})();
