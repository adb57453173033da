// The dashboard: a login page, then routes (#/, #/leads/{id}, #/leaderboard, #/automations,
// #/webhooks) in the chosen project, one live connection shared by the views, and the forms. Plain ES modules served by
// the gateway; there is no build step.

import { getMe, login, logout, setIngestKey, whenSignedOut } from './api.mjs';
import { AutomationsView } from './automations_view.mjs';
import { showError } from './dom.mjs';
import { loadEventTypes, setUpEventForm, setUpNamesForm } from './forms.mjs';
import { LeaderboardView } from './leaderboard_view.mjs';
import { LeadView } from './lead_view.mjs';
import { LeadsView } from './leads_view.mjs';
import { connectLive } from './live.mjs';
import { chooseProject, endSession, session, startSession } from './session.mjs';
import { WebhooksView } from './webhooks_view.mjs';

const loginView = document.querySelector('#login-view');
const loginForm = document.querySelector('#login-form');
const loginError = document.querySelector('#login-error');
const appView = document.querySelector('#app');
const switcher = document.querySelector('#project-switcher');
const eventForm = document.querySelector('#event-form');

const sections = {
  leads: document.querySelector('#leads-view'),
  lead: document.querySelector('#lead-view'),
  leaderboard: document.querySelector('#leaderboard-view'),
  automations: document.querySelector('#automations-view'),
  webhooks: document.querySelector('#webhooks-view'),
};
const leads = new LeadsView(sections.leads);
const lead = new LeadView(sections.lead);
const leaderboard = new LeaderboardView(sections.leaderboard);
const views = {
  leads,
  lead,
  leaderboard,
  automations: new AutomationsView(sections.automations),
  webhooks: new WebhooksView(sections.webhooks),
};
// The routes that are one page each; the rest is a lead's page or the leads.
const PAGES = { '/leaderboard': 'leaderboard', '/automations': 'automations', '/webhooks': 'webhooks' };
let current = 'leads';
let live = null;

function route() {
  if (!session.email) return;
  const hash = decodeURIComponent(location.hash.replace(/^#/, '')) || '/';
  const leadMatch = /^\/leads\/(.+)$/.exec(hash);
  const previous = current;
  current = leadMatch ? 'lead' : (PAGES[hash] ?? 'leads');
  if (previous !== current) views[previous].leave?.();
  for (const [name, section] of Object.entries(sections)) section.hidden = name !== current;
  for (const link of document.querySelectorAll('[data-nav]')) link.classList.toggle('active', link.dataset.nav === current);
  if (current === 'lead') lead.show(leadMatch[1]);
  else views[current].refresh();
}

setUpNamesForm(document.querySelector('#names-form'), (accepted) => leads.addSubmitted(accepted));
setUpEventForm(eventForm);
document.querySelector('#ingest-key').addEventListener('input', (event) => setIngestKey(event.target.value));

const liveStatus = document.querySelector('#live-status');
const STATE_LABELS = { live: 'live', reconnecting: 'reconnecting…', offline: 'offline, retrying…' };

// The chosen project's stream; a new one on every switch, since a stream is one project's.
function startLive() {
  live?.close();
  live = connectLive({
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
}

// Everything the page shows is the chosen project's: read it all again.
function showProject() {
  leads.rows.clear(); // the last project's, including its pending submissions
  loadEventTypes(eventForm);
  if (current === 'lead') location.hash = '#/';
  route();
  startLive();
}

function signedIn(answer) {
  startSession(answer);
  loginView.hidden = true;
  appView.hidden = false;
  document.querySelector('#user-email').textContent = session.email;
  switcher.replaceChildren(...session.projects.map((id) => new Option(id, id, false, id === session.project)));
  if (!session.project) {
    showError(document.querySelector('#leads-error'), new Error('you belong to no project yet; ask an admin to add you to one'));
    return;
  }
  showProject();
}

function signedOut(message) {
  live?.close();
  live = null;
  views[current].leave?.();
  endSession();
  appView.hidden = true;
  loginView.hidden = false;
  showError(loginError, message ? new Error(message) : null);
  document.querySelector('#login-password').value = '';
  document.querySelector('#login-email').focus();
}

switcher.addEventListener('change', () => {
  chooseProject(switcher.value);
  showProject();
});

loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const data = new FormData(loginForm);
  const button = loginForm.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    signedIn(await login(data.get('email').trim(), data.get('password')));
    showError(loginError, null);
  } catch (error) {
    // The gateway's own words: a wrong email or password, too many attempts, or a bad field.
    showError(loginError, error);
  } finally {
    button.disabled = false;
  }
});

document.querySelector('#logout').addEventListener('click', async () => {
  try {
    await logout();
  } finally {
    signedOut();
  }
});

whenSignedOut(() => {
  if (session.email) signedOut('your session has ended; log in again');
});

window.addEventListener('hashchange', route);

// A session cookie from before (a reload) is still good until it expires.
try {
  signedIn(await getMe());
} catch (error) {
  signedOut(error.status === 401 ? null : error.message);
}
