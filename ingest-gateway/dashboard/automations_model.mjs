// The pure logic of the automations and webhooks pages: a rule in words, a rule from the form's
// fields, the gateway's field errors mapped to the form's inputs, and executions, subscriptions
// and delivery attempts as the tables show them. No DOM and no network, so `node --test` checks
// it (automations_model.test.mjs).

// The event kinds a subscription can choose (`model::webhook::payload::EventKind`); every
// subscription also takes `webhook.test`, which is not chosen.
export const EVENT_KINDS = [
  { kind: 'lead.entered_stage', label: 'a lead enters a stage' },
  { kind: 'lead.score_crossed', label: 'a score crosses a threshold' },
  { kind: 'lead.velocity_reached', label: 'a lead reaches a velocity' },
  { kind: 'lead.verified', label: 'a lead becomes Verified' },
];

export const STAGES = ['cold', 'warm', 'hot', 'qualified'];

// The condition types a rule can have, and the one form field that parameterises each.
export const CONDITIONS = [
  { type: 'entersStage', label: 'enters a stage', field: 'stage' },
  { type: 'scoreCrosses', label: 'score crosses a threshold upwards', field: 'threshold' },
  { type: 'velocityAtLeast', label: 'events in 24 h reach', field: 'events' },
  { type: 'becomesVerified', label: 'becomes Verified', field: null },
];

// The action types a rule can have, and the form fields each takes (the form shows only those;
// `message` is one input that notifySales and email share).
export const ACTIONS = [
  { type: 'webhook', label: 'POST to a webhook subscription', fields: ['subscriptionId'] },
  { type: 'notifySales', label: 'notify sales', fields: ['channel', 'message'] },
  { type: 'email', label: 'email', fields: ['to', 'subject', 'message'] },
];

// The form fields of an action type; none for a type the page does not know.
export function actionFields(type) {
  return ACTIONS.find((a) => a.type === type)?.fields ?? [];
}

// "enters hot", "score crosses 50 upwards", ...
export function conditionInWords(condition) {
  switch (condition?.type) {
    case 'entersStage':
      return `enters ${condition.stage}`;
    case 'scoreCrosses':
      return `score crosses ${condition.threshold} upwards`;
    case 'velocityAtLeast':
      return `${condition.events} or more events in 24 h`;
    case 'becomesVerified':
      return 'becomes Verified';
    default:
      return condition?.type ?? '—';
  }
}

// A subscription is named by its URL when the page knows it, else by its id.
export function actionInWords(action, subscriptionsById = new Map()) {
  switch (action?.type) {
    case 'webhook': {
      const subscription = subscriptionsById.get(action.subscriptionId);
      return `webhook to ${subscription ? subscription.url : `subscription ${action.subscriptionId}`}`;
    }
    case 'notifySales': {
      const where = action.channel ? ` in ${action.channel}` : '';
      return action.message ? `notify sales${where}: “${action.message}”` : `notify sales${where}`;
    }
    case 'email': {
      // An execution's action carries no recipients, only its type.
      const to = action.to?.length ? ` to ${action.to.join(', ')}` : '';
      return action.subject ? `email${to}: “${action.subject}”` : `email${to}`;
    }
    default:
      return action?.type ?? '—';
  }
}

// A number typed in a text box: blank is left out (the gateway names it as required), a number
// is sent as one, and anything else as the text, so the gateway names it as the wrong type.
function numberField(text) {
  const trimmed = (text ?? '').trim();
  if (!trimmed) return undefined;
  const number = Number(trimmed);
  return Number.isFinite(number) ? number : trimmed;
}

function textField(text) {
  const trimmed = (text ?? '').trim();
  return trimmed ? trimmed : undefined;
}

// Addresses typed in one box, split at commas and whitespace: blank is left out (the gateway
// names `to` as required); each address is the gateway's to check, and it names the one it refuses.
function addressesField(text) {
  const addresses = (text ?? '').split(/[\s,]+/).filter(Boolean);
  return addresses.length ? addresses : undefined;
}

const actionField = (name, text) => (name === 'to' ? addressesField(text) : textField(text));

