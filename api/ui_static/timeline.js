// /ui/conversations/{id} : everything the log says about one conversation, in order, at any
// past version. Where each part comes from is in docs/ui.md.

import { all, get, pool } from "./api.js";
import { recheck, canRecheck } from "./chain.js";
import { blocksOf, diffView } from "./diff.js";
import { badge, h, ms, orDash, pre, section, short, table, time } from "./dom.js";

const T = "convlog.Conversation.";
const MEMORY_TOOLS = new Set([
  "memory_insert", "memory_replace", "memory_rethink", "core_memory_append",
  "core_memory_replace",
]);
// Which arguments of a memory tool are the text taken out (-) and put in (+).
const MEMORY_ARGUMENTS = {
  memory_insert: { add: "new_string" },
  memory_replace: { remove: "old_string", add: "new_string" },
  memory_rethink: { add: "new_memory" },
  core_memory_append: { add: "content" },
  core_memory_replace: { remove: "old_content", add: "new_content" },
};
const STATUS_KIND = { completed: "ok", failed: "bad", cancelled: "warn", running: "info", created: "info" };

/** The point the page is drawn at, from its query: {as_of_version} | {as_of} | {}. */
export function pointOf(params) {
  const version = params.get("as_of_version");
  if (version) return { as_of_version: version };
  const at = params.get("as_of");
  if (at) return { as_of: at };
  return {};
}

function settle(promise) {
  return promise.then((value) => ({ value }), (error) => ({ error }));
}

