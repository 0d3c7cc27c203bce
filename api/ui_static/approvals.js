// Approvals: each requested tool call with its decision (approved, denied, or a client tool's
// result), the reason, who decided, and the response's event (its `by`, version and time).

import { badge, h, orDash, pre, section, short, table, time } from "./dom.js";
import { argumentsOf, byText } from "./values.js";

export function approvalsSection(messages, facts) {
  const responses = responsesByCall(messages);
  const rows = [];
  for (const m of messages) {
    if (m.message_type !== "approval_request_message") continue;
    for (const call of m.tool_calls || (m.tool_call ? [m.tool_call] : [])) {
      rows.push(approvalRow(m, call, responses.get(call.tool_call_id), facts));
    }
  }
  return section(
    "approvals", `Approvals (${rows.length})`,
    rows.length ? table(["tool call", "arguments", "decision", "reason", "decided by", "recorded", "when"], rows, "approvals") : h("p", { class: "muted" }, "No approval requests."),
  );
}

/** tool call id → {message, approval}: the response that answered it. */
function responsesByCall(messages) {
  const responses = new Map();
  for (const m of messages) {
    if (m.message_type !== "approval_response_message") continue;
    for (const a of m.approvals || []) responses.set(a.tool_call_id, { message: m, approval: a });
  }
  return responses;
}

function approvalRow(request, call, answer, facts) {
  const event = answer ? facts.byMessage.get(answer.message.id) : null;
  const a = answer?.approval;
  return h(
    "tr", { class: "approval-row", dataset: { toolCallId: call.tool_call_id } },
    h("td", null, h("a", { href: `#msg-${request.id}` }, call.name), " ", short(call.tool_call_id, 16)),
    h("td", null, pre(argumentsOf(call))),
    h("td", null, decision(a)),
    h("td", null, orDash(a?.reason)),
    h("td", null, answer ? orDash(answer.message.decided_by) : "—"),
    h("td", null, event ? byText(event.by) : "—"),
    h("td", null, event ? `v${event.version} · ${time(event.timestamp)}` : "—"),
  );
}

function decision(a) {
  if (!a) return badge("pending", "warn");
  if (a.type === "tool") return badge(`client result: ${orDash(a.status)}`, "info");
  return a.approve ? badge("approved", "ok") : badge("denied", "bad");
}
