// Verification: the server's verdict on the hash chain (GET …/audit) as a banner, and the
// "Events" section: every event with its hashes, rechecked in this browser (chain.js).

import { recheck, canRecheck } from "./chain.js";
import { badge, failure, h, pre, section, short, table, time } from "./dom.js";

/** The server's verdict (always the live log's): verified, or the first bad position and why. */
export function auditBanner(audit) {
  if (audit.error) return h("div", { id: "audit", class: "audit unknown", dataset: { verified: "unknown" } }, failure("The audit", audit.error));
  const a = audit.value;
  return h(
    "div", { id: "audit", class: `audit ${a.verified ? "verified" : "tampered"}`, dataset: { verified: String(a.verified) } },
    h("strong", null, a.verified ? "Verified" : "NOT VERIFIED"),
    ` — the server checked ${a.checked} event(s) of this stream against the log's hash chain (GET …/audit); last position checked ${a.position}, log head `,
    short(a.head, 16),
    a.problem ? h("div", null, `Problem at position ${a.problem.position}: ${a.problem.what}`) : null,
  );
}

/** The events up to the page's version (`hidden`: how many later ones are left out). */
export async function eventsSection(events, loaded, hidden) {
  if (loaded.error) return section("events", "Events", failure("The events", loaded.error));
  const checks = await recheck(events);
  const differ = checks.filter((c) => c.recomputed === false).length;
  const broken = checks.filter((c) => c.linked === false).length;
  const recomputed = checks.filter((c) => c.recomputed !== null).length;
  return section(
    "events", `Events (${events.length})`,
    h(
      "p", { id: "recheck", dataset: { differ, broken } },
      canRecheck()
        ? `Rechecked in this browser: ${recomputed} hash(es) recomputed from the stored bytes, ${differ} differ; ${broken} broken link(s).`
        : "This browser cannot recompute hashes here (WebCrypto needs https or a loopback address); the server's verdict is above.",
      hidden ? ` ${hidden} later event(s) hidden (as of).` : "",
    ),
    eventsTable(events, checks),
  );
}

function eventsTable(events, checks) {
  const rows = events.map((e, index) => eventRow(e, checks[index] || {}));
  return table(["position", "version", "type", "timestamp", "by", "hash", "previous hash", ""], rows, "events");
}

function eventRow(e, check) {
  return h(
    "tr", { class: `event${check.recomputed === false || check.linked === false ? " broken" : ""}`, dataset: { version: e.version, position: e.position, recomputed: String(check.recomputed), linked: String(check.linked) } },
    h("td", { class: "num" }, String(e.position)),
    h("td", { class: "num" }, String(e.version)),
    h("td", null, e.type.replace(/^convlog\./, "")),
    h("td", null, time(e.timestamp)),
    h("td", null, e.by ? `${e.by.user_id}${e.by.key_id ? ` · ${e.by.key_id}` : ""}` : "—"),
    h("td", null, short(e.hash), " ", mark(check.recomputed, "hash ok", "hash differs")),
    h("td", null, short(e.previous_hash), " ", mark(check.linked, "linked", "link broken")),
    h("td", null, h("details", null, h("summary", null, "payload"), pre(e.payload), h("div", { class: "muted" }, "stored_state"), pre(e.stored_state))),
  );
}

/** A check's outcome: not made (—), held, or failed. */
function mark(value, good, bad) {
  return value === null || value === undefined ? h("span", { class: "muted" }, "—") : value ? badge(good, "ok") : badge(bad, "bad");
}
