// The API's values read as text, for every part of the conversation page: a message's
// content, a tool call's arguments, the call with a given id, who recorded an event.

export function parseJSON(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A message's content (a string, or parts: text, images, anything else) as one text. */
export function contentText(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (part?.type === "text" ? part.text : part?.type === "image" ? `[image: ${JSON.stringify(part.source ?? {})}]` : JSON.stringify(part)))
      .join("\n");
  }
  return content === null || content === undefined ? "" : JSON.stringify(content, null, 2);
}

/** A tool call's arguments, parsed when they are JSON, else the text as sent. */
export function argumentsOf(call) {
  return parseJSON(call.arguments) ?? call.arguments;
}

/** The tool call with this id among the messages' calls, or null. */
export function findCall(messages, callId) {
  for (const m of messages) {
    for (const call of m.tool_calls || (m.tool_call ? [m.tool_call] : [])) {
      if (call.tool_call_id === callId) return call;
    }
  }
  return null;
}

/** An event's `by`: the user and key that recorded it. */
export function byText(by) {
  if (!by) return "who: not recorded (before 0.4.0)";
  const key = by.key_id ? `key ${by.key_id}` : "no key";
  return `by ${by.user_id} · ${key}`;
}
