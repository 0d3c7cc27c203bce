// A listed message as a timeline card: its type, time and event (version, position, by), a
// body for each message type (text, tool calls and returns, approvals, a compaction summary),
// and a flag when the listed text is not what its event recorded.

import { compactionDetails } from "./compactions.js";
import { badge, h, orDash, pre, short, time } from "./dom.js";
import { MEMORY_TOOLS } from "./facts.js";
import { memoryArguments } from "./memory.js";
import { argumentsOf, byText, contentText, parseJSON } from "./values.js";

/** `extras.memoryFor(tool call id)`: what a memory tool call changed (memory.js). */
export function messageCard(message, event, facts, extras) {
  const type = message.message_type;
  const summary = message.role === "summary" || facts.summaryIds.has(message.id);
  const body = bodyOf(message, event, facts, extras, summary);
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

function bodyOf(message, event, facts, extras, summary) {
  const type = message.message_type;
  if (type === "system_message") return systemBody(message);
  if (type === "user_message" && summary) return summaryBody(message, facts);
  if (type === "user_message" || type === "assistant_message") return [pre(contentText(message.content), "text")];
  if (type === "reasoning_message") return [pre(message.reasoning ?? "", "text reasoning")];
  if (type === "hidden_reasoning_message") return [h("p", { class: "muted" }, `hidden reasoning (${orDash(message.state)})`)];
  if (type === "tool_call_message" || type === "approval_request_message") return callsBody(message, extras);
  if (type === "tool_return_message") return returnsBody(message);
  if (type === "approval_response_message") return responseBody(message, event);
  return [pre(message)];
}

function systemBody(message) {
  const text = contentText(message.content);
  return [h("details", null, h("summary", null, `system prompt (${text.length} characters)`), pre(text))];
}

function summaryBody(message, facts) {
  const packed = parseJSON(contentText(message.content));
  const compaction = facts.compactionBySummary.get(message.id);
  return [
    h("div", { class: "muted" }, "compaction summary (what the model reads in place of the messages before it)"),
    pre(packed?.message ?? contentText(message.content)),
    compaction ? compactionDetails(compaction) : null,
  ];
}

function callsBody(message, extras) {
  const calls = message.tool_calls?.length ? message.tool_calls : message.tool_call ? [message.tool_call] : [];
  const body = [];
  if (message.message_type === "approval_request_message") body.push(h("p", null, badge("approval requested", "warn")));
  for (const call of calls) body.push(toolCall(call, extras.memoryFor(call.tool_call_id)));
  return body;
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

function returnsBody(message) {
  const returns = message.tool_returns?.length ? message.tool_returns : [message];
  const body = [];
  for (const r of returns) {
    body.push(h("div", null, badge(orDash(r.status), r.status === "success" ? "ok" : "bad"), " ", message.name || "", " ", short(r.tool_call_id, 20)));
    body.push(pre(r.tool_return ?? "", "text"));
    if (r.stdout?.length) body.push(h("div", { class: "muted" }, "stdout"), pre(r.stdout.join("")));
    if (r.stderr?.length) body.push(h("div", { class: "muted" }, "stderr"), pre(r.stderr.join("")));
  }
  return body;
}

function responseBody(message, event) {
  const approvals = message.approvals?.length ? message.approvals : [{ approve: message.approve, reason: message.reason }];
  const body = approvals.map((a) => {
    const decision = a.type === "tool" ? `client tool result (${orDash(a.status)})` : a.approve ? "approved" : "denied";
    return h(
      "div", { class: "approval" },
      badge(decision, a.approve || a.type === "tool" ? "ok" : "bad"), " ", short(a.tool_call_id, 20),
      a.reason ? h("span", null, ` reason: ${a.reason}`) : null,
      a.type === "tool" ? pre(a.tool_return ?? "") : null,
    );
  });
  body.push(h("div", null, `decided by ${orDash(message.decided_by)}`, event ? ` (${byText(event.by)})` : ""));
  return body;
}

/** A listed text that is not what its event recorded (the log changed behind the views). */
function differs(message, event) {
  if (!event || !["user_message", "assistant_message"].includes(message.message_type)) return null;
  const stored = event.payload.content;
  if (typeof stored !== "string" || typeof message.content !== "string" || stored === message.content) return null;
  return h("span", { class: "differs", title: stored }, badge(`differs from its event: ${stored.slice(0, 80)}`, "bad"));
}
