// Reading one conversation from the JSON API, every source in parallel; each part is
// {value} or {error}, so one failing source leaves the rest drawn. Routes: docs/ui.md.

import { all, get, pool } from "./api.js";

function settle(promise) {
  return promise.then((value) => ({ value }), (error) => ({ error }));
}

/** {conversation, messages, events, audit, runs, agent} at `point` ({as_of_version} | {as_of} | {}). */
export async function load(id, point) {
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
  if (runs.value) await runDetails(runs.value);
  const agent = await agentOf(conversation.value?.data.agent_id || (isAgent ? id : null));
  return { conversation, messages, events, audit, runs, agent };
}

/** Each run's steps (model, step count) and usage (tokens), four runs at a time. */
async function runDetails(runs) {
  await pool(runs, 4, async (run) => {
    const path = `/v1/runs/${encodeURIComponent(run.id)}`;
    const [steps, usage] = await Promise.all([
      settle(all(`${path}/steps`, { order: "asc" }, (s) => s.id)),
      settle(get(`${path}/usage`).then((r) => r.data)),
    ]);
    run.steps = steps;
    run.usage = usage;
  });
}

async function agentOf(agentId) {
  if (!agentId) return null;
  return (await settle(get(`/v1/agents/${encodeURIComponent(agentId)}`))).value?.data ?? null;
}
