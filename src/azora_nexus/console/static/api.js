// HTTP calls to this Nexus with the signed-in token, and small DOM helpers the views share.

/** A refusal from Nexus: its HTTP status and the `{error: {code, message}}` it sent. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** `get(path, params)` → `{status, body}`; `read(path, params)` → body, or throws ApiError. */
export function createApi(token) {
  async function get(path, params = {}) {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    const response = await fetch(url, {
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
      cache: "no-store",
    });
    const body = await response.json().catch(() => null);
    return { status: response.status, body };
  }

  async function read(path, params) {
    const { status, body } = await get(path, params);
    if (status >= 200 && status < 300) return body;
    const error = body?.error ?? {};
    throw new ApiError(status, error.code ?? "error", error.message ?? `HTTP ${status}`);
  }

  return { get, read };
}

/** An element holding a child node or text (never HTML: the values come from the network). */
export function el(tag, content, attributes = {}) {
  const node = document.createElement(tag);
  if (content instanceof Node) node.append(content);
  else if (content !== undefined && content !== null) node.textContent = String(content);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

/** A `<time>` for an ISO date or epoch milliseconds, shown in the viewer's locale. */
export function timeEl(value, { withDate = true } = {}) {
  const when = new Date(value);
  if (Number.isNaN(when.getTime())) return el("span", "—");
  const shown = withDate ? when.toLocaleString() : when.toLocaleTimeString();
  return el("time", shown, { datetime: when.toISOString() });
}

/** Show `message` in a status line, marking failures so they stand out. */
export function say(target, message, { failed = false } = {}) {
  target.textContent = message;
  target.classList.toggle("error", failed);
}
