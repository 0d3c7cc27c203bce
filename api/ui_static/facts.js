// What a conversation's events say, read once for every section: per message its event, per
// run its claim and release, the memory changes (recompiles and isolated block edits) and the
// compactions with the messages each summarized.

const T = "convlog.Conversation.";

export const MEMORY_TOOLS = new Set([
  "memory_insert", "memory_replace", "memory_rethink", "core_memory_append",
  "core_memory_replace",
]);

/**
 * The facts of `events` (those up to the page's version): {byMessage, claims, releases,
 * recompiles, isolated, compactions, eventsRead, summaryIds, compactionBySummary}.
 */
export function factsOf(events, eventsRead) {
  const facts = analyse(events);
  facts.eventsRead = eventsRead;
  facts.summaryIds = new Set(facts.compactions.map((c) => c.event.payload.summary_message_id));
  facts.compactionBySummary = new Map(facts.compactions.map((c) => [c.event.payload.summary_message_id, c]));
  return facts;
}

/** Derived facts: per message its event; per run its claim/release; memory changes; compactions. */
function analyse(events) {
  const state = {
    byMessage: new Map(),
    claims: new Map(), // run id → RunClaimed event
    releases: new Map(), // run id → RunReleased event
    recompiles: [], // {event, before, after, causes: [tool return events]}
    isolated: [], // IsolatedBlockEdited events
    compactions: [], // {event, summarized: [message events]}
    system: null,
    causes: [],
    keyShift: 0,
    forkedAt: null,
    windowFrom: 0,
    ownMessages: [],
  };
  for (const e of events) {
    const read = e.type.startsWith(T) ? READERS[e.type.slice(T.length)] : undefined;
    if (read && e.payload) read(state, e, e.payload); // null: its bytes no longer decode
  }
  const { byMessage, claims, releases, recompiles, isolated, compactions } = state;
  return { byMessage, claims, releases, recompiles, isolated, compactions };
}

// Each conversation event type this page reads, by its name after `convlog.Conversation.`.
const READERS = Object.assign(Object.create(null), {
  MessageAppended(s, e, p) {
    s.byMessage.set(p.message_id, e);
    if (p.role === "system" && s.system === null) s.system = p.content;
    if (p.message_type === "tool_return_message" && MEMORY_TOOLS.has(p.extra?.name)) s.causes.push(e);
    if (p.role !== "system") s.ownMessages.push({ event: e, key: s.forkedAt !== null ? e.version + s.keyShift : e.version });
  },
  SystemMessageRecompiled(s, e, p) {
    s.recompiles.push({ event: e, before: s.system, after: p.content, causes: s.causes });
    s.system = p.content;
    s.causes = [];
  },
  IsolatedBlockEdited(s, e) {
    s.isolated.push(e);
  },
  RunClaimed(s, e, p) {
    s.claims.set(p.run_id, e);
  },
  RunReleased(s, e, p) {
    s.releases.set(p.run_id, e);
  },
  Forked(s, e, p) {
    s.keyShift = p.key_shift || 0;
    s.forkedAt = e.version;
  },
  Compacted(s, e, p) {
    s.byMessage.set(p.summary_message_id, e); // the summary is listed where it was made
    const summarized = s.ownMessages.filter(
      (m) => m.key >= s.windowFrom && m.key < p.keep_from && m.event.payload.message_id !== p.summary_message_id,
    );
    s.compactions.push({ event: e, summarized: summarized.map((m) => m.event) });
    s.windowFrom = p.keep_from;
  },
});
