// As of a past version: the point the page's query names, the version the page is drawn at
// (and where the events are cut), and the control that moves it (docs/ui.md, "As of").

import { h, orDash } from "./dom.js";

/** The point the page is drawn at, from its query: {as_of_version} | {as_of} | {}. */
export function pointOf(params) {
  const version = params.get("as_of_version");
  if (version) return { as_of_version: version };
  const at = params.get("as_of");
  if (at) return { as_of: at };
  return {};
}

/**
 * Where the loaded data is drawn: {liveEvents, liveVersion, shownVersion, cut, events}, where
 * `cut` is the version the events are cut at (null when live) and `events` those up to it.
 */
export function shownAt(point, data) {
  const liveEvents = data.events.value || [];
  const liveVersion = liveEvents.length ? liveEvents[liveEvents.length - 1].version : null;
  const shownVersion = shownVersionOf(point, data, liveEvents);
  const cut = point.as_of_version || point.as_of ? shownVersion : null;
  const events = cut === null ? liveEvents : liveEvents.filter((e) => e.version <= cut);
  return { liveEvents, liveVersion, shownVersion, cut, events };
}

function shownVersionOf(point, data, liveEvents) {
  const shownHeader =
    data.conversation.value?.headers.get("x-as-of-version") ?? data.messages.value?.headers?.get("x-as-of-version");
  if (shownHeader) return Number(shownHeader);
  if (point.as_of_version) return Number(point.as_of_version);
  if (!point.as_of) return null;
  // The server named no version (the time is before the conversation): the last event at
  // or before the time, if any (to the millisecond), else nothing.
  const at = Date.parse(/[Zz]|[+-]\d\d:\d\d$/.test(point.as_of) ? point.as_of : `${point.as_of}Z`);
  return liveEvents.filter((e) => Date.parse(e.timestamp) <= at).pop()?.version ?? 0;
}

/** The control under the header: a version (slider and number) or a time, and "Live". */
export function asOfControl(point, shownVersion, liveVersion, navigate) {
  return h(
    "div", { class: "as-of", id: "as-of" },
    versionForm(point, shownVersion, liveVersion, navigate),
    timeForm(point, navigate),
    asOfStatus(point, shownVersion, liveVersion),
  );
}

function versionForm(point, shownVersion, liveVersion, navigate) {
  const version = point.as_of_version || shownVersion || liveVersion || "";
  const slider = h("input", {
    id: "as-of-slider", type: "range", min: 1, max: liveVersion || version || 1, step: 1,
    value: version || 1, "aria-label": "Version", hidden: !liveVersion, // no events: no range
  });
  const number = h("input", {
    id: "as-of-version", type: "number", min: 1, max: liveVersion || null, step: 1, value: version,
    "aria-label": "As of version", required: true,
  });
  slider.addEventListener("input", () => { number.value = slider.value; });
  slider.addEventListener("change", () => navigate({ as_of_version: slider.value }));
  number.addEventListener("input", () => { slider.value = number.value; });
  return h(
    "form", {
      id: "as-of-version-form", class: "controls",
      onsubmit: (event) => { event.preventDefault(); navigate({ as_of_version: number.value }); },
    },
    h("label", { for: "as-of-version" }, "As of version"), slider, number,
    h("button", { type: "submit", id: "as-of-apply" }, "Show"),
  );
}

function timeForm(point, navigate) {
  const timeInput = h("input", {
    id: "as-of-time", type: "datetime-local", step: 0.001, "aria-label": "As of time (UTC)",
  });
  if (point.as_of) timeInput.value = point.as_of.replace(/Z$/, "").slice(0, 23);
  return h(
    "form", {
      id: "as-of-time-form", class: "controls",
      onsubmit: (event) => {
        event.preventDefault();
        if (timeInput.value) navigate({ as_of: timeInput.value });
      },
    },
    h("label", { for: "as-of-time" }, "or time (UTC)"), timeInput,
    h("button", { type: "submit", id: "as-of-time-apply" }, "Show"),
    h("button", { type: "button", id: "as-of-live", onclick: () => navigate({}) }, "Live"),
  );
}

function asOfStatus(point, shownVersion, liveVersion) {
  const live = !point.as_of_version && !point.as_of;
  return h(
    "p", { id: "as-of-status", dataset: { version: shownVersion ?? "", live: String(live) } },
    live
      ? `Live: the latest version${liveVersion ? ` (${liveVersion})` : ""}.`
      : (shownVersion === 0 ? "Before the conversation existed" : `As of version ${orDash(shownVersion)}${liveVersion ? ` of ${liveVersion}` : ""}`) +
        (point.as_of && shownVersion !== 0 ? ` (the last one at or before ${point.as_of} UTC)` : "") +
        ": messages and the conversation are the server's time-travel answer; runs, events and" +
        " everything drawn from events are cut at that version here.",
  );
}
