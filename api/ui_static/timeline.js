// /ui/conversations/{id} : everything the log says about one conversation, in order, at any
// past version. Where each part comes from is in docs/ui.md. This module draws the page: the
// header, the timeline (messages in order, with runs, memory changes and compactions where
// they happened) and the sections, each from its own module.

import { approvalsSection } from "./approvals.js";
import { asOfControl, pointOf, shownAt } from "./asof.js";
import { compactionsSection } from "./compactions.js";
import { failure, h, orDash, section, short, time } from "./dom.js";
import { auditBanner, eventsSection } from "./events.js";
import { factsOf } from "./facts.js";
import { load } from "./load.js";
import { memoryChangeCard, memoryLookup, memorySection } from "./memory.js";
import { messageCard } from "./messages.js";
import { runCard, runsAt, runsSection } from "./runs.js";

const CONTENTS = [
  ["timeline-section", "Timeline"], ["runs", "Runs"], ["memory", "Memory edits"],
  ["approvals", "Approvals"], ["compactions", "Compactions"], ["events", "Events"],
];

export async function renderConversation(main, id, params, navigate) {
  const point = pointOf(params);
  const data = await load(id, point);
  const at = shownAt(point, data);
  const facts = factsOf(at.events, Boolean(data.events.value));
  const runs = runsAt(data.runs.value || [], facts, at.cut, at.events);
  const messages = data.messages.value || [];
  const timeline = timelineOf(data.messages.error, messages, runs, facts, at.cut);
  const control = asOfControl(point, at.shownVersion, at.liveVersion, navigate);
  main.replaceChildren(
    headerOf(id, data, control),
    section("timeline-section", `Timeline (${messages.length} message${messages.length === 1 ? "" : "s"})`, timeline),
    runsSection(runs, data.runs, facts, at.cut),
    memorySection(facts, messages),
    approvalsSection(messages, facts),
    compactionsSection(facts),
    await eventsSection(at.events, data.events, at.liveEvents.length - at.events.length),
  );
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

/**
 * The timeline: messages in order, runs where they were claimed (else before their first
 * message, else at the end), memory changes no tool call caused where they happened.
 */
function timelineOf(messagesError, messages, runs, facts, cut) {
  const memoryFor = memoryLookup(facts, messages);
  const timeline = h("div", { id: "timeline" });
  if (messagesError) timeline.appendChild(failure("The messages", messagesError));
  const runsShown = new Set();
  const pending = placed(runs, facts, cut, runsShown);
  const runById = new Map(runs.map((r) => [r.id, r]));
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
  return timeline;
}

/** What goes between messages, by version: claimed runs and uncaused recompiles, as thunks. */
function placed(runs, facts, cut, runsShown) {
  const pending = [];
  for (const run of runs) {
    const claim = facts.claims.get(run.id);
    if (claim) pending.push({ version: claim.version, node: () => { runsShown.add(run.id); return runCard(run, facts, cut); } });
  }
  for (const change of facts.recompiles) {
    if (!change.causes.length) pending.push({ version: change.event.version, node: () => memoryChangeCard(change) });
  }
  pending.sort((a, b) => a.version - b.version);
  return pending;
}

function headerOf(id, data, control) {
  const conversation = data.conversation.value?.data;
  const title = conversation?.summary || (id.startsWith("agent-") ? "the agent's own context" : "(no summary)");
  return h(
    "section", { class: "panel", id: "conversation" },
    h("h1", null, title),
    h(
      "p", { class: "facts" },
      short(id, 40), " · agent ", data.agent ? `${data.agent.name} ` : "", short(conversation?.agent_id || (id.startsWith("agent-") ? id : null), 20),
      conversation ? ` · created ${time(conversation.created_at)} · model ${conversation.model || `the agent's (${orDash(data.agent?.model)})`} · ${conversation.in_context_message_ids.length} message(s) in context` : "",
    ),
    data.conversation.error ? failure("The conversation at this point", data.conversation.error) : null,
    auditBanner(data.audit),
    control,
    h("nav", { class: "toc" }, CONTENTS.map(([anchor, label]) => h("a", { href: `#${anchor}` }, label))),
  );
}
