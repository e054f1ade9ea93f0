// The public API on this origin: a short-lived token (never the API key) in sessionStorage.

export const BASE = "/api/v1";
const SESSION = "llmsafespace.console.session";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

function saved() {
  const session = JSON.parse(sessionStorage.getItem(SESSION) || "null");
  return session && Date.parse(session.expiresAt) > Date.now() ? session : null;
}

/** The current token, or null when signed out or expired. */
export function token() {
  return saved()?.token ?? null;
}

/** Milliseconds until the token expires (0 when there is none). */
export function remaining() {
  const session = saved();
  return session ? Date.parse(session.expiresAt) - Date.now() : 0;
}

/** Exchanges an API key for a token; the key itself is not kept anywhere. */
export async function signIn(apiKey) {
  const response = await fetch(`${BASE}/auth/token`, {
    method: "POST",
    headers: { Authorization: `Bearer ${apiKey.trim()}` },
  });
  if (!response.ok) throw await failure(response);
  const issued = await response.json();
  sessionStorage.setItem(SESSION, JSON.stringify(issued));
  return issued;
}

export function signOut(reason) {
  sessionStorage.removeItem(SESSION);
  window.dispatchEvent(new CustomEvent("console:signed-out", { detail: reason || null }));
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's page, an empty body
  }
  const error = body?.error;
  if (error?.message) {
    return new ApiError(response.status, error.code, error.message, error.details);
  }
  return new ApiError(response.status, "http_error", `HTTP ${response.status} ${response.statusText}`);
}

/** Calls the API; rejects with the API's error message. `raw` returns the Response. */
export async function call(method, path, { json, body, query, raw } = {}) {
  const current = token();
  if (!current) {
    signOut("Your session ended: sign in again.");
    throw new ApiError(401, "unauthorized", "Your session ended: sign in again.");
  }
  const url = new URL(BASE + path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Authorization: `Bearer ${current}` };
  if (json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: json !== undefined ? JSON.stringify(json) : body,
  });
  if (!response.ok) {
    const error = await failure(response);
    if (response.status === 401) signOut(error.message);
    throw error;
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

/** A WebSocket to an API path, authenticated with the token in the query. */
export function socket(path, query = {}) {
  const url = new URL(BASE + path, location.origin);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  for (const [name, value] of Object.entries({ ...query, token: token() })) {
    if (value !== undefined && value !== null) url.searchParams.set(name, value);
  }
  return new WebSocket(url);
}

/** A sandbox file's API path (`/workspace/a b` → `/sandboxes/ID/files/workspace/a%20b`). */
export function filePath(sandboxId, path) {
  const parts = path.replace(/^\/+/, "").split("/").map(encodeURIComponent);
  return `/sandboxes/${encodeURIComponent(sandboxId)}/files/${parts.join("/")}`;
}
