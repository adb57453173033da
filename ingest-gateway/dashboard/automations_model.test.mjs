// `node --test ingest-gateway/dashboard/`: the automations and webhooks pages' pure logic.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  ACTIONS,
  actionFields,
  actionInWords,
  attemptInWords,
  chosenKinds,
  conditionInWords,
  EVENT_KINDS,
  executionRow,
  explainFieldErrors,
  inputForField,
  ruleFromForm,
  subscriptionState,
  testResultInWords,
} from './automations_model.mjs';

const form = {
  id: ' hot-to-crm ',
  name: 'Hot leads to the CRM',
  version: 'v1',
  enabled: true,
  conditionType: 'entersStage',
  stage: 'hot',
  threshold: '50',
  events: '3',
  actionType: 'webhook',
  subscriptionId: 'b2f1c1f2-3d7e-4b36-9a55-0c1f8f3a8f10',
  channel: '#sales',
  message: 'hi',
  to: 'sales@example.com',
  subject: 'Hot: {name}',
};

test('every condition in words', () => {
  assert.equal(conditionInWords({ type: 'entersStage', stage: 'hot' }), 'enters hot');
  assert.equal(conditionInWords({ type: 'scoreCrosses', threshold: 50 }), 'score crosses 50 upwards');
  assert.equal(conditionInWords({ type: 'velocityAtLeast', events: 3, window: '24h' }), '3 or more events in 24 h');
  assert.equal(conditionInWords({ type: 'becomesVerified' }), 'becomes Verified');
  assert.equal(conditionInWords({ type: 'somethingNew' }), 'somethingNew', 'a newer type still shows');
});

test('actions in words name the subscription by its URL when it is known', () => {
  const subs = new Map([['s1', { id: 's1', url: 'https://example.com/hook' }]]);
  assert.equal(actionInWords({ type: 'webhook', subscriptionId: 's1' }, subs), 'webhook to https://example.com/hook');
  assert.equal(actionInWords({ type: 'webhook', subscriptionId: 'gone' }, subs), 'webhook to subscription gone');
  assert.equal(actionInWords({ type: 'notifySales', channel: '#sales', message: 'Hot: {name}' }), 'notify sales in #sales: “Hot: {name}”');
  assert.equal(actionInWords({ type: 'notifySales' }), 'notify sales');
});

test('an email action in words names its recipients, and its subject when it has one', () => {
  assert.equal(
    actionInWords({ type: 'email', to: ['sales@example.com', 'ada@example.org'], subject: '{name} is {stage}', message: 'm' }),
    'email to sales@example.com, ada@example.org: “{name} is {stage}”',
  );
  assert.equal(actionInWords({ type: 'email', to: ['sales@example.com'], message: 'no subject' }), 'email to sales@example.com');
  assert.equal(actionInWords({ type: 'email' }), 'email', "an execution's action has no recipients");
});

test('each action type offers its own fields, and an unknown type none', () => {
  assert.deepEqual(ACTIONS.map((a) => a.type), ['webhook', 'notifySales', 'email']);
  assert.deepEqual(actionFields('webhook'), ['subscriptionId']);
  assert.deepEqual(actionFields('notifySales'), ['channel', 'message']);
  assert.deepEqual(actionFields('email'), ['to', 'subject', 'message']);
  assert.deepEqual(actionFields('somethingNew'), []);
});

test('an email rule from the form: recipients split at commas and whitespace, subject and message optional', () => {
  const email = (fields) => ruleFromForm({ ...form, actionType: 'email', ...fields }).actions;
  assert.deepEqual(email({}), [{ type: 'email', to: ['sales@example.com'], subject: 'Hot: {name}', message: 'hi' }]);
  assert.deepEqual(email({ to: ' sales@example.com, ada@example.org\n  bob@example.net,,', subject: '', message: ' ' }), [
    { type: 'email', to: ['sales@example.com', 'ada@example.org', 'bob@example.net'] },
  ]);
  assert.deepEqual(email({ to: ' , \t' }), [{ type: 'email', subject: 'Hot: {name}', message: 'hi' }], 'no address: `to` is left out');
  assert.deepEqual(email({ to: 'not an address' })[0].to, ['not', 'an', 'address'], 'the gateway checks each address');
  assert.deepEqual(
    ruleFromForm({ ...form, actionType: 'notifySales' }).actions,
    [{ type: 'notifySales', channel: '#sales', message: 'hi' }],
    'the email fields go only into an email action',
  );
});

test('a rule from the form takes only the chosen condition and action', () => {
  assert.deepEqual(ruleFromForm(form), {
    id: 'hot-to-crm',
    name: 'Hot leads to the CRM',
    version: 'v1',
    enabled: true,
    condition: { type: 'entersStage', stage: 'hot' },
    actions: [{ type: 'webhook', subscriptionId: 'b2f1c1f2-3d7e-4b36-9a55-0c1f8f3a8f10' }],
  });
  const sales = ruleFromForm({ ...form, enabled: false, conditionType: 'velocityAtLeast', actionType: 'notifySales', channel: ' ' });
  assert.deepEqual(sales.condition, { type: 'velocityAtLeast', events: 3, window: '24h' });
  assert.deepEqual(sales.actions, [{ type: 'notifySales', message: 'hi' }], 'a blank channel is left out');
  assert.equal(sales.enabled, false);
  assert.deepEqual(ruleFromForm({ ...form, conditionType: 'becomesVerified' }).condition, { type: 'becomesVerified' });
});

