// `node --test ingest-gateway/dashboard/`: the session's headers and project choice.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { chooseProject, endSession, pickProject, session, sessionHeaders, startSession, streamUrl } from './session.mjs';

function memoryStorage() {
  const items = new Map();
  return { getItem: (k) => items.get(k) ?? null, setItem: (k, v) => items.set(k, String(v)) };
}

test('the remembered project is kept while it is still one of the user\'s, else the first', () => {
  assert.equal(pickProject(['acme', 'beta'], 'beta'), 'beta');
  assert.equal(pickProject(['acme', 'beta'], 'gone'), 'acme');
  assert.equal(pickProject([], 'gone'), null);
});

test('every call names the project; only unsafe ones carry the CSRF token', () => {
  const storage = memoryStorage();
  startSession({ email: 'ada@example.com', projects: ['acme', 'beta'], csrfToken: 'tok' }, storage);
  assert.deepEqual(sessionHeaders('GET'), { 'x-leadflow-project': 'acme' });
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    assert.deepEqual(sessionHeaders(method), { 'x-leadflow-project': 'acme', 'x-csrf-token': 'tok' }, method);
  }
  chooseProject('beta', storage);
  assert.equal(streamUrl(), '/api/stream?project=beta');
  assert.throws(() => chooseProject('gamma', storage), /not one of your projects/);

  // A reload in the same tab stays on the chosen project.
  startSession({ email: 'ada@example.com', projects: ['acme', 'beta'], csrfToken: 'tok2' }, storage);
  assert.equal(session.project, 'beta');

  endSession();
  assert.deepEqual(sessionHeaders('POST'), {});
  assert.equal(streamUrl(), '/api/stream');
});
