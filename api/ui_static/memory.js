// Memory edits: what a memory tool call asked (its arguments as removed/added lines) and what
// changed (a block's value in the system message before and after the recompile it caused, or
// an IsolatedBlockEdited event's own before/after); the "Memory edits" section. docs/ui.md.

import { blocksOf, diffView } from "./diff.js";
import { badge, h, orDash, section, time } from "./dom.js";
import { MEMORY_TOOLS } from "./facts.js";
import { argumentsOf, byText, findCall, parseJSON } from "./values.js";

// Which arguments of a memory tool are the text taken out (-) and put in (+).
const MEMORY_ARGUMENTS = {
  memory_insert: { add: "new_string" },
  memory_replace: { remove: "old_string", add: "new_string" },
  memory_rethink: { add: "new_memory" },
  core_memory_append: { add: "content" },
  core_memory_replace: { remove: "old_content", add: "new_content" },
};

/** What a memory tool call asked: its removed and added text as diff lines, or null. */
export function memoryArguments(name, args) {
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

/** The blocks `labels` (or every changed one) before → after a recompile; else the whole prompt. */
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

/** A recompile in the timeline (one no memory tool call of this conversation caused). */
export function memoryChangeCard(change) {
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

/** memoryFor(tool call id) → what that memory tool call changed, as an element, or null. */
export function memoryLookup(facts, messages) {
  const memoryByCall = new Map();
  for (const change of facts.recompiles) {
    for (const cause of change.causes) {
      const callId = cause.payload.extra?.tool_call_id;
      const label = parseJSON(findCall(messages, callId)?.arguments ?? "")?.label;
      memoryByCall.set(callId, { change, label });
    }
  }
  for (const e of facts.isolated) memoryByCall.set(e.payload.tool_call_id, { isolated: e });
  return (callId) => {
    const found = memoryByCall.get(callId);
    if (!found) return null;
    if (found.isolated) return h("div", { class: "memory-result" }, isolatedCard(found.isolated));
    return h("div", { class: "memory-result" }, blockDiffs(found.change, found.label ? [found.label] : []));
  };
}

export function memorySection(facts, messages) {
  const items = facts.recompiles.map((change) => memoryEdit(change, messages));
  for (const e of facts.isolated) items.push(isolatedCard(e));
  const refused = unchanged(facts, messages);
  return section(
    "memory", `Memory edits (${items.length})`,
    h("p", { class: "muted" }, "Before/after: each block's value in the system message before and after the recompile its edit caused (SystemMessageRecompiled events), or the IsolatedBlockEdited event's own before/after; the requested change: the tool call's arguments."),
    items.length ? items : h("p", { class: "muted" }, "No memory changes."),
    refused.length ? [h("h3", null, "Memory tool calls that changed nothing"), h("ul", null, refused)] : null,
  );
}

function memoryEdit(change, messages) {
  const calls = change.causes.map((c) => findCall(messages, c.payload.extra?.tool_call_id)).filter(Boolean);
  return h(
    "div", { class: "memory-edit", dataset: { version: change.event.version } },
    h("header", null, h("span", { class: "kind" }, calls.length ? calls.map((c) => c.name).join(", ") : "recompiled"), h("span", { class: "muted" }, `v${change.event.version} · ${time(change.event.timestamp)} · ${byText(change.event.by)}`)),
    calls.map((c) => memoryArguments(c.name, argumentsOf(c))),
    blockDiffs(change, calls.map((c) => argumentsOf(c)?.label).filter(Boolean)),
  );
}

/** Memory tool calls that changed nothing (an error result): asked, not done; as list items. */
function unchanged(facts, messages) {
  const changed = new Set([...facts.recompiles.flatMap((c) => c.causes.map((e) => e.payload.extra?.tool_call_id)), ...facts.isolated.map((e) => e.payload.tool_call_id)]);
  const refused = [];
  for (const m of messages) {
    if (m.message_type !== "tool_return_message" || !MEMORY_TOOLS.has(m.name) || changed.has(m.tool_call_id)) continue;
    refused.push(h("li", null, badge(orDash(m.status), m.status === "success" ? "ok" : "bad"), ` ${m.name} ${m.tool_call_id}: `, String(m.tool_return ?? "").slice(0, 300)));
  }
  return refused;
}
