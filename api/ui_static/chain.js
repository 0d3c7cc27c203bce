// Rechecking the hash chain in the browser, independently of the server's own audit:
// stream hash = sha256(previous_hash ‖ stream id (16 bytes) ‖ version (8 bytes, big endian)
// ‖ len(type) (4 bytes, big endian) ‖ type ‖ stored_state)   (service/chain.py)

function bytesOfHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function hexOf(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Whether this page can hash (WebCrypto needs a secure context: https, or loopback). */
export function canRecheck() {
  return Boolean(globalThis.crypto && crypto.subtle && globalThis.isSecureContext);
}

export async function streamHash(event) {
  const encoder = new TextEncoder();
  const type = encoder.encode(event.type);
  const state = encoder.encode(event.stored_state);
  const parts = [
    bytesOfHex(event.previous_hash),
    bytesOfHex(event.stream_id.replaceAll("-", "")),
    new Uint8Array(8),
    new Uint8Array(4),
    type,
    state,
  ];
  new DataView(parts[2].buffer).setBigUint64(0, BigInt(event.version));
  new DataView(parts[3].buffer).setUint32(0, type.length);
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return hexOf(await crypto.subtle.digest("SHA-256", joined));
}

/**
 * For each event (in version order): {recomputed: true|false|null, linked: true|false|null}.
 * `recomputed`: its hash is what its stored bytes and previous_hash give (null: no hash, or
 * this page cannot hash). `linked`: its previous_hash is the hash of the event before it in
 * the list (null for the first one listed when the list does not start at version 1).
 */
export async function recheck(events) {
  const hashing = canRecheck();
  const out = [];
  let before = null;
  for (const event of events) {
    let recomputed = null;
    if (hashing && event.hash && event.previous_hash) {
      recomputed = (await streamHash(event)) === event.hash;
    }
    let linked = null;
    if (event.previous_hash) {
      if (event.version === 1) linked = /^0+$/.test(event.previous_hash);
      else if (before && before.version === event.version - 1) {
        linked = before.hash === event.previous_hash;
      } else if (before) linked = false; // a version is missing from the list
    }
    out.push({ recomputed, linked });
    before = event;
  }
  return out;
}
