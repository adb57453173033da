// The gateway's API as the dashboard uses it. Every call either returns the parsed JSON or
// throws an ApiError carrying the gateway's message and, for a 400, the fields it named.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    // [{field, reason, message}], as the gateway lists them for a 400.
    this.details = body?.details ?? (body?.field ? [{ field: body.field, message: body.message }] : []);
  }
}

async function call(method, path, body) {
  const init = { method, headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { message: `the gateway cannot be reached (${e.message})` });
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: only a proxy in between answers that way; keep its text as the message.
    json = { message: text.slice(0, 200) };
  }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

// Only the parameters that are set: the read API refuses unknown or empty ones.
function query(params) {
  const set = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '');
  return set.length ? `?${new URLSearchParams(set)}` : '';
}

const lead = (id) => `/api/leads/${encodeURIComponent(id)}`;

export const listLeads = (filters, cursor) => call('GET', `/api/leads${query({ ...filters, cursor })}`);
export const getLead = (id) => call('GET', lead(id));
export const getHistory = (id) => call('GET', `${lead(id)}/history`);
export const getIntelligence = (id) => call('GET', `${lead(id)}/intelligence`);
export const getLeaderboard = (limit) => call('GET', `/api/leaderboard${query({ limit })}`);
export const getScoringRules = () => call('GET', '/api/scoring-rules');
export const submitLeads = (names) => call('POST', '/api/leads', { names });
export const sendEvent = (event) => call('POST', '/api/events', event);
export const reviewLead = (id, decision) => call('POST', `${lead(id)}/review`, { decision });
