// The leaderboard: the top leads by score and how many leads are at each stage. Re-read (at
// most once a second) while shown and scores change.

import { getLeaderboard } from './api.mjs';
import { el, formatScore, showError } from './dom.mjs';
import { coalesced } from './live.mjs';

const STAGES = ['cold', 'warm', 'hot', 'qualified'];

export class LeaderboardView {
  constructor(root) {
    this.root = root;
    this.generation = 0;
    this.refreshSoon = coalesced(() => this.refresh(), 1000);
  }

  onUpdate(update) {
    if (update.kind !== 'scored' && update.kind !== 'reviewed' && update.kind !== 'enriched') return;
    this.refreshSoon();
  }

  async refresh() {
    const generation = ++this.generation;
    try {
      const board = await getLeaderboard(10);
      if (generation !== this.generation) return;
      showError(this.root.querySelector('#leaderboard-error'), null);
      this.root.querySelector('#stage-counts').replaceChildren(
        ...STAGES.map((stage) =>
          el('li', { class: `stage-${stage}`, 'data-stage': stage }, el('strong', {}, board.stages[stage] ?? 0), ` ${stage}`),
        ),
        el('li', {}, el('strong', {}, board.total), ' leads in all'),
      );
      this.root.querySelector('#leaderboard-table tbody').replaceChildren(
        ...board.top.map((lead, i) =>
          el(
            'tr',
            { 'data-lead-id': lead.leadId },
            el('td', { class: 'num' }, i + 1),
            el('td', {}, el('a', { href: `#/leads/${encodeURIComponent(lead.leadId)}` }, lead.name ?? lead.leadId)),
            el('td', {}, lead.status ?? '—'),
            el('td', {}, lead.stage ? el('span', { class: `badge stage-${lead.stage}` }, lead.stage) : '—'),
            el('td', { class: 'num' }, formatScore(lead.effectiveScore ?? lead.score)),
            el('td', { class: 'muted mono' }, lead.leadId),
          ),
        ),
      );
    } catch (error) {
      if (generation === this.generation) showError(this.root.querySelector('#leaderboard-error'), error);
    }
  }
}
