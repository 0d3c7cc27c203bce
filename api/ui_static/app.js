// The page's entry: which page the address names, and the API key when the server wants one.

import { ApiError, apiKey, setApiKey } from "./api.js";
import { h } from "./dom.js";
import { renderList } from "./list.js";
import { renderConversation } from "./timeline.js";

const main = document.getElementById("main");
const forget = document.getElementById("forget-key");

forget.addEventListener("click", () => {
  setApiKey(null);
  route();
});

function keyForm(refused) {
  const input = h("input", {
    id: "api-key", type: "password", autocomplete: "off", spellcheck: "false", required: true,
    placeholder: "sk-convlog-…", "aria-label": "API key",
  });
  const form = h(
    "form", {
      id: "key-form", class: "panel",
      onsubmit: (event) => {
        event.preventDefault();
        setApiKey(input.value.trim());
        route();
      },
    },
    h("h2", null, "This server wants an API key"),
    refused
      ? h("p", { class: "error", id: "key-refused" }, "That key was refused (unknown or revoked).")
      : h("p", null, "Authentication is required here (CONVLOG_AUTH=required)."),
    h("p", { class: "muted" }, "The key stays in this tab's sessionStorage only, and is sent as Authorization: Bearer … to this server's JSON API. Keys are made with: convlog keys create --organization NAME"),
    h("label", { for: "api-key" }, "API key "), input, " ",
    h("button", { type: "submit" }, "Use this key"),
  );
  main.replaceChildren(form);
  input.focus();
}

function navigateConversation(id) {
  return (point) => {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(point)) if (value) query.set(name, String(value));
    const text = query.toString();
    history.pushState(null, "", `/ui/conversations/${encodeURIComponent(id)}${text ? `?${text}` : ""}`);
    route();
  };
}

let current = 0;

async function route() {
  const mine = ++current;
  document.body.dataset.state = "loading";
  forget.hidden = !apiKey();
  const path = location.pathname;
  const params = new URLSearchParams(location.search);
  const target = document.createElement("div");
  target.id = "page";
  try {
    const conversation = path.match(/^\/ui\/conversations\/([^/]+)\/?$/);
    if (conversation) {
      const id = decodeURIComponent(conversation[1]);
      document.title = `convlog · ${id}`;
      await renderConversation(target, id, params, navigateConversation(id));
    } else {
      document.title = "convlog · conversations";
      await renderList(target, params);
    }
    if (mine === current) {
      main.replaceChildren(...target.childNodes);
      document.body.dataset.state = "ready";
    }
  } catch (error) {
    if (mine !== current) return;
    if (error instanceof ApiError && error.status === 401) {
      keyForm(Boolean(apiKey()));
      document.body.dataset.state = "key";
      return;
    }
    main.replaceChildren(
      h(
        "section", { class: "panel" },
        h("h2", null, error instanceof ApiError && error.status === 404 ? "Not found" : "Something went wrong"),
        h("p", { class: "error", id: "page-error" }, String(error.message || error)),
        h("p", null, h("a", { href: "/ui/" }, "Back to the conversations")),
      ),
    );
    document.body.dataset.state = "error";
  }
}

addEventListener("popstate", route);
route();