function parseJSON(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function byText(by) {
  if (!by) return "who: not recorded (before 0.4.0)";
  const key = by.key_id ? `key ${by.key_id}` : "no key";
  return `by ${by.user_id} · ${key}`;
}

async function load(id, point) {
  const base = `/v1/conversations/${encodeURIComponent(id)}`;
  const isAgent = id.startsWith("agent-"); // an agent's own context: no conversation resource
  const conversation = isAgent ? { value: null } : await settle(get(base, point));
  if (conversation.error && conversation.error.status !== 400) throw conversation.error;
  const runQuery = isAgent ? { agent_id: id, order: "asc" } : { conversation_id: id, order: "asc" };
  const [messages, events, audit, runs] = await Promise.all([
    conversation.error
      ? Promise.resolve({ error: conversation.error })
      : settle(all(`${base}/messages`, { order: "asc", ...point }, (m) => m.id)),
    settle(all(`${base}/events`, {}, (e) => e.version, { limit: 1000 })),
    settle(get(`${base}/audit`).then((r) => r.data)),
    settle(all("/v1/runs/", runQuery, (r) => r.id)),
  ]);
  if (messages.error && messages.error.status !== 400) throw messages.error;
  if (runs.value && isAgent) {
    runs.value = runs.value.filter((r) => !r.conversation_id || r.conversation_id === id);
  }
  if (runs.value) {
    await pool(runs.value, 4, async (run) => {
      const path = `/v1/runs/${encodeURIComponent(run.id)}`;
      const [steps, usage] = await Promise.all([
        settle(all(`${path}/steps`, { order: "asc" }, (s) => s.id)),
        settle(get(`${path}/usage`).then((r) => r.data)),
      ]);
      run.steps = steps;
      run.usage = usage;
    });
  }
  let agent = null;
  const agentId = conversation.value?.data.agent_id || (isAgent ? id : null);
  if (agentId) {
    agent = (await settle(get(`/v1/agents/${encodeURIComponent(agentId)}`))).value?.data ?? null;
  }
  return { conversation, messages, events, audit, runs, agent };
}

// -- what the events say ---------------------------------------------------------------------

/** Derived facts: per message its event; per run its claim/release; memory changes; compactions. */
function analyse(events) {
  const byMessage = new Map();
  const claims = new Map(); // run id → RunClaimed event
  const releases = new Map(); // run id → RunReleased event
  const recompiles = []; // {event, before, after, causes: [tool return events]}
  const isolated = []; // IsolatedBlockEdited events
  const compactions = []; // {event, summarized: [message events]}
  let system = null;
  let causes = [];
  let keyShift = 0;
  let forkedAt = null;
  let windowFrom = 0;
  const ownMessages = [];
  for (const e of events) {
    const p = e.payload;
    if (e.type === `${T}MessageAppended`) {
      byMessage.set(p.message_id, e);
      if (p.role === "system" && system === null) system = p.content;
      if (p.message_type === "tool_return_message" && MEMORY_TOOLS.has(p.extra?.name)) causes.push(e);
      if (p.role !== "system") ownMessages.push({ event: e, key: forkedAt !== null ? e.version + keyShift : e.version });
    } else if (e.type === `${T}SystemMessageRecompiled`) {
      recompiles.push({ event: e, before: system, after: p.content, causes });
      system = p.content;
      causes = [];
    } else if (e.type === `${T}IsolatedBlockEdited`) {
      isolated.push(e);
    } else if (e.type === `${T}RunClaimed`) {
      claims.set(p.run_id, e);
    } else if (e.type === `${T}RunReleased`) {
      releases.set(p.run_id, e);
    } else if (e.type === `${T}Forked`) {
      keyShift = p.key_shift || 0;
      forkedAt = e.version;
    } else if (e.type === `${T}Compacted`) {
      byMessage.set(p.summary_message_id, e); // the summary is listed where it was made
      const summarized = ownMessages.filter(
        (m) => m.key >= windowFrom && m.key < p.keep_from && m.event.payload.message_id !== p.summary_message_id,
      );
      compactions.push({ event: e, summarized: summarized.map((m) => m.event) });
      windowFrom = p.keep_from;
    }
  }
  return { byMessage, claims, releases, recompiles, isolated, compactions };
}

// -- the as-of control ----------------------------------------------------------------------

function asOfControl(point, shownVersion, liveVersion, navigate) {
  const version = point.as_of_version || shownVersion || liveVersion || "";
  const slider = h("input", {
    id: "as-of-slider", type: "range", min: 1, max: liveVersion || version || 1, step: 1,
    value: version || 1, "aria-label": "Version", hidden: !liveVersion, // no events: no range
  });
  const number = h("input", {
    id: "as-of-version", type: "number", min: 1, max: liveVersion || null, step: 1, value: version,
    "aria-label": "As of version", required: true,
  });
  slider.addEventListener("input", () => { number.value = slider.value; });
  slider.addEventListener("change", () => navigate({ as_of_version: slider.value }));
  number.addEventListener("input", () => { slider.value = number.value; });
  const timeInput = h("input", {
    id: "as-of-time", type: "datetime-local", step: 0.001, "aria-label": "As of time (UTC)",
  });
  if (point.as_of) timeInput.value = point.as_of.replace(/Z$/, "").slice(0, 23);
  const versionForm = h(
    "form", {
      id: "as-of-version-form", class: "controls",
      onsubmit: (event) => { event.preventDefault(); navigate({ as_of_version: number.value }); },
    },
    h("label", { for: "as-of-version" }, "As of version"), slider, number,
    h("button", { type: "submit", id: "as-of-apply" }, "Show"),
  );
  const timeForm = h(
    "form", {
      id: "as-of-time-form", class: "controls",
      onsubmit: (event) => {
        event.preventDefault();
        if (timeInput.value) navigate({ as_of: timeInput.value });
      },
    },
    h("label", { for: "as-of-time" }, "or time (UTC)"), timeInput,
    h("button", { type: "submit", id: "as-of-time-apply" }, "Show"),
    h("button", { type: "button", id: "as-of-live", onclick: () => navigate({}) }, "Live"),
  );
  const live = !point.as_of_version && !point.as_of;
  const status = h(
    "p", { id: "as-of-status", dataset: { version: shownVersion ?? "", live: String(live) } },
    live
      ? `Live: the latest version${liveVersion ? ` (${liveVersion})` : ""}.`
      : (shownVersion === 0 ? "Before the conversation existed" : `As of version ${orDash(shownVersion)}${liveVersion ? ` of ${liveVersion}` : ""}`) +
        (point.as_of && shownVersion !== 0 ? ` (the last one at or before ${point.as_of} UTC)` : "") +
        ": messages and the conversation are the server's time-travel answer; runs, events and" +
        " everything drawn from events are cut at that version here.",
  );
  return h("div", { class: "as-of", id: "as-of" }, versionForm, timeForm, status);
}

// -- rendering --------------------------------------------------------------------------------

function failure(what, error) {
  return h("p", { class: "error" }, `${what} could not be read: ${error.status ?? ""} ${error.detail ?? error.message}`);
}

function contentText(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (part?.type === "text" ? part.text : part?.type === "image" ? `[image: ${JSON.stringify(part.source ?? {})}]` : JSON.stringify(part)))
      .join("\n");
  }
  return content === null || content === undefined ? "" : JSON.stringify(content, null, 2);
}

