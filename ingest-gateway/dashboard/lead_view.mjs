// A lead's page: what the CRM shows, the intelligence, the score over time and the history.
// It re-reads itself when the stream says this lead changed.

import { ApiError, getHistory, getIntelligence, getLead, getScoringRules, reviewLead } from './api.mjs';
import { scoreChart } from './chart.mjs';
import { el, formatScore, formatTime, showError, svg } from './dom.mjs';

const ACTIONS = {
  immediate_outreach: 'Immediate outreach',
  schedule_demo: 'Schedule a demo',
  nurture_campaign: 'Nurture campaign',
};

export class LeadView {
  constructor(root) {
    this.root = root;
    this.leadId = null;
    this.generation = 0;
    this.pendingRefresh = null;
    this.review = root.querySelector('#lead-review');
    for (const button of this.review.querySelectorAll('button')) {
      button.addEventListener('click', () => this.decide(button.dataset.decision));
    }
  }

  // A person's review: To Check leads reach the CRM only through one.
  async decide(decision) {
    const result = this.review.querySelector('.form-result');
    const buttons = this.review.querySelectorAll('button');
    buttons.forEach((b) => (b.disabled = true));
    try {
      await reviewLead(this.leadId, decision);
      result.className = 'form-result ok';
      result.textContent = `${decision}: sent; the page follows it through to the CRM.`;
    } catch (error) {
      result.className = 'form-result error';
      result.textContent = error.message;
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  show(leadId) {
    this.review.hidden = true;
    this.review.querySelector('.form-result').replaceChildren();
    this.leadId = leadId;
    this.root.querySelector('#lead-title').textContent = leadId;
    for (const id of ['#lead-summary', '#lead-intelligence', '#score-chart']) this.root.querySelector(id).replaceChildren();
    this.root.querySelector('#history-table tbody').replaceChildren();
    return this.refresh();
  }

  onUpdate(update) {
    if (update.leadId !== this.leadId) return;
    // Several updates of one lead come together (scored, then synced): read once.
    clearTimeout(this.pendingRefresh);
    this.pendingRefresh = setTimeout(() => this.refresh(), 250);
  }

  async refresh() {
    const leadId = this.leadId;
    const generation = ++this.generation;
    const missing = (promise) => promise.catch((e) => (e instanceof ApiError && e.status === 404 ? null : Promise.reject(e)));
    try {
      const [lead, history, intelligence, rules] = await Promise.all([
        missing(getLead(leadId)),
        missing(getHistory(leadId)),
        missing(getIntelligence(leadId)),
        getScoringRules().catch(() => null),
      ]);
      if (generation !== this.generation) return;
      showError(this.root.querySelector('#lead-error'), lead || history ? null : new Error(
        `${leadId} is not known yet: a lead just submitted appears once it is enriched or scored.`,
      ));
      this.root.querySelector('#lead-title').textContent = lead?.name ? `${lead.name} (${leadId})` : leadId;
      this.renderSummary(lead);
      this.review.hidden = lead?.status !== 'To Check';
      this.renderIntelligence(intelligence);
      this.renderChart(history?.entries ?? [], rules?.rules?.stages ?? null);
      this.renderHistory(history?.entries ?? []);
    } catch (error) {
      if (generation === this.generation) showError(this.root.querySelector('#lead-error'), error);
    }
  }

  renderSummary(lead) {
    const facts = lead
      ? [
          ['Status', lead.status ?? 'not enriched yet'],
          ['Country', lead.countryName ? `${lead.countryName} (${lead.countryCode}, ${Math.round((lead.probability ?? 0) * 100)}%)` : '—'],
          ['Email', lead.email ?? '—'],
          ['Company', lead.company ?? '—'],
          ['Stage', lead.stage ?? '—'],
          ['Score', formatScore(lead.score)],
          ['Score now (decayed)', formatScore(lead.scoring?.effectiveScore)],
          ['CRM', lead.crm.syncedVersion > 0 ? `synced v${lead.crm.syncedVersion} at ${formatTime(lead.crm.syncedAt)}` : 'not in the CRM'],
          ['Review', lead.review ? `${lead.review.decision}${lead.review.reviewer ? ` by ${lead.review.reviewer}` : ''}` : '—'],
        ]
      : [['Read model', 'no view of this lead yet']];
    this.root.querySelector('#lead-summary').replaceChildren(
      el('h3', {}, 'Lead'),
      ...facts.flatMap(([term, value]) => [el('dt', {}, term), el('dd', { 'data-fact': slug(term) }, value)]),
    );
  }

  renderIntelligence(intelligence) {
    const node = this.root.querySelector('#lead-intelligence');
    if (!intelligence) {
      node.replaceChildren(el('h3', {}, 'Intelligence'), el('p', { class: 'muted' }, 'Not scored yet.'));
      return;
    }
    node.replaceChildren(
      el('h3', {}, 'Intelligence'),
      el('dt', {}, 'Next action'),
      el('dd', { 'data-fact': 'next-action' }, ACTIONS[intelligence.nextAction] ?? intelligence.nextAction),
      el('dt', {}, 'Velocity'),
      el('dd', { 'data-fact': 'velocity' }, `${intelligence.velocity} events in the last 24 h`),
      el('dt', {}, 'Risk'),
      el('dd', { 'data-fact': 'risk', class: `risk-${intelligence.risk}` }, intelligence.risk),
      el('dt', {}, 'Last event'),
      el('dd', {}, formatTime(intelligence.lastEventAt)),
    );
  }

  renderChart(entries, thresholds) {
    const node = this.root.querySelector('#score-chart');
    if (!entries.length) {
      node.replaceChildren(el('p', { class: 'muted' }, 'No scored events yet.'));
      return;
    }
    const chart = scoreChart(entries, thresholds);
    const { width, height, left, right } = chart.size;
    node.replaceChildren(
      svg(
        'svg',
        { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `Score over time, ${entries.length} events` },
        chart.yTicks.map((t) => [
          svg('line', { x1: left, x2: width - right, y1: t.y, y2: t.y, class: 'grid' }),
          svg('text', { x: left - 6, y: t.y + 4, class: 'tick', 'text-anchor': 'end' }, t.value),
        ]),
        chart.thresholdLines.map((t) => [
          svg('line', { x1: left, x2: width - right, y1: t.y, y2: t.y, class: `threshold stage-${t.stage}` }),
          svg('text', { x: left + 6, y: t.y - 3, class: 'tick' }, `${t.stage} ${t.value}`),
        ]),
        chart.xTicks.map((t, i) =>
          svg('text', { x: t.x, y: height - 8, class: 'tick', 'text-anchor': i ? 'end' : 'start' }, t.label),
        ),
        svg('path', { d: chart.path, class: 'score-line' }),
        chart.points.map((p) =>
          svg(
            'circle',
            { cx: p.x, cy: p.y, r: 4, class: `point stage-${p.entry.stage}` },
            svg('title', {}, `${p.entry.eventType} at ${formatTime(p.entry.timestamp)}: ${formatScore(p.entry.score)}`),
          ),
        ),
      ),
    );
  }

  renderHistory(entries) {
    const signed = (n) => (n > 0 ? `+${formatScore(n)}` : formatScore(n));
    const body = this.root.querySelector('#history-table tbody');
    if (!entries.length) {
      body.replaceChildren(el('tr', {}, el('td', { colSpan: 7, class: 'muted' }, 'No events yet.')));
      return;
    }
    body.replaceChildren(
      ...entries.map((entry) =>
        el(
          'tr',
          { 'data-event-id': entry.eventId },
          el('td', {}, formatTime(entry.timestamp)),
          el('td', {}, entry.eventType),
          el('td', { class: 'num' }, formatScore(entry.points)),
          el('td', { class: 'num' }, signed(entry.delta)),
          el('td', { class: 'num' }, formatScore(entry.score)),
          el('td', {}, el('span', { class: `badge stage-${entry.stage}` }, entry.stage)),
          el('td', { class: 'muted' }, [entry.reason, entry.late ? 'arrived late' : null].filter(Boolean).join('; ')),
        ),
      ),
    );
  }
}

const slug = (text) => text.toLowerCase().replace(/[^a-z]+/g, '-').replace(/-$/, '');
