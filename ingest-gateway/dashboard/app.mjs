// The dashboard: routes (#/, #/leads/{id}, #/leaderboard), one live connection shared by the
// views, and the forms. Plain ES modules served by the gateway; there is no build step.

import { setUpEventForm, setUpNamesForm } from './forms.mjs';
import { LeaderboardView } from './leaderboard_view.mjs';
import { LeadView } from './lead_view.mjs';
import { LeadsView } from './leads_view.mjs';
import { connectLive } from './live.mjs';

const sections = {
  leads: document.querySelector('#leads-view'),
  lead: document.querySelector('#lead-view'),
  leaderboard: document.querySelector('#leaderboard-view'),
};
const leads = new LeadsView(sections.leads);
const lead = new LeadView(sections.lead);
const leaderboard = new LeaderboardView(sections.leaderboard);
const views = { leads, lead, leaderboard };
let current = 'leads';

function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, '')) || '/';
  const leadMatch = /^\/leads\/(.+)$/.exec(hash);
  current = leadMatch ? 'lead' : hash === '/leaderboard' ? 'leaderboard' : 'leads';
  for (const [name, section] of Object.entries(sections)) section.hidden = name !== current;
  for (const link of document.querySelectorAll('[data-nav]')) link.classList.toggle('active', link.dataset.nav === current);
  if (current === 'lead') lead.show(leadMatch[1]);
  else views[current].refresh();
}

setUpNamesForm(document.querySelector('#names-form'), (accepted) => leads.addSubmitted(accepted));
setUpEventForm(document.querySelector('#event-form'));

const liveStatus = document.querySelector('#live-status');
const STATE_LABELS = { live: 'live', reconnecting: 'reconnecting…', offline: 'offline, retrying…' };
connectLive({
  // The leads table follows every update, even while hidden, so it is current when shown.
  onUpdate: (update) => {
    leads.onUpdate(update);
    if (current !== 'leads') views[current].onUpdate(update);
  },
  onResync: () => {
    if (current !== 'leads') leads.refresh();
    if (current === 'lead') lead.refresh();
    else views[current].refresh();
  },
  onState: (state) => {
    liveStatus.dataset.state = state;
    liveStatus.textContent = STATE_LABELS[state] ?? state;
  },
});

window.addEventListener('hashchange', route);
route();
