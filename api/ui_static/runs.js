// Runs: which runs the page's version shows, each run's card (status, stop reason, model,
// steps, tokens, timings, a failed attempt's error and input) and the "Runs" section.

import { badge, failure, h, ms, orDash, pre, section, short, table, time } from "./dom.js";

const STATUS_KIND = { completed: "ok", failed: "bad", cancelled: "warn", running: "info", created: "info" };

/** The runs shown at `cut`: claimed by then, or (events unread) created by the last event. */
export function runsAt(runs, facts, cut, events) {
  if (cut !== null && facts.eventsRead) return runs.filter((r) => facts.claims.has(r.id));
  if (cut !== null && events.length) return runs.filter((r) => r.created_at <= events[events.length - 1].timestamp);
  return runs;
}

function runStatus(run, facts, cut) {
  const claim = facts.claims.get(run.id);
  const release = facts.releases.get(run.id);
  if (cut !== null && claim && (!release || release.version > cut)) {
    return h("span", null, badge("running at this version", "info"), " ", h("span", { class: "muted" }, `(later: ${run.status})`));
  }
  return badge(run.status, STATUS_KIND[run.status]);
}

function modelOf(run) {
  const steps = run.steps?.value || [];
  const models = [...new Set(steps.map((s) => [s.provider_name, s.model].filter(Boolean).join("/")))].filter(Boolean);
  return models.length ? models.join(", ") : "—";
}

function tokensOf(run) {
  const u = run.usage?.value;
  if (!u) return "—";
  return `${u.prompt_tokens} in · ${u.completion_tokens} out · ${u.total_tokens} total`;
}

/** A run as a card: in the timeline where it was claimed, and under failed attempts. */
export function runCard(run, facts, cut) {
  const steps = run.steps?.value;
  const error = run.metadata?.error;
  return h(
    "div", { class: `run ${run.status}`, id: `run-${run.id}`, dataset: { runId: run.id, status: run.status } },
    h(
      "header", null,
      h("span", { class: "kind" }, "run"), runStatus(run, facts, cut),
      h("span", null, `stop: ${orDash(run.stop_reason)}`),
      h("span", null, `model: ${modelOf(run)}`),
      h("span", null, `steps: ${steps ? steps.length : "—"}`),
      h("span", null, `tokens: ${tokensOf(run)}`),
      h("span", null, `first token ${ms(run.ttft_ns)} · total ${ms(run.total_duration_ns)}`),
      short(run.id, 16),
    ),
    error ? h("div", { class: "error" }, "error: ", pre(error)) : null,
    run.status === "failed" || run.status === "cancelled"
      ? h("details", null, h("summary", null, "its input (kept on the run, not in the context)"), pre(run.metadata?.input_messages ?? []))
      : null,
  );
}

function runRow(run, facts, cut) {
  return h(
    "tr", { class: `run-row ${run.status}`, dataset: { runId: run.id, status: run.status } },
    h("td", null, h("a", { href: `#run-${run.id}` }, short(run.id, 16))),
    h("td", null, runStatus(run, facts, cut)),
    h("td", null, orDash(run.stop_reason)),
    h("td", null, modelOf(run)),
    h("td", { class: "num" }, run.steps?.value ? String(run.steps.value.length) : "—"),
    h("td", null, tokensOf(run)),
    h("td", null, ms(run.ttft_ns)),
    h("td", null, ms(run.total_duration_ns)),
    h("td", null, time(run.created_at)),
    h("td", null, time(run.completed_at)),
  );
}

export function runsSection(runs, loaded, facts, cut) {
  if (loaded.error) return section("runs", "Runs", failure("The runs", loaded.error));
  const rows = runs.map((run) => runRow(run, facts, cut));
  const attempts = runs.filter((r) => r.status === "failed" || r.status === "cancelled");
  return section(
    "runs", `Runs (${runs.length})`,
    runs.length ? table(["run", "status", "stop reason", "model", "steps", "tokens", "first token", "duration", "started", "finished"], rows, "runs") : h("p", { class: "muted" }, "No runs."),
    h("h3", null, `Failed and cancelled attempts (${attempts.length})`),
    attempts.length ? attempts.map((r) => runCard(r, facts, cut)) : h("p", { class: "muted", id: "no-failed" }, "None."),
  );
}