function argumentsOf(call) {
  return parseJSON(call.arguments) ?? call.arguments;
}

function toolCall(call, memory) {
  const args = argumentsOf(call);
  return h(
    "div", { class: "tool-call", dataset: { toolCallId: call.tool_call_id || "" } },
    h("div", null, h("strong", null, call.name), " ", short(call.tool_call_id, 20)),
    pre(args),
    MEMORY_TOOLS.has(call.name) ? memoryArguments(call.name, args) : null,
    memory,
  );
}

function memoryArguments(name, args) {
  if (!args || typeof args !== "object") return null;
  const which = MEMORY_ARGUMENTS[name] || {};
  const lines = [];
  if (which.remove && typeof args[which.remove] === "string") {
    lines.push(...args[which.remove].split("\n").map((l) => h("div", { class: "diff-del" }, `- ${l}`)));
  }
  if (which.add && typeof args[which.add] === "string") {
    lines.push(...args[which.add].split("\n").map((l) => h("div", { class: "diff-add" }, `+ ${l}`)));
  }
  if (!lines.length) return null;
  return h(
    "div", { class: "memory-args" },
    h("div", { class: "muted" }, `asked: block "${orDash(args.label)}"` + (args.insert_line !== undefined ? `, after line ${args.insert_line}` : "")),
    h("div", { class: "diff" }, lines),
  );
}

