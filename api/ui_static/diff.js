// Before/after of memory: a line diff, and a block's value read out of a compiled system
// message (the <label>…<value>…</value>…</label> sections convlog renders, as Letta does).

import { h } from "./dom.js";

const MOST_CELLS = 4_000_000; // past this, show the two texts whole instead of a diff

/** [{op: " " | "-" | "+", line}] turning `before` into `after` (longest common subsequence). */
export function lineDiff(before, after) {
  const a = before.split("\n");
  const b = after.split("\n");
  if (a.length * b.length > MOST_CELLS) {
    return [...a.map((line) => ({ op: "-", line })), ...b.map((line) => ({ op: "+", line }))];
  }
  const width = b.length + 1;
  const lcs = new Uint32Array((a.length + 1) * width);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i * width + j] =
        a[i] === b[j]
          ? lcs[(i + 1) * width + j + 1] + 1
          : Math.max(lcs[(i + 1) * width + j], lcs[i * width + j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      out.push({ op: " ", line: a[i] });
      i++;
      j++;
    } else if (lcs[(i + 1) * width + j] >= lcs[i * width + j + 1]) {
      out.push({ op: "-", line: a[i++] });
    } else {
      out.push({ op: "+", line: b[j++] });
    }
  }
  while (i < a.length) out.push({ op: "-", line: a[i++] });
  while (j < b.length) out.push({ op: "+", line: b[j++] });
  return out;
}

/** The diff as an element; unchanged runs longer than 2 * context lines are folded. */
export function diffView(before, after, context = 3) {
  const lines = lineDiff(before, after);
  const changed = lines.map((l) => l.op !== " ");
  const near = lines.map((_, index) => {
    for (let k = Math.max(0, index - context); k <= Math.min(lines.length - 1, index + context); k++) {
      if (changed[k]) return true;
    }
    return false;
  });
  const rows = [];
  let folded = 0;
  lines.forEach((l, index) => {
    if (!near[index]) {
      folded++;
      return;
    }
    if (folded) rows.push(h("div", { class: "diff-fold" }, `… ${folded} unchanged lines`));
    folded = 0;
    const cls = l.op === "-" ? "diff-del" : l.op === "+" ? "diff-add" : "diff-same";
    rows.push(h("div", { class: cls }, `${l.op} ${l.line}`));
  });
  if (folded) rows.push(h("div", { class: "diff-fold" }, `… ${folded} unchanged lines`));
  if (!changed.some(Boolean)) rows.push(h("div", { class: "diff-fold" }, "(no change)"));
  return h("div", { class: "diff" }, rows);
}

/** Each memory block's value in a compiled system message: {label: value}. */
export function blocksOf(system) {
  const found = {};
  if (typeof system !== "string") return found;
  const start = system.indexOf("<memory_blocks>");
  const end = system.indexOf("</memory_blocks>");
  if (start < 0 || end < 0) return found;
  const body = system.slice(start, end);
  const opening = /^<([A-Za-z0-9_.\-/]+)>$/gm;
  let match;
  while ((match = opening.exec(body)) !== null) {
    const label = match[1];
    if (["description", "metadata", "value"].includes(label)) continue;
    const close = body.indexOf(`\n</${label}>`, match.index);
    if (close < 0) continue;
    const section = body.slice(match.index, close);
    const v0 = section.indexOf("<value>\n");
    const v1 = section.lastIndexOf("\n</value>");
    if (v0 >= 0 && v1 >= v0) found[label] = section.slice(v0 + "<value>\n".length, v1);
    opening.lastIndex = close;
  }
  return found;
}
