// The gateway's API as the dashboard uses it. Every call either returns the parsed JSON or
// throws an ApiError carrying the gateway's message and, for a 400, the fields it named.
// Calls go with the session cookie (the browser sends it, same origin), the chosen project and,
// when unsafe, the CSRF token; posting names and events takes a project key with the `ingest`
// scope, which a dashboard user does not have.

import { sessionHeaders } from './session.mjs';

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    // [{field, reason, message}], as the gateway lists them for a 400.
    this.details = body?.details ?? (body?.field ? [{ field: body.field, message: body.message }] : []);
  }
}

// Told when the gateway says the session is gone (expired, or logged out in another tab).
let onSignedOut = () => {};
export function whenSignedOut(handler) {
  onSignedOut = handler;
}

// The project key the forms post with; kept in memory only, never stored.
let ingestKey = '';
export function setIngestKey(key) {
  ingestKey = key.trim();
}

async function call(method, path, body, extraHeaders = {}) {
  const init = { method, headers: { accept: 'application/json', ...sessionHeaders(method), ...extraHeaders } };
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
  if (response.status === 401 && !path.startsWith('/api/auth/') && !extraHeaders['x-api-key']) onSignedOut();
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
const withIngestKey = () => {
  if (!ingestKey) throw new ApiError(0, { message: 'enter a project key with the ingest scope to post names and events' });
  return { 'x-api-key': ingestKey };
};
export const submitLeads = async (names) => call('POST', '/api/leads', { names }, withIngestKey());
export const sendEvent = async (event) => call('POST', '/api/events', event, withIngestKey());
export const reviewLead = (id, decision) => call('POST', `${lead(id)}/review`, { decision });

// Automation rules and their executions, and webhook subscriptions with their delivery logs:
// the chosen project's, as every call above.
const automation = (id) => `/api/automations/${encodeURIComponent(id)}`;
export const listAutomations = () => call('GET', '/api/automations');
export const createAutomation = (rule) => call('POST', '/api/automations', rule);
export const deleteAutomation = (id) => call('DELETE', automation(id));
export const listExecutions = (days) => call('GET', `/api/automations/executions${query({ days })}`);
const webhook = (id) => `/api/webhooks/${encodeURIComponent(id)}`;
export const listWebhooks = () => call('GET', '/api/webhooks');
export const createWebhook = (subscription) => call('POST', '/api/webhooks', subscription);
export const deleteWebhook = (id) => call('DELETE', webhook(id));
export const testWebhook = (id) => call('POST', `${webhook(id)}/test`);
export const replayWebhook = (id) => call('POST', `${webhook(id)}/replay`);
export const listDeliveries = (id, limit) => call('GET', `${webhook(id)}/deliveries${query({ limit })}`);

export const login = (email, password) => call('POST', '/api/auth/login', { email, password });
export const getMe = () => call('GET', '/api/auth/me');
export const logout = () => call('POST', '/api/auth/logout');