test("numbers are sent as numbers; blank and non-numbers are left for the gateway to name", () => {
  const crosses = (threshold) => ruleFromForm({ ...form, conditionType: 'scoreCrosses', threshold }).condition;
  assert.deepEqual(crosses(' 42.5 '), { type: 'scoreCrosses', threshold: 42.5 });
  assert.deepEqual(crosses(''), { type: 'scoreCrosses' }, 'blank is not 0');
  assert.deepEqual(crosses('fifty'), { type: 'scoreCrosses', threshold: 'fifty' });
  assert.deepEqual(ruleFromForm({ ...form, subscriptionId: '' }).actions, [{ type: 'webhook' }]);
});

test("the gateway's field names point at the form's inputs", () => {
  const cases = {
    id: 'id',
    version: 'version',
    condition: 'conditionType',
    'condition.type': 'conditionType',
    'condition.threshold': 'threshold',
    'condition.events': 'events',
    'condition.window': 'events',
    'condition.stage': 'stage',
    actions: 'actionType',
    'actions[0].type': 'actionType',
    'actions[0].subscriptionId': 'subscriptionId',
    'actions[0].message': 'message',
    'actions[0].to': 'to',
    'actions[0].to[1]': 'to',
    'actions[2].to[9]': 'to',
    'actions[0].subject': 'subject',
    'actions[0].channel': 'channel',
    'actions[0].tox': null,
    url: 'url',
    eventKinds: 'eventKinds',
    'eventKinds[1]': 'eventKinds',
    projectId: null,
    'condition.thresholdx': null,
  };
  for (const [field, input] of Object.entries(cases)) assert.equal(inputForField(field), input, field);
  assert.equal(inputForField(undefined), null);
});

test('a refusal lists each named field with its message', () => {
  assert.deepEqual(
    explainFieldErrors(
      [
        { field: 'condition.threshold', message: 'must be a number above 0' },
        { field: 'id', message: 'id is taken' },
        { field: 'actions[0].channel', message: 'invalid automation rule: actions[0].channel must be 1 to 80 characters' },
      ],
      'x',
    ),
    ['condition.threshold: must be a number above 0', 'id is taken', 'invalid automation rule: actions[0].channel must be 1 to 80 characters'],
  );
  assert.deepEqual(explainFieldErrors([], 'the gateway cannot be reached'), ['the gateway cannot be reached']);
});

test('an execution as the table shows it, with each action and its message id', () => {
  const subs = new Map([['s1', { id: 's1', url: 'http://127.0.0.1:9/hook' }]]);
  const row = executionRow(
    {
      leadId: 'lead-1',
      ruleId: 'hot-to-crm',
      ruleVersion: 'v2',
      executionKey: 'default/hot-to-crm/lead-1/2026-01-16',
      utcDay: '2026-01-16',
      condition: 'entersStage',
      executedAt: '2026-01-16T10:00:01Z',
      outcome: 'nothing_queued',
      actions: [
        { type: 'webhook', subscriptionId: 's1', messageId: 'msg_1', outcome: 'queued' },
        { type: 'notifySales', outcome: 'not_configured' },
        { type: 'email', messageId: 'msg_2', outcome: 'queued' },
        { type: 'email', outcome: 'not_configured' },
      ],
    },
    subs,
  );
  assert.equal(row.outcome, 'nothing queued');
  assert.deepEqual(row.actions, [
    { text: 'webhook to http://127.0.0.1:9/hook: queued', messageId: 'msg_1' },
    { text: 'notify sales: not configured', messageId: null },
    { text: 'email: queued', messageId: 'msg_2' },
    { text: 'email: not configured', messageId: null },
  ]);
  assert.deepEqual([row.ruleId, row.ruleVersion, row.leadId, row.utcDay], ['hot-to-crm', 'v2', 'lead-1', '2026-01-16']);
});

test('subscriptions, attempts and test answers in words', () => {
  assert.equal(subscriptionState({ enabled: true, disabledReason: null }), 'enabled');
  assert.equal(subscriptionState({ enabled: false, disabledReason: 'gone' }), 'disabled: gone');
  assert.equal(subscriptionState({ enabled: false }), 'disabled');
  assert.equal(attemptInWords({ outcome: 'succeeded', responseCode: 200, latencyMs: 12 }), 'succeeded, 200, 12 ms');
  assert.equal(attemptInWords({ outcome: 'timeout', responseCode: null, latencyMs: 10000, error: 'no answer in 10 s' }), 'timeout, 10000 ms (no answer in 10 s)');
  assert.equal(testResultInWords({ deliveryId: 'd', outcome: 'failed', responseCode: 500, latencyMs: 3 }), 'failed, 500, 3 ms');
});

test('the event kinds offered leave out webhook.test, and ticked ones keep the list order', () => {
  assert.ok(!EVENT_KINDS.some((k) => k.kind === 'webhook.test'));
  assert.equal(EVENT_KINDS.length, 4);
  assert.deepEqual(chosenKinds(['lead.verified', 'lead.entered_stage', 'nonsense']), ['lead.entered_stage', 'lead.verified']);
});
