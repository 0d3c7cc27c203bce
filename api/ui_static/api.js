// The JSON API, called with the key the user gave (kept in this tab's sessionStorage only).

const KEY = "convlog.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, detail, path) {
    super(`${status} from ${path}: ${detail}`);
    this.status = status;
    this.detail = detail;
    this.path = path;
  }
}

function url(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value === null || value === undefined || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) query.append(name, String(one));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** GET a JSON resource: {data, headers}. A non-2xx answer throws an ApiError. */
export async function get(path, params) {
  const headers = { accept: "application/json" };
  const key = apiKey();
  if (key) headers.authorization = `Bearer ${key}`;
  const target = url(path, params);
  const response = await fetch(target, { headers, credentials: "omit", cache: "no-store" });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? body);
    } catch {
      // not JSON: keep the status text
    }
    throw new ApiError(response.status, detail, path);
  }
  return { data: await response.json(), headers: response.headers };
}

/**
 * Every item of a cursor-paged list: pages of `limit`, the next one `after` the cursor of the
 * last item, until a short page (or `most` items).
 */
export async function all(path, params, cursorOf, { limit = 100, most = 100000 } = {}) {
  const found = [];
  let after = params.after;
  for (;;) {
    const { data, headers } = await get(path, { ...params, limit, after });
    found.headers ??= headers; // the first page's (time travel names its version there)
    found.push(...data);
    if (data.length < limit || found.length >= most) return found;
    after = cursorOf(data[data.length - 1]);
  }
}

/** Run `work` over `items`, at most `width` at a time (the page must not flood the server). */
export async function pool(items, width, work) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return results;
}
