// The leads table: a page of `GET /api/leads` under the filters, kept current by live updates.
// Updates that arrive while a page is loading wait and are applied on top of it, so nothing
// seen on the stream is lost to a slower read.

import { listLeads } from './api.mjs';
import { el, formatScore, showError } from './dom.mjs';
import { applyUpdate, byScore, countryLabel, crmLabel, matches, pendingRow, rowFromSummary, statusLabel } from './model.mjs';

const PAGE_SIZE = 50;

export class LeadsView {
  constructor(root) {
    this.root = root;
    this.form = root.querySelector('#filters');
    this.body = root.querySelector('#leads-table tbody');
    this.error = root.querySelector('#leads-error');
    this.empty = root.querySelector('#leads-empty');
    this.more = root.querySelector('#leads-more');
    this.knownLeads = document.querySelector('#known-leads');
    this.rows = new Map(); // leadId -> row, in display order
    this.waiting = null; // updates that came while a page was loading
    this.generation = 0;
    this.nextCursor = null;
    this.form.addEventListener('input', () => this.refresh());
    this.form.addEventListener('submit', (e) => e.preventDefault());
    this.more.addEventListener('click', () => this.loadMore());
  }

  filters() {
    const data = new FormData(this.form);
    return { status: data.get('status'), stage: data.get('stage'), q: data.get('q').trim(), sort: data.get('sort') };
  }

  async refresh() {
    const generation = ++this.generation;
    this.waiting = this.waiting ?? [];
    // What is already shown answers a narrower filter at once; the read fills in the rest.
    const filters = this.filters();
    this.rows = new Map([...this.rows].filter(([, row]) => matches(row, filters)));
    this.render();
    try {
      const page = await listLeads({ ...this.filters(), limit: PAGE_SIZE });
      if (generation !== this.generation) return;
      // Leads submitted from this page that the read model does not hold yet stay in view.
      const pending = [...this.rows.values()].filter((row) => row.pending && matches(row, this.filters()));
      this.rows = new Map(page.leads.map((lead) => [lead.leadId, rowFromSummary(lead)]));
      for (const row of pending) if (!this.rows.has(row.leadId)) this.rows.set(row.leadId, row);
      this.nextCursor = page.nextCursor;
      showError(this.error, null);
    } catch (error) {
      if (generation !== this.generation) return;
      showError(this.error, error);
    }
    const waiting = this.waiting;
    this.waiting = null;
    for (const update of waiting) this.apply(update, false);
    this.render();
  }

  async loadMore() {
    if (!this.nextCursor) return;
    const generation = this.generation;
    try {
      const page = await listLeads({ ...this.filters(), limit: PAGE_SIZE }, this.nextCursor);
      if (generation !== this.generation) return;
      for (const lead of page.leads) if (!this.rows.has(lead.leadId)) this.rows.set(lead.leadId, rowFromSummary(lead));
      this.nextCursor = page.nextCursor;
      this.render();
    } catch (error) {
      showError(this.error, error);
    }
  }

  // Leads just accepted by the gateway: shown at once, then enriched by the stream.
  addSubmitted(accepted) {
    const fresh = new Map(accepted.map((lead) => [lead.leadId, pendingRow(lead)]));
    for (const [id, row] of this.rows) if (!fresh.has(id)) fresh.set(id, row);
    this.rows = fresh;
    this.render();
  }

  onUpdate(update) {
    if (this.waiting) {
      this.waiting.push(update);
      return;
    }
    this.apply(update, true);
  }

  apply(update, render) {
    const before = this.rows.get(update.leadId);
    const after = applyUpdate(before, update);
    if (!after || after === before) return;
    if (!matches(after, this.filters())) {
      if (!before) return;
      this.rows.delete(update.leadId);
    } else if (before) {
      this.rows.set(update.leadId, after);
    } else {
      // A lead new to this table: the newest activity goes first.
      this.rows = new Map([[update.leadId, after], ...this.rows]);
    }
    if (render) this.renderRow(update.leadId, before);
  }

  sortedRows() {
    const rows = [...this.rows.values()];
    return this.filters().sort === 'score' ? rows.sort(byScore) : rows;
  }

  render() {
    this.body.replaceChildren(...this.sortedRows().map((row) => rowElement(row)));
    this.empty.hidden = this.rows.size > 0;
    this.more.hidden = !this.nextCursor;
    this.knownLeads.replaceChildren(...[...this.rows.values()].map((row) => el('option', { value: row.leadId }, row.name ?? '')));
  }

  // One row changed: redraw it in place and flash it, unless the order may have changed.
  renderRow(leadId, before) {
    const row = this.rows.get(leadId);
    const existing = this.body.querySelector(`tr[data-lead-id="${CSS.escape(leadId)}"]`);
    if (!row || !existing || (this.filters().sort === 'score' && before?.score !== row.score)) {
      this.render();
    } else {
      existing.replaceWith(rowElement(row));
    }
    this.body.querySelector(`tr[data-lead-id="${CSS.escape(leadId)}"]`)?.classList.add('flash');
  }
}

function rowElement(row) {
  const href = `#/leads/${encodeURIComponent(row.leadId)}`;
  return el(
    'tr',
    { 'data-lead-id': row.leadId, 'data-status': row.pending ? 'pending' : (row.status ?? '') },
    el('td', { 'data-field': 'name' }, el('a', { href }, row.name ?? row.leadId)),
    el('td', { 'data-field': 'status' }, el('span', { class: `badge status-${slug(statusLabel(row))}` }, statusLabel(row))),
    el('td', { 'data-field': 'country' }, countryLabel(row)),
    el('td', { 'data-field': 'stage' }, row.stage ? el('span', { class: `badge stage-${row.stage}` }, row.stage) : '—'),
    el('td', { 'data-field': 'score', class: 'num' }, formatScore(row.score)),
    el('td', { 'data-field': 'crm' }, crmLabel(row)),
    el('td', { 'data-field': 'lead-id', class: 'muted mono' }, row.leadId),
  );
}

const slug = (text) => text.toLowerCase().replace(/[^a-z]+/g, '-').replace(/-$/, '');
