// The TypeScript SDK against convlog: an agent, a conversation, a streamed send, the listing.
// Prints one JSON object for the Python test to check. Usage: node sdk_smoke.mjs BASE_URL
import Letta from "@letta-ai/letta-client";

const client = new Letta({ baseURL: process.argv[2], apiKey: "unused" });
const agent = await client.agents.create({
  name: "ts-sdk",
  model: "openai/gpt-fake",
  memory_blocks: [{ label: "human", value: "Name: Ada" }],
});
const conversation = await client.conversations.create({ agent_id: agent.id });
const stream = await client.conversations.messages.create(conversation.id, {
  messages: [{ role: "user", content: "hello from typescript" }],
  stream_tokens: true,
});
const streamed = [];
let text = "";
for await (const chunk of stream) {
  streamed.push(chunk.message_type);
  if (chunk.message_type === "assistant_message") text += chunk.content;
}
const listed = [];
for await (const message of client.conversations.messages.list(conversation.id, { order: "asc" })) {
  listed.push(message.message_type);
}
const agents = [];
for await (const found of client.agents.list()) agents.push(found.id);
const health = await client.health();
console.log(JSON.stringify({ agent: agent.id, agents, conversation: conversation.id, streamed, text, listed, health }));
