// Building the page without markup strings: every piece of data becomes a text node (or a
// textContent), never HTML. The page's CSP requires Trusted Types, so an innerHTML
// assignment would throw anyway.

const ATTRIBUTES = new Set([
  "id", "class", "href", "title", "type", "name", "value", "min", "max", "step",
  "placeholder", "for", "autocomplete", "role", "colspan", "open", "hidden", "disabled",
  "aria-label", "aria-live", "spellcheck", "required",
]);

/**
 * h("p", {class: "x", onclick: f, dataset: {version: 3}}, "text", child, [more]) → element.
 * Strings and numbers become text nodes; null, undefined and false are skipped.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "dataset") {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (ATTRIBUTES.has(key) || key.startsWith("data-")) {
      if (key === "href") el.setAttribute(key, safeHref(String(value)));
      else el.setAttribute(key, value === true ? "" : String(value));
    } else {
      throw new Error(`h(): unexpected property ${key}`);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Links stay on this origin, under /ui/ (ids in them are encoded by the caller). */
function safeHref(href) {
  return href.startsWith("/ui/") || href.startsWith("#") ? href : "#";
}

/** Preformatted text: JSON values are pretty-printed, strings kept as they are. */
export function pre(value, cls) {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return h("pre", { class: cls || null }, text ?? "");
}

/** A value that may be missing: an em dash. */
export function orDash(value) {
  return value === null || value === undefined || value === "" ? "—" : String(value);
}

export function badge(text, kind) {
  return h("span", { class: `badge ${kind || ""}`.trim() }, text);
}

/** A short form of a long id or hash, the whole in its title. */
export function short(text, keep = 12) {
  if (!text) return h("span", { class: "muted" }, "—");
  const s = String(text);
  return h("code", { title: s }, s.length > keep + 1 ? `${s.slice(0, keep)}…` : s);
}

export function time(iso) {
  if (!iso) return "—";
  return String(iso).replace("T", " ").replace(/(\.\d{3})\d*/, "$1");
}

export function ms(ns) {
  if (ns === null || ns === undefined) return "—";
  return `${(Number(ns) / 1e6).toFixed(1)} ms`;
}

export function section(id, title, ...children) {
  return h("section", { id, class: "panel" }, h("h2", null, title), ...children);
}

export function table(headers, rows, cls) {
  return h(
    "table",
    { class: cls || null },
    h("thead", null, h("tr", null, headers.map((t) => h("th", null, t)))),
    h("tbody", null, rows),
  );
}

/** A part of the page whose source could not be read: says so, with the error. */
export function failure(what, error) {
  return h("p", { class: "error" }, `${what} could not be read: ${error.status ?? ""} ${error.detail ?? error.message}`);
}
