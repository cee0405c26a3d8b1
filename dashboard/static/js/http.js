// JSON calls to the dashboard backend. Errors keep the API's {error: {code, message}} shape.

export class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const SAFE = new Set(["GET", "HEAD"]);

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (!SAFE.has(method)) {
    headers["X-Pryv-Dashboard"] = "1"; // CSRF: a custom header cross-site pages cannot send
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiFailure(0, "network_error", "The dashboard could not be reached; check your connection and retry.");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiFailure(response.status, error.code || "http_error", error.message || response.statusText);
  }
  return data;
}
