// /ui/ : the conversations, with search by summary and by agent.

import { all, get } from "./api.js";
import { h, section, short, table, time } from "./dom.js";

const PAGE = 50;

export function conversationHref(id) {
  return `/ui/conversations/${encodeURIComponent(id)}`;
}

async function agentNames() {
  try {
    const agents = await all("/v1/agents/", {}, (a) => a.id, { limit: 100, most: 1000 });
    return new Map(agents.map((a) => [a.id, a.name]));
  } catch (error) {
    if (error.status === 401) throw error;
    return new Map(); // names are a convenience; the list works without them
  }
}

export async function renderList(main, params) {
  const search = params.get("summary_search") || "";
  const agentId = params.get("agent_id") || "";
  const orderBy = params.get("order_by") || "created_at";
  const query = { summary_search: search, agent_id: agentId, order_by: orderBy, order: "desc" };
  const [names, first] = await Promise.all([
    agentNames(),
    get("/v1/conversations/", { ...query, limit: PAGE }),
  ]);

  const searchBox = h("input", {
    id: "search", name: "summary_search", type: "search", value: search,
    placeholder: "summary contains…", "aria-label": "Search summaries", spellcheck: "false",
  });
  const agentSelect = h(
    "select", { id: "agent-filter", name: "agent_id", "aria-label": "Agent" },
    h("option", { value: "" }, "every agent"),
    [...names].map(([id, name]) => {
      const option = h("option", { value: id }, `${name} (${id})`);
      option.selected = id === agentId;
      return option;
    }),
  );
  const orderSelect = h(
    "select", { id: "order-by", name: "order_by", "aria-label": "Order" },
    ["created_at", "last_message_at", "last_run_completion"].map((value) => {
      const option = h("option", { value }, `newest by ${value}`);
      option.selected = value === orderBy;
      return option;
    }),
  );
  const form = h(
    "form", {
      id: "search-form", class: "controls",
      onsubmit: (event) => {
        event.preventDefault();
        const next = new URLSearchParams();
        if (searchBox.value) next.set("summary_search", searchBox.value);
        if (agentSelect.value) next.set("agent_id", agentSelect.value);
        if (orderSelect.value !== "created_at") next.set("order_by", orderSelect.value);
        const text = next.toString();
        history.pushState(null, "", `/ui/${text ? `?${text}` : ""}`);
        dispatchEvent(new PopStateEvent("popstate"));
      },
    },
    searchBox, agentSelect, orderSelect, h("button", { type: "submit" }, "Search"),
  );

  const openBox = h("input", {
    id: "open-id", type: "text", placeholder: "conv-… or agent-…", spellcheck: "false",
    "aria-label": "Conversation or agent id",
  });
  const open = h(
    "form", {
      class: "controls",
      onsubmit: (event) => {
        event.preventDefault();
        const id = openBox.value.trim();
        if (id) location.assign(conversationHref(id));
      },
    },
    h("label", { for: "open-id" }, "Open by id (an agent id opens its own context):"),
    openBox, h("button", { type: "submit" }, "Open"),
  );

  const rows = h("tbody", { id: "conversation-rows" });
  const more = h("button", { type: "button", id: "more" }, "More");
  let last = first.data;
  const addRows = (conversations) => {
    for (const c of conversations) {
      rows.appendChild(
        h(
          "tr", { class: "conversation", dataset: { id: c.id } },
          h("td", null, h("a", { href: conversationHref(c.id) }, c.summary || "(no summary)")),
          h("td", null, short(c.id, 17)),
          h("td", null, names.get(c.agent_id) || "", " ", short(c.agent_id, 12)),
          h("td", null, time(c.created_at)),
          h("td", null, time(c.last_message_at)),
          h("td", { class: "num" }, String(c.in_context_message_ids.length)),
        ),
      );
    }
    more.hidden = conversations.length < PAGE;
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    const after = last[last.length - 1].id;
    last = (await get("/v1/conversations/", { ...query, limit: PAGE, after })).data;
    addRows(last);
    more.disabled = false;
  });
  addRows(first.data);

  const headers = ["summary", "id", "agent", "created", "last message", "in context"];
  const listing = table(headers, [], "list");
  listing.replaceChild(rows, listing.querySelector("tbody"));
  main.replaceChildren(
    section(
      "conversations", "Conversations",
      form, open,
      first.data.length ? listing : h("p", { class: "muted", id: "none" }, "No conversations match."),
      more,
      h("p", { class: "muted" }, "Summaries are matched literally (GET /v1/conversations/?summary_search=…)."),
    ),
  );
}