function blockDiffs(change, labels) {
  const before = blocksOf(change.before);
  const after = blocksOf(change.after);
  const wanted = labels.length ? labels : [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((l) => before[l] !== after[l]);
  const parts = [];
  for (const label of wanted) {
    if (label in before && label in after) {
      parts.push(h("div", { class: "muted" }, `block "${label}", before → after (from the system message recompiled at version ${change.event.version})`));
      parts.push(diffView(before[label], after[label]));
    }
  }
  if (!parts.length && change.before !== null) {
    parts.push(h("div", { class: "muted" }, `the system message, before → after (recompiled at version ${change.event.version})`));
    parts.push(diffView(change.before, change.after));
  }
  return parts;
}

function messageCard(message, event, facts, extras) {
  const type = message.message_type;
  const body = [];
  const summary = message.role === "summary" || facts.summaryIds.has(message.id);
  if (type === "system_message") {
    const text = contentText(message.content);
    body.push(h("details", null, h("summary", null, `system prompt (${text.length} characters)`), pre(text)));
  } else if (type === "user_message" && summary) {
    const packed = parseJSON(contentText(message.content));
    body.push(h("div", { class: "muted" }, "compaction summary (what the model reads in place of the messages before it)"));
    body.push(pre(packed?.message ?? contentText(message.content)));
    const compaction = facts.compactionBySummary.get(message.id);
    if (compaction) body.push(compactionDetails(compaction));
  } else if (type === "user_message" || type === "assistant_message") {
    body.push(pre(contentText(message.content), "text"));
  } else if (type === "reasoning_message") {
    body.push(pre(message.reasoning ?? "", "text reasoning"));
  } else if (type === "hidden_reasoning_message") {
    body.push(h("p", { class: "muted" }, `hidden reasoning (${orDash(message.state)})`));
  } else if (type === "tool_call_message" || type === "approval_request_message") {
    const calls = message.tool_calls?.length ? message.tool_calls : message.tool_call ? [message.tool_call] : [];
    if (type === "approval_request_message") body.push(h("p", null, badge("approval requested", "warn")));
    for (const call of calls) body.push(toolCall(call, extras.memoryFor(call.tool_call_id)));
  } else if (type === "tool_return_message") {
    const returns = message.tool_returns?.length ? message.tool_returns : [message];
    for (const r of returns) {
      body.push(h("div", null, badge(orDash(r.status), r.status === "success" ? "ok" : "bad"), " ", message.name || "", " ", short(r.tool_call_id, 20)));
      body.push(pre(r.tool_return ?? "", "text"));
      if (r.stdout?.length) body.push(h("div", { class: "muted" }, "stdout"), pre(r.stdout.join("")));
      if (r.stderr?.length) body.push(h("div", { class: "muted" }, "stderr"), pre(r.stderr.join("")));
    }
  } else if (type === "approval_response_message") {
    const approvals = message.approvals?.length ? message.approvals : [{ approve: message.approve, reason: message.reason }];
    for (const a of approvals) {
      const decision = a.type === "tool" ? `client tool result (${orDash(a.status)})` : a.approve ? "approved" : "denied";
      body.push(
        h(
          "div", { class: "approval" },
          badge(decision, a.approve || a.type === "tool" ? "ok" : "bad"), " ", short(a.tool_call_id, 20),
          a.reason ? h("span", null, ` reason: ${a.reason}`) : null,
          a.type === "tool" ? pre(a.tool_return ?? "") : null,
        ),
      );
    }
    body.push(h("div", null, `decided by ${orDash(message.decided_by)}`, event ? ` (${byText(event.by)})` : ""));
  } else {
    body.push(pre(message));
  }
  const kind = summary ? "summary" : type.replace(/_message$/, "");
  return h(
    "article", {
      class: `msg ${kind}`, id: `msg-${message.id}`,
      dataset: { messageId: message.id, type, version: event?.version ?? "" },
    },
    h(
      "header", null,
      h("span", { class: "kind" }, summary ? "summary" : type.replace(/_/g, " ")),
      h("span", { class: "muted" }, time(event?.timestamp || message.date)),
      event
        ? h("span", { class: "muted" }, `v${event.version} · #${event.position} · ${byText(event.by)}`)
        : h("span", { class: "muted" }, facts.eventsRead ? "no event in this stream (a fork's parent's)" : "its event could not be read"),
      differs(message, event),
      short(message.id, 16),
    ),
    body,
  );
}

/** A listed text that is not what its event recorded (the log changed behind the views). */
function differs(message, event) {
  if (!event || !["user_message", "assistant_message"].includes(message.message_type)) return null;
  const stored = event.payload.content;
  if (typeof stored !== "string" || typeof message.content !== "string" || stored === message.content) return null;
  return h("span", { class: "differs", title: stored }, badge(`differs from its event: ${stored.slice(0, 80)}`, "bad"));
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

function runCard(run, facts, cut) {
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

function compactionDetails(c) {
  const p = c.event.payload;
  return h(
    "div", { class: "compaction", dataset: { version: c.event.version } },
    h("div", null, badge("compacted", "info"), ` ${p.trigger} · mode ${orDash(p.settings?.mode)} · model ${orDash(p.model)} · ${p.num_messages_before} → ${p.num_messages_after} messages in context · kept from #${p.keep_from} · v${c.event.version}`),
    h("div", { class: "muted" }, `summarized ${c.summarized.length} message(s) of this stream:`),
    h("ul", { class: "summarized" }, c.summarized.map((e) => h("li", null, h("a", { href: `#msg-${e.payload.message_id}` }, `v${e.version} ${e.payload.message_type}`), " ", gist(e.payload)))),
  );
}

/** A line about a stored message, for lists: its text, or the tools it called or answered. */
function gist(payload) {
  const extra = payload.extra || {};
  if (payload.message_type === "tool_call_message" || payload.message_type === "approval_request_message") {
    return (extra.tool_calls || (extra.tool_call ? [extra.tool_call] : [])).map((c) => c.name).join(", ");
  }
  if (payload.message_type === "tool_return_message") return `${orDash(extra.name)}: ${orDash(extra.status)}`;
  if (payload.message_type === "approval_response_message") {
    return (extra.approvals || []).map((a) => (a.type === "tool" ? "client result" : a.approve ? "approved" : "denied")).join(", ");
  }
  return contentText(payload.content).slice(0, 120);
}

function memoryChangeCard(change) {
  return h(
    "div", { class: "memory-change", dataset: { version: change.event.version } },
    h("header", null, h("span", { class: "kind" }, "memory changed"), h("span", { class: "muted" }, `v${change.event.version} · ${time(change.event.timestamp)} · ${byText(change.event.by)}`)),
    h("div", { class: "muted" }, change.causes.length ? `by tool calls ${change.causes.map((c) => c.payload.extra?.tool_call_id).join(", ")}` : "no memory tool call in this conversation caused it: a block changed through the API, a shared block changed elsewhere, or POST …/recompile"),
    blockDiffs(change, []),
  );
}

function isolatedCard(e) {
  const p = e.payload;
  return h(
    "div", { class: "memory-change", dataset: { version: e.version } },
    h("header", null, h("span", { class: "kind" }, "isolated block edited"), h("span", { class: "muted" }, `v${e.version} · ${p.tool_name} · ${p.tool_call_id} · ${byText(e.by)}`)),
    h("div", { class: "muted" }, `block "${p.label}", before → after (from the event)`),
    diffView(p.before, p.after),
  );
}

function eventsTable(events, checks) {
  const rows = events.map((e, index) => {
    const check = checks[index] || {};
    const mark = (value, good, bad) => (value === null || value === undefined ? h("span", { class: "muted" }, "—") : value ? badge(good, "ok") : badge(bad, "bad"));
    return h(
      "tr", { class: `event${check.recomputed === false || check.linked === false ? " broken" : ""}`, dataset: { version: e.version, position: e.position, recomputed: String(check.recomputed), linked: String(check.linked) } },
      h("td", { class: "num" }, String(e.position)),
      h("td", { class: "num" }, String(e.version)),
      h("td", null, e.type.replace(/^convlog\./, "")),
      h("td", null, time(e.timestamp)),
      h("td", null, e.by ? `${e.by.user_id}${e.by.key_id ? ` · ${e.by.key_id}` : ""}` : "—"),
      h("td", null, short(e.hash), " ", mark(check.recomputed, "hash ok", "hash differs")),
      h("td", null, short(e.previous_hash), " ", mark(check.linked, "linked", "link broken")),
      h("td", null, h("details", null, h("summary", null, "payload"), pre(e.payload), h("div", { class: "muted" }, "stored_state"), pre(e.stored_state))),
    );
  });
  return table(["position", "version", "type", "timestamp", "by", "hash", "previous hash", ""], rows, "events");
}

function auditBanner(audit) {
  if (audit.error) return h("div", { id: "audit", class: "audit unknown", dataset: { verified: "unknown" } }, failure("The audit", audit.error));
  const a = audit.value;
  return h(
    "div", { id: "audit", class: `audit ${a.verified ? "verified" : "tampered"}`, dataset: { verified: String(a.verified) } },
    h("strong", null, a.verified ? "Verified" : "NOT VERIFIED"),
    ` — the server checked ${a.checked} event(s) of this stream against the log's hash chain (GET …/audit); last position checked ${a.position}, log head `,
    short(a.head, 16),
    a.problem ? h("div", null, `Problem at position ${a.problem.position}: ${a.problem.what}`) : null,
  );
}

// -- the page -----------------------------------------------------------------------------------

export async function renderConversation(main, id, params, navigate) {
  const point = pointOf(params);
  const data = await load(id, point);
  const liveEvents = data.events.value || [];
  const liveVersion = liveEvents.length ? liveEvents[liveEvents.length - 1].version : null;
  const shownHeader =
    data.conversation.value?.headers.get("x-as-of-version") ?? data.messages.value?.headers?.get("x-as-of-version");
  let shownVersion = shownHeader ? Number(shownHeader) : null;
  if (shownVersion === null && point.as_of_version) shownVersion = Number(point.as_of_version);
  if (shownVersion === null && point.as_of) {
    // The server named no version (the time is before the conversation): the last event at
    // or before the time, if any (to the millisecond), else nothing.
    const at = Date.parse(/[Zz]|[+-]\d\d:\d\d$/.test(point.as_of) ? point.as_of : `${point.as_of}Z`);
    shownVersion = liveEvents.filter((e) => Date.parse(e.timestamp) <= at).pop()?.version ?? 0;
  }
  const cut = point.as_of_version || point.as_of ? shownVersion : null;
  const events = cut === null ? liveEvents : liveEvents.filter((e) => e.version <= cut);
  const facts = analyse(events);
  facts.eventsRead = Boolean(data.events.value);
  facts.summaryIds = new Set(facts.compactions.map((c) => c.event.payload.summary_message_id));
  facts.compactionBySummary = new Map(facts.compactions.map((c) => [c.event.payload.summary_message_id, c]));

  let runs = data.runs.value || [];
  if (cut !== null && data.events.value) runs = runs.filter((r) => facts.claims.has(r.id));
  else if (cut !== null && events.length) runs = runs.filter((r) => r.created_at <= events[events.length - 1].timestamp);

  // Memory: what each memory tool call changed, by its tool_call_id.
  const memoryByCall = new Map();
  for (const change of facts.recompiles) {
    for (const cause of change.causes) {
      const callId = cause.payload.extra?.tool_call_id;
      const label = parseJSON(findCall(data.messages.value || [], callId)?.arguments ?? "")?.label;
      memoryByCall.set(callId, { change, label });
    }
  }
  for (const e of facts.isolated) memoryByCall.set(e.payload.tool_call_id, { isolated: e });
  const memoryFor = (callId) => {
    const found = memoryByCall.get(callId);
    if (!found) return null;
    if (found.isolated) return h("div", { class: "memory-result" }, isolatedCard(found.isolated));
    return h("div", { class: "memory-result" }, blockDiffs(found.change, found.label ? [found.label] : []));
  };

  // The timeline: messages in order, runs where they were claimed, memory changes and
  // compactions where they happened.
  const timeline = h("div", { id: "timeline" });
  if (data.messages.error) timeline.appendChild(failure("The messages", data.messages.error));
  const pending = [];
  const runsShown = new Set();
  for (const run of runs) {
    const claim = facts.claims.get(run.id);
    if (claim) pending.push({ version: claim.version, node: () => { runsShown.add(run.id); return runCard(run, facts, cut); } });
  }
  for (const change of facts.recompiles) {
    if (!change.causes.length) pending.push({ version: change.event.version, node: () => memoryChangeCard(change) });
  }
  pending.sort((a, b) => a.version - b.version);
  const runById = new Map(runs.map((r) => [r.id, r]));
  const messages = data.messages.value || [];
  for (const message of messages) {
    const event = facts.byMessage.get(message.id);
    while (event && pending.length && pending[0].version < event.version) timeline.appendChild(pending.shift().node());
    if (message.run_id && !runsShown.has(message.run_id) && runById.has(message.run_id)) {
      runsShown.add(message.run_id);
      timeline.appendChild(runCard(runById.get(message.run_id), facts, cut));
    }
    timeline.appendChild(messageCard(message, event, facts, { memoryFor }));
  }
  while (pending.length) timeline.appendChild(pending.shift().node());
  for (const run of runs) if (!runsShown.has(run.id)) timeline.appendChild(runCard(run, facts, cut));

  const conversation = data.conversation.value?.data;
  const title = conversation?.summary || (id.startsWith("agent-") ? "the agent's own context" : "(no summary)");
  const header = h(
    "section", { class: "panel", id: "conversation" },
    h("h1", null, title),
    h(
      "p", { class: "facts" },
      short(id, 40), " · agent ", data.agent ? `${data.agent.name} ` : "", short(conversation?.agent_id || (id.startsWith("agent-") ? id : null), 20),
      conversation ? ` · created ${time(conversation.created_at)} · model ${conversation.model || `the agent's (${orDash(data.agent?.model)})`} · ${conversation.in_context_message_ids.length} message(s) in context` : "",
    ),
    data.conversation.error ? failure("The conversation at this point", data.conversation.error) : null,
    auditBanner(data.audit),
    asOfControl(point, shownVersion, liveVersion, navigate),
    h(
      "nav", { class: "toc" },
      [["timeline-section", "Timeline"], ["runs", "Runs"], ["memory", "Memory edits"], ["approvals", "Approvals"], ["compactions", "Compactions"], ["events", "Events"]]
        .map(([anchor, label]) => h("a", { href: `#${anchor}` }, label)),
    ),
  );

  main.replaceChildren(
    header,
    section("timeline-section", `Timeline (${messages.length} message${messages.length === 1 ? "" : "s"})`, timeline),
    runsSection(runs, data.runs, facts, cut),
    memorySection(facts, messages),
    approvalsSection(messages, facts),
    compactionsSection(facts),
    await eventsSection(events, data.events, liveEvents.length - events.length),
  );
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

function findCall(messages, callId) {
  for (const m of messages) {
    for (const call of m.tool_calls || (m.tool_call ? [m.tool_call] : [])) {
      if (call.tool_call_id === callId) return call;
    }
  }
  return null;
}

function runsSection(runs, loaded, facts, cut) {
  if (loaded.error) return section("runs", "Runs", failure("The runs", loaded.error));
  const rows = runs.map((run) => h(
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
  ));
  const attempts = runs.filter((r) => r.status === "failed" || r.status === "cancelled");
  return section(
    "runs", `Runs (${runs.length})`,
    runs.length ? table(["run", "status", "stop reason", "model", "steps", "tokens", "first token", "duration", "started", "finished"], rows, "runs") : h("p", { class: "muted" }, "No runs."),
    h("h3", null, `Failed and cancelled attempts (${attempts.length})`),
    attempts.length ? attempts.map((r) => runCard(r, facts, cut)) : h("p", { class: "muted", id: "no-failed" }, "None."),
  );
}

function memorySection(facts, messages) {
  const items = [];
  for (const change of facts.recompiles) {
    const calls = change.causes.map((c) => findCall(messages, c.payload.extra?.tool_call_id)).filter(Boolean);
    items.push(h(
      "div", { class: "memory-edit", dataset: { version: change.event.version } },
      h("header", null, h("span", { class: "kind" }, calls.length ? calls.map((c) => c.name).join(", ") : "recompiled"), h("span", { class: "muted" }, `v${change.event.version} · ${time(change.event.timestamp)} · ${byText(change.event.by)}`)),
      calls.map((c) => memoryArguments(c.name, argumentsOf(c))),
      blockDiffs(change, calls.map((c) => argumentsOf(c)?.label).filter(Boolean)),
    ));
  }
  for (const e of facts.isolated) items.push(isolatedCard(e));
  // Memory tool calls that changed nothing (an error result): asked, not done.
  const changed = new Set([...facts.recompiles.flatMap((c) => c.causes.map((e) => e.payload.extra?.tool_call_id)), ...facts.isolated.map((e) => e.payload.tool_call_id)]);
  const refused = [];
  for (const m of messages) {
    if (m.message_type !== "tool_return_message" || !MEMORY_TOOLS.has(m.name) || changed.has(m.tool_call_id)) continue;
    refused.push(h("li", null, badge(orDash(m.status), m.status === "success" ? "ok" : "bad"), ` ${m.name} ${m.tool_call_id}: `, String(m.tool_return ?? "").slice(0, 300)));
  }
  return section(
    "memory", `Memory edits (${items.length})`,
    h("p", { class: "muted" }, "Before/after: each block's value in the system message before and after the recompile its edit caused (SystemMessageRecompiled events), or the IsolatedBlockEdited event's own before/after; the requested change: the tool call's arguments."),
    items.length ? items : h("p", { class: "muted" }, "No memory changes."),
    refused.length ? [h("h3", null, "Memory tool calls that changed nothing"), h("ul", null, refused)] : null,
  );
}

function approvalsSection(messages, facts) {
  const responses = new Map();
  for (const m of messages) {
    if (m.message_type !== "approval_response_message") continue;
    for (const a of m.approvals || []) responses.set(a.tool_call_id, { message: m, approval: a });
  }
  const rows = [];
  for (const m of messages) {
    if (m.message_type !== "approval_request_message") continue;
    for (const call of m.tool_calls || (m.tool_call ? [m.tool_call] : [])) {
      const answer = responses.get(call.tool_call_id);
      const event = answer ? facts.byMessage.get(answer.message.id) : null;
      const a = answer?.approval;
      rows.push(h(
        "tr", { class: "approval-row", dataset: { toolCallId: call.tool_call_id } },
        h("td", null, h("a", { href: `#msg-${m.id}` }, call.name), " ", short(call.tool_call_id, 16)),
        h("td", null, pre(argumentsOf(call))),
        h("td", null, !a ? badge("pending", "warn") : a.type === "tool" ? badge(`client result: ${orDash(a.status)}`, "info") : a.approve ? badge("approved", "ok") : badge("denied", "bad")),
        h("td", null, orDash(a?.reason)),
        h("td", null, answer ? orDash(answer.message.decided_by) : "—"),
        h("td", null, event ? byText(event.by) : "—"),
        h("td", null, event ? `v${event.version} · ${time(event.timestamp)}` : "—"),
      ));
    }
  }
  return section(
    "approvals", `Approvals (${rows.length})`,
    rows.length ? table(["tool call", "arguments", "decision", "reason", "decided by", "recorded", "when"], rows, "approvals") : h("p", { class: "muted" }, "No approval requests."),
  );
}

function compactionsSection(facts) {
  return section(
    "compactions", `Compactions (${facts.compactions.length})`,
    facts.compactions.length
      ? facts.compactions.map((c) => h("div", null, compactionDetails(c), h("div", { class: "muted" }, "summary:"), pre(c.event.payload.summary, "text")))
      : h("p", { class: "muted" }, "No compactions."),
  );
}

async function eventsSection(events, loaded, hidden) {
  if (loaded.error) return section("events", "Events", failure("The events", loaded.error));
  const checks = await recheck(events);
  const differ = checks.filter((c) => c.recomputed === false).length;
  const broken = checks.filter((c) => c.linked === false).length;
  const recomputed = checks.filter((c) => c.recomputed !== null).length;
  return section(
    "events", `Events (${events.length})`,
    h(
      "p", { id: "recheck", dataset: { differ, broken } },
      canRecheck()
        ? `Rechecked in this browser: ${recomputed} hash(es) recomputed from the stored bytes, ${differ} differ; ${broken} broken link(s).`
        : "This browser cannot recompute hashes here (WebCrypto needs https or a loopback address); the server's verdict is above.",
      hidden ? ` ${hidden} later event(s) hidden (as of).` : "",
    ),
    eventsTable(events, checks),
  );
}
