// The automations page: the project's rules, a form to create one, deleting one, and the
// executions of the last days. The subscriptions are read too: the form picks one for a webhook
// action, and the tables name a subscription by its URL. Executions follow the stream: a scored
// or enriched lead may have fired a rule, so they are read again (at most once a second).

import { createAutomation, deleteAutomation, listAutomations, listExecutions, listWebhooks } from './api.mjs';
import { el, fillTable, formatTime, showError } from './dom.mjs';
import {
  ACTIONS,
  CONDITIONS,
  STAGES,
  actionFields,
  actionInWords,
  conditionInWords,
  executionRow,
  explainFieldErrors,
  inputForField,
  ruleFromForm,
} from './automations_model.mjs';
import { markInvalid, showResult, whileBusy } from './form_result.mjs';
import { coalesced } from './live.mjs';
import { session } from './session.mjs';

export class AutomationsView {
  constructor(root) {
    this.root = root;
    this.form = root.querySelector('#rule-form');
    this.days = root.querySelector('#executions-days');
    this.generation = 0;
    this.refreshSoon = coalesced(() => this.refresh(), 1000);
    this.subscriptions = new Map(); // id -> subscription
    this.shownProject = null; // whose rules the page shows
    this.form.querySelector('[name=conditionType]').replaceChildren(
      ...CONDITIONS.map((c) => el('option', { value: c.type }, c.label)),
    );
    this.form.querySelector('[name=stage]').replaceChildren(
      ...STAGES.map((stage) => el('option', { value: stage, selected: stage === 'hot' }, stage)),
    );
    this.form.querySelector('[name=actionType]').replaceChildren(...ACTIONS.map((a) => el('option', { value: a.type }, a.label)));
    this.form.addEventListener('change', () => this.showChosenFields());
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.create();
    });
    this.days.addEventListener('change', () => this.refresh());
    this.showChosenFields();
  }

  // Only the chosen condition's parameter and the chosen action's fields are shown (an action
  // type's fields are the model's, as `ruleFromForm` reads them: `message` serves two types).
  showChosenFields() {
    const condition = this.form.querySelector('[name=conditionType]').value;
    const fields = new Set(actionFields(this.form.querySelector('[name=actionType]').value));
    for (const node of this.form.querySelectorAll('[data-condition]')) node.hidden = node.dataset.condition !== condition;
    for (const node of this.form.querySelectorAll('[data-action-field]')) node.hidden = !fields.has(node.dataset.actionField);
  }

  onUpdate(update) {
    if (update.kind === 'scored' || update.kind === 'enriched') this.refreshSoon();
  }

  async refresh() {
    // What was said about another project's rules does not stay after a switch.
    if (this.shownProject !== session.project) {
      this.shownProject = session.project;
      for (const node of this.root.querySelectorAll('.form-result')) node.replaceChildren();
      markInvalid(this.form, []);
    }
    const generation = ++this.generation;
    const error = this.root.querySelector('#automations-error');
    try {
      const [{ rules }, { webhooks }, { executions }] = await Promise.all([
        listAutomations(),
        listWebhooks(),
        listExecutions(Number(this.days.value)),
      ]);
      if (generation !== this.generation) return;
      showError(error, null);
      this.subscriptions = new Map(webhooks.map((s) => [s.id, s]));
      this.renderSubscriptionChoice(webhooks);
      this.renderRules(rules);
      this.renderExecutions(executions);
    } catch (e) {
      if (generation === this.generation) showError(error, e);
    }
  }

  renderSubscriptionChoice(webhooks) {
    const select = this.form.querySelector('[name=subscriptionId]');
    const chosen = select.value;
    select.replaceChildren(
      ...(webhooks.length ? [] : [el('option', { value: '' }, 'no subscriptions yet')]),
      ...webhooks.map((s) => el('option', { value: s.id, selected: s.id === chosen }, s.description ? `${s.url} (${s.description})` : s.url)),
    );
  }

  renderRules(rules) {
    fillTable(
      this.root.querySelector('#rules-table tbody'),
      this.root.querySelector('#rules-empty'),
      rules.map((rule) =>
        el(
          'tr',
          { 'data-rule-id': rule.id },
          el('td', { class: 'mono nowrap', 'data-field': 'id' }, rule.id),
          el('td', { 'data-field': 'name' }, rule.name),
          el('td', { 'data-field': 'version' }, rule.version),
          el('td', { 'data-field': 'enabled' }, rule.enabled ? 'yes' : 'no'),
          el('td', { 'data-field': 'condition' }, conditionInWords(rule.condition)),
          el(
            'td',
            { 'data-field': 'actions' },
            rule.actions.flatMap((action, i) => [i ? el('br') : null, actionInWords(action, this.subscriptions)]),
          ),
          el('td', {}, el('button', { type: 'button', class: 'secondary small', onclick: () => this.remove(rule) }, 'Delete')),
        ),
      ),
    );
  }

  renderExecutions(executions) {
    fillTable(
      this.root.querySelector('#executions-table tbody'),
      this.root.querySelector('#executions-empty'),
      executions.map((execution) => {
        const row = executionRow(execution, this.subscriptions);
        return el(
          'tr',
          { 'data-execution-key': row.key },
          el('td', { class: 'nowrap', 'data-field': 'time' }, formatTime(row.executedAt)),
          el('td', { class: 'mono nowrap', 'data-field': 'rule' }, row.ruleId),
          el('td', { 'data-field': 'version' }, row.ruleVersion),
          el('td', { class: 'nowrap', 'data-field': 'lead' }, el('a', { href: `#/leads/${encodeURIComponent(row.leadId)}` }, row.leadId)),
          el('td', { class: 'nowrap', 'data-field': 'day' }, row.utcDay),
          el('td', { 'data-field': 'outcome' }, row.outcome),
          el(
            'td',
            { 'data-field': 'actions' },
            row.actions.flatMap((action, i) => [
              i ? el('br') : null,
              action.text,
              action.messageId ? [' ', el('span', { class: 'mono muted', 'data-message-id': action.messageId }, action.messageId)] : null,
            ]),
          ),
        );
      }),
    );
  }

  async create() {
    const data = new FormData(this.form);
    const fields = Object.fromEntries(data.entries());
    fields.enabled = data.get('enabled') === 'on';
    const rule = ruleFromForm(fields);
    markInvalid(this.form, []);
    await whileBusy(this.form.querySelector('button[type=submit]'), async () => {
      try {
        const { rule: created } = await createAutomation(rule);
        showResult(this.form, true, [`rule ${created.id} (${created.version}) created: ${conditionInWords(created.condition)}.`]);
        for (const name of ['id', 'name', 'threshold', 'events', 'channel', 'message', 'to', 'subject']) this.form.querySelector(`[name=${name}]`).value = '';
        await this.refresh();
      } catch (error) {
        showResult(this.form, false, explainFieldErrors(error.details, error.message));
        markInvalid(this.form, error.details.map((d) => inputForField(d.field)));
      }
    });
  }

  async remove(rule) {
    if (!window.confirm(`Delete the rule ${rule.id} (${rule.name})? Its executions stay in the log.`)) return;
    const result = this.root.querySelector('#rules-result');
    try {
      await deleteAutomation(rule.id);
      result.className = 'form-result ok';
      result.textContent = `rule ${rule.id} deleted.`;
      await this.refresh();
    } catch (error) {
      result.className = 'form-result error';
      result.textContent = error.message;
    }
  }
}
