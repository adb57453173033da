// The webhooks page: the project's subscriptions, a form to add one (its signing secret is
// answered once, shown here until dismissed or the page is left, and never again), deleting
// one, sending a test delivery, replaying a disabled one's undelivered messages, and the
// delivery log of the subscription chosen.

import {
  createWebhook,
  deleteWebhook,
  listDeliveries,
  listWebhooks,
  replayWebhook,
  testWebhook,
} from './api.mjs';
import { el, fillTable, formatTime, showError } from './dom.mjs';
import {
  EVENT_KINDS,
  attemptInWords,
  chosenKinds,
  explainFieldErrors,
  inputForField,
  subscriptionState,
  testResultInWords,
} from './automations_model.mjs';
import { markInvalid, showResult, whileBusy } from './form_result.mjs';
import { session } from './session.mjs';

const DELIVERIES_SHOWN = 50;

export class WebhooksView {
  constructor(root) {
    this.root = root;
    this.form = root.querySelector('#webhook-form');
    this.secret = root.querySelector('#webhook-secret');
    this.result = root.querySelector('#webhooks-result');
    this.generation = 0;
    this.deliveriesGeneration = 0;
    this.subscriptions = new Map(); // id -> subscription
    this.chosen = null; // the subscription whose deliveries are shown
    this.shownProject = null; // whose subscriptions the page shows
    root.querySelector('#webhook-kinds').append(
      ...EVENT_KINDS.map(({ kind, label }) =>
        el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'eventKinds', value: kind }), ' ', el('code', {}, kind), ` (${label})`),
      ),
    );
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.create();
    });
    root.querySelector('#webhook-secret-done').addEventListener('click', () => this.hideSecret());
  }

  onUpdate() {
    // Deliveries are the automator's and the tests'; the stream says nothing of them.
  }

  // The page is left: a secret shown is not shown again.
  leave() {
    this.hideSecret();
  }

  hideSecret() {
    this.secret.hidden = true;
    this.root.querySelector('#webhook-secret-value').textContent = '';
  }

  async refresh() {
    // Nothing of another project's stays on screen after a switch: its secret least of all.
    if (this.shownProject !== session.project) {
      this.shownProject = session.project;
      this.hideSecret();
      this.chosen = null;
      for (const node of this.root.querySelectorAll('.form-result')) node.replaceChildren();
    }
    const generation = ++this.generation;
    const error = this.root.querySelector('#webhooks-error');
    try {
      const { webhooks } = await listWebhooks();
      if (generation !== this.generation) return;
      showError(error, null);
      this.subscriptions = new Map(webhooks.map((s) => [s.id, s]));
      if (this.chosen && !this.subscriptions.has(this.chosen)) this.chosen = null;
      this.renderSubscriptions(webhooks);
      await this.refreshDeliveries();
    } catch (e) {
      if (generation === this.generation) showError(error, e);
    }
  }

  renderSubscriptions(webhooks) {
    fillTable(
      this.root.querySelector('#webhooks-table tbody'),
      this.root.querySelector('#webhooks-empty'),
      webhooks.map((s) =>
        el(
          'tr',
          { 'data-subscription-id': s.id, 'data-enabled': String(s.enabled), class: s.id === this.chosen ? 'chosen' : null },
          el('td', { class: 'mono', 'data-field': 'url' }, s.url, s.description ? el('div', { class: 'muted' }, s.description) : null),
          el('td', { 'data-field': 'kinds' }, s.eventKinds.flatMap((kind, i) => [i ? el('br') : null, el('code', {}, kind)])),
          el(
            'td',
            { 'data-field': 'state' },
            el('span', { class: `badge ${s.enabled ? 'status-verified' : 'status-rejected'}` }, subscriptionState(s)),
            s.disabledAt ? el('div', { class: 'muted' }, `since ${formatTime(s.disabledAt)}`) : null,
          ),
          el('td', { 'data-field': 'failing-since' }, s.failingSince ? formatTime(s.failingSince) : '—'),
          el('td', { 'data-field': 'created' }, formatTime(s.createdAt)),
          el(
            'td',
            { class: 'row-actions' },
            el('button', { type: 'button', class: 'small', 'data-action': 'test', onclick: (e) => this.sendTest(s, e.target) }, 'Send test'),
            s.enabled
              ? null
              : el('button', { type: 'button', class: 'small', 'data-action': 'replay', onclick: (e) => this.replay(s, e.target) }, 'Replay'),
            el('button', { type: 'button', class: 'secondary small', 'data-action': 'deliveries', onclick: () => this.choose(s.id) }, 'Deliveries'),
            el('button', { type: 'button', class: 'secondary small', 'data-action': 'delete', onclick: () => this.remove(s) }, 'Delete'),
          ),
        ),
      ),
    );
  }

  tell(ok, text) {
    this.result.className = `form-result ${ok ? 'ok' : 'error'}`;
    this.result.textContent = text;
  }

  async create() {
    const data = new FormData(this.form);
    const subscription = { url: data.get('url').trim(), eventKinds: chosenKinds(data.getAll('eventKinds')) };
    const description = data.get('description').trim();
    if (description) subscription.description = description;
    markInvalid(this.form, []);
    await whileBusy(this.form.querySelector('button[type=submit]'), async () => {
      try {
        const created = await createWebhook(subscription);
        showResult(this.form, true, [`subscription to ${created.url} added.`]);
        this.root.querySelector('#webhook-secret-url').textContent = created.url;
        this.root.querySelector('#webhook-secret-value').textContent = created.secret;
        this.secret.hidden = false;
        this.form.reset();
        this.chosen = created.id;
        await this.refresh();
      } catch (error) {
        showResult(this.form, false, explainFieldErrors(error.details, error.message));
        markInvalid(this.form, error.details.map((d) => inputForField(d.field)));
      }
    });
  }

  // The gateway sends one signed `webhook.test` now and answers how it went; the log shows it.
  sendTest(subscription, button) {
    return this.act(button, subscription, `test to ${subscription.url}`, async () => {
      const answer = await testWebhook(subscription.id);
      return [answer.outcome === 'succeeded', testResultInWords(answer)];
    });
  }

  // Enables the subscription again and queues what it missed.
  replay(subscription, button) {
    return this.act(button, subscription, `replay of ${subscription.url}`, async () => {
      const { requeued } = await replayWebhook(subscription.id);
      return [true, `enabled again; ${requeued} undelivered ${requeued === 1 ? 'message' : 'messages'} queued`];
    });
  }

  // A row's action: its answer (`[ok, words]` from `work`) above the table, then the
  // subscription's delivery log, which the action has added to.
  act(button, subscription, what, work) {
    return whileBusy(button, async () => {
      try {
        const [ok, words] = await work();
        this.tell(ok, `${what}: ${words}`);
        this.chosen = subscription.id;
        await this.refresh();
      } catch (error) {
        this.tell(false, `${what}: ${error.message}`);
      }
    });
  }

  async remove(subscription) {
    if (!window.confirm(`Delete the subscription to ${subscription.url}? Its pending deliveries are dropped.`)) return;
    try {
      await deleteWebhook(subscription.id);
      this.tell(true, `subscription to ${subscription.url} deleted.`);
      await this.refresh();
    } catch (error) {
      this.tell(false, `delete of ${subscription.url}: ${error.message}`);
    }
  }

  choose(id) {
    this.chosen = id;
    for (const row of this.root.querySelectorAll('#webhooks-table tbody tr')) {
      row.classList.toggle('chosen', row.dataset.subscriptionId === id);
    }
    return this.refreshDeliveries();
  }

  async refreshDeliveries() {
    const generation = ++this.deliveriesGeneration;
    const section = this.root.querySelector('#deliveries');
    const subscription = this.subscriptions.get(this.chosen);
    section.hidden = !subscription;
    if (!subscription) return;
    section.dataset.subscriptionId = subscription.id;
    this.root.querySelector('#deliveries-url').textContent = subscription.url;
    const error = this.root.querySelector('#deliveries-error');
    try {
      const { deliveries } = await listDeliveries(subscription.id, DELIVERIES_SHOWN);
      if (generation !== this.deliveriesGeneration) return;
      showError(error, null);
      fillTable(
        this.root.querySelector('#deliveries-table tbody'),
        this.root.querySelector('#deliveries-empty'),
        deliveries.map((d) => deliveryRow(d)),
      );
    } catch (e) {
      if (generation === this.deliveriesGeneration) showError(error, e);
    }
  }
}

function deliveryRow(delivery) {
  return el(
    'tr',
    { 'data-delivery-id': delivery.id, 'data-state': delivery.state },
    el('td', { class: 'nowrap', 'data-field': 'time' }, formatTime(delivery.createdAt)),
    el('td', { 'data-field': 'kind' }, el('code', {}, delivery.kind)),
    el(
      'td',
      { 'data-field': 'state' },
      delivery.state,
      delivery.state === 'pending' && delivery.nextAttemptAt ? el('div', { class: 'muted' }, `next ${formatTime(delivery.nextAttemptAt)}`) : null,
    ),
    el(
      'td',
      { 'data-field': 'attempts' },
      delivery.attempts.length
        ? el(
            'ol',
            { class: 'attempts' },
            delivery.attempts.map((a) =>
              el('li', { 'data-outcome': a.outcome }, `${formatTime(a.attemptedAt)}: `, attemptInWords(a)),
            ),
          )
        : 'none yet',
      delivery.attemptCount > delivery.attempts.length
        ? el('div', { class: 'muted' }, `${delivery.attemptCount} attempts in all; the last ${delivery.attempts.length} are kept`)
        : null,
    ),
  );
}
