// API calls with the user's token. The token is kept in sessionStorage,
// so it lasts for the browser tab and is sent only as an Authorization
// header, never in a URL.

const tokenKey = 'lambdaflow.token';

// ApiError is a failed API call with its status and problem document.
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }

  // fieldErrors returns the problem's errors list, [{field, message}].
  get fieldErrors() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

const unauthorizedListeners = new Set();

// onUnauthorized registers fn to run with the ApiError of every 401.
export function onUnauthorized(fn) {
  unauthorizedListeners.add(fn);
}

// reportUnauthorized notifies the listeners that the server rejected the
// token or requires one.
export function reportUnauthorized(err) {
  for (const fn of unauthorizedListeners) fn(err);
}

export function getToken() {
  return sessionStorage.getItem(tokenKey) || '';
}

export function setToken(token) {
  if (token) {
    sessionStorage.setItem(tokenKey, token);
  } else {
    sessionStorage.removeItem(tokenKey);
  }
}

// authHeaders returns headers with Authorization added when a token is set.
export function authHeaders(headers = {}) {
  const token = getToken();
  return token ? { ...headers, Authorization: `Bearer ${token}` } : { ...headers };
}

// request sends a request under /api/v1 and returns the Response when
// its status is 2xx. Anything else throws an ApiError; a 401 also
// notifies the onUnauthorized listeners.
export async function request(path, { method = 'GET', json, body, headers = {}, signal } = {}) {
  const init = { method, headers: authHeaders(headers), signal, cache: 'no-store' };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  const resp = await fetch(`/api/v1${path}`, init);
  if (resp.ok) return resp;

  let problem = null;
  try {
    problem = await resp.json();
  } catch {
    // Not a problem document; the status alone describes the failure.
  }
  const err = new ApiError(resp.status, problem);
  if (resp.status === 401) reportUnauthorized(err);
  throw err;
}

// getJSON sends a GET request and returns the decoded body.
export async function getJSON(path, options) {
  const resp = await request(path, options);
  return resp.json();
}

// sendJSON sends a request with a JSON body and returns the decoded
// response with its status.
export async function sendJSON(method, path, json) {
  const resp = await request(path, { method, json });
  return { status: resp.status, body: await resp.json() };
}
