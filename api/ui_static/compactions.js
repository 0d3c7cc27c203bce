// Compactions: each Compacted event's trigger, mode, model, messages before → after, where the
// kept suffix starts and which of this stream's messages it summarized; the section of them.

import { badge, h, orDash, pre, section } from "./dom.js";
import { contentText } from "./values.js";

/** One compaction's details (also under its summary message in the timeline). */
export function compactionDetails(c) {
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

export function compactionsSection(facts) {
  return section(
    "compactions", `Compactions (${facts.compactions.length})`,
    facts.compactions.length
      ? facts.compactions.map((c) => h("div", null, compactionDetails(c), h("div", { class: "muted" }, "summary:"), pre(c.event.payload.summary, "text")))
      : h("p", { class: "muted" }, "No compactions."),
  );
}