// The rule `POST /api/automations` takes, from the form's values ({id, name, version, enabled,
// conditionType, stage, threshold, events, actionType, subscriptionId, channel, message, to,
// subject}). Only
// the chosen condition's and action's fields go in. Checking is the gateway's: it names the
// field, and the form shows it there.
export function ruleFromForm(fields) {
  const condition = { type: fields.conditionType };
  if (fields.conditionType === 'entersStage') condition.stage = fields.stage;
  if (fields.conditionType === 'scoreCrosses') condition.threshold = numberField(fields.threshold);
  if (fields.conditionType === 'velocityAtLeast') {
    condition.events = numberField(fields.events);
    condition.window = '24h';
  }
  const action = { type: fields.actionType };
  for (const name of actionFields(fields.actionType)) action[name] = actionField(name, fields[name]);
  return withoutUndefined({
    id: (fields.id ?? '').trim(),
    name: (fields.name ?? '').trim(),
    version: (fields.version ?? '').trim(),
    enabled: Boolean(fields.enabled),
    condition: withoutUndefined(condition),
    actions: [withoutUndefined(action)],
  });
}

function withoutUndefined(object) {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

// The form input (its `name`) a field the gateway names belongs to: `condition.threshold` is the
// threshold box, `actions[0].subscriptionId` the subscription picker, `actions[0].to[1]` the
// recipients box, `eventKinds[2]` the event kinds. Null when the form has no such input
// (`projectId`).
export function inputForField(field) {
  if (!field) return null;
  if (field === 'condition' || field === 'condition.type') return 'conditionType';
  const condition = /^condition\.(stage|threshold|events|window)$/.exec(field);
  if (condition) return condition[1] === 'window' ? 'events' : condition[1];
  if (/^actions(\[\d+\])?(\.type)?$/.test(field)) return 'actionType';
  if (/^actions\[\d+\]\.to(\[\d+\])?$/.test(field)) return 'to';
  const action = /^actions\[\d+\]\.(subscriptionId|channel|message|subject)$/.exec(field);
  if (action) return action[1];
  if (/^eventKinds(\[\d+\])?$/.test(field)) return 'eventKinds';
  const top = /^(id|name|version|enabled|url|description)$/.exec(field);
  return top ? top[1] : null;
}

// The lines a refused request shows: each field the gateway named with its message (which may
// name the field itself), or the message alone. `details` as ApiError carries them
// ([{field, message}]).
export function explainFieldErrors(details, message) {
  if (!details?.length) return [message];
  return details.map((d) => (d.field && !d.message.includes(d.field) ? `${d.field}: ${d.message}` : d.message));
}

const OUTCOMES = {
  queued: 'queued',
  nothing_queued: 'nothing queued',
  subscription_not_found: 'subscription not found',
  kind_not_subscribed: 'event kind not subscribed',
  not_configured: 'not configured',
};

export const outcomeInWords = (outcome) => OUTCOMES[outcome] ?? outcome ?? '—';

// One row of the executions table, from an AutomationExecuted.
export function executionRow(execution, subscriptionsById = new Map()) {
  return {
    key: execution.executionKey,
    executedAt: execution.executedAt,
    ruleId: execution.ruleId,
    ruleVersion: execution.ruleVersion,
    leadId: execution.leadId,
    utcDay: execution.utcDay,
    outcome: outcomeInWords(execution.outcome),
    actions: (execution.actions ?? []).map((taken) => {
      const action = actionInWords({ type: taken.type, subscriptionId: taken.subscriptionId }, subscriptionsById);
      return { text: `${action}: ${outcomeInWords(taken.outcome)}`, messageId: taken.messageId ?? null };
    }),
  };
}

// "enabled", or "disabled: gone" with the reason the gateway gives.
export function subscriptionState(subscription) {
  if (subscription.enabled) return 'enabled';
  return subscription.disabledReason ? `disabled: ${subscription.disabledReason}` : 'disabled';
}

// "succeeded, 200, 12 ms" and what went wrong, when something did.
export function attemptInWords(attempt) {
  const parts = [attempt.outcome];
  if (attempt.responseCode !== null && attempt.responseCode !== undefined) parts.push(String(attempt.responseCode));
  if (attempt.latencyMs !== null && attempt.latencyMs !== undefined) parts.push(`${attempt.latencyMs} ms`);
  const text = parts.join(', ');
  return attempt.error ? `${text} (${attempt.error})` : text;
}

// The answer of `POST /api/webhooks/{id}/test` in words.
export function testResultInWords(result) {
  return attemptInWords({ outcome: result.outcome, responseCode: result.responseCode, latencyMs: result.latencyMs });
}

// The event kinds ticked in the form, in the list's order; the gateway checks the count.
export function chosenKinds(ticked) {
  const set = new Set(ticked);
  return EVENT_KINDS.map((k) => k.kind).filter((kind) => set.has(kind));
}
