// Drives the dashboard in a real headless Chromium, as a person would: log in on the login page
// (a wrong password first, shown plainly), enter the project key the forms post with, submit names, watch them
// appear and turn Verified (or To Check) without reloading, watch the Verified ones reach the
// CRM, fire two events and watch the score move, lose the connection and get the missed update
// on reconnecting (Last-Event-ID), filter, open a lead's chart, look at the leaderboard, and
// verify a To Check lead from its page. Screenshots of each step go to $SCREENSHOT_DIR.
//
// Run by ingest-gateway/tests/dashboard_browser.rs, which starts the pipeline and passes:
//   DASHBOARD_URL   the gateway, e.g. http://127.0.0.1:41234/
//   CHROMIUM        the browser binary (Debian's /usr/bin/chromium)
//   SCREENSHOT_DIR  where the screenshots go
//   USER_EMAIL, USER_PASSWORD  a dashboard user of the project (registered through the API)
//   PROJECT         that project; the user belongs to it first, and to OTHER_PROJECT (empty)
//   OTHER_PROJECT   a second project of the user's, with no leads: switching to it shows none
//   PROJECT_KEY     a key of the project with the ingest and read scopes: the forms post with it,
//                   and this script's own calls to the gateway use it
//   LEADS           JSON [{name, email?, expected: "Verified" | "To Check"}]; the first To Check
//                   lead is verified from its page
// Exits 0 when every step held, 1 with the failed step otherwise.

import net from 'node:net';
import { expectCount as waitForCount, expectText as waitForText, logger, openPage, required, runSteps } from './harness.mjs';

const gateway = required('DASHBOARD_URL');
const leads = JSON.parse(required('LEADS'));
const projectKey = required('PROJECT_KEY');
const keyHeaders = { 'x-api-key': projectKey };
const STEP_MS = 90_000; // enrichment, scoring and delivery through real Kafka on two cores
const log = logger('dashboard');

// The page reaches the gateway through a proxy this script can cut, to drop its live connection.
const proxy = await startProxy(new URL(gateway));
const url = proxy.url;
const opened = await openPage(log);
const { page, pageErrors, screenshot } = opened;
const expectText = (locator, expected, what) => waitForText(page, locator, expected, what, STEP_MS);
const expectCount = (locator, ok, what) => waitForCount(page, locator, ok, what, STEP_MS);

await runSteps(opened, log, async () => {
  await page.goto(url);
  // Not logged in: the login page, and nothing of the project.
  await page.waitForSelector('#login-form', { state: 'visible', timeout: 30_000 });
  if (!(await page.locator('#app').isHidden())) throw new Error('the dashboard shows before a login');
  await page.fill('#login-email', required('USER_EMAIL'));
  await page.fill('#login-password', 'not the password at all');
  await page.click('#login-form button[type=submit]');
  await expectText(page.locator('#login-error'), 'email or password is wrong', 'the login error');
  log('a wrong password: the login page says "email or password is wrong"');
  await page.fill('#login-password', required('USER_PASSWORD'));
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#live-status[data-state="live"]', { timeout: 30_000 });
  const chosen = await page.inputValue('#project-switcher');
  const offered = await page.locator('#project-switcher option').allTextContents();
  if (chosen !== required('PROJECT') || offered.join() !== [required('PROJECT'), required('OTHER_PROJECT')].join()) {
    throw new Error(`the project switcher offers ${offered} with ${chosen} chosen`);
  }
  const cookies = await page.context().cookies();
  const sessionCookie = cookies.find((c) => c.name === 'leadflow_session');
  if (!sessionCookie?.httpOnly || sessionCookie.sameSite !== 'Strict') throw new Error(`the session cookie: ${JSON.stringify(sessionCookie)}`);
  if (await page.evaluate(() => document.cookie.includes('leadflow_session'))) throw new Error('a script can read the session cookie');
  // Before the login, GET /api/auth/me and the wrong password were 401s, as they should be.
  pageErrors.splice(0, Infinity);
  log('logged in: the page is live on /api/stream, in the project the switcher shows; the cookie is HttpOnly, SameSite=Strict');
  await screenshot('logged-in');
  await page.fill('#ingest-key', projectKey);
  // Set once; a reload would drop it, so at the end it proves the table changed in place.
  await page.evaluate(() => {
    window.loadedOnce = true;
  });

  // Submit every name in one go.
  const lines = leads.map((lead) => (lead.email ? `${lead.name}, ${lead.email}` : lead.name));
  await page.fill('#names-input', lines.join('\n'));
  await page.click('#names-form button[type=submit]');
  const result = await page.waitForSelector('#names-form .form-result.ok', { timeout: 30_000 });
  log(`names form: ${await result.textContent()}`);

  const rowOf = (name) => page.locator('#leads-table tbody tr', { has: page.locator('td[data-field=name]', { hasText: name }) });
  const ids = {};
  for (const lead of leads) {
    const row = rowOf(lead.name);
    await row.waitFor({ timeout: 10_000 });
    ids[lead.name] = await row.getAttribute('data-lead-id');
  }
  log(`${leads.length} rows appeared: ${Object.values(ids).join(', ')}`);
  await screenshot('submitted');

  for (const lead of leads) {
    await expectText(rowOf(lead.name).locator('td[data-field=status]'), lead.expected, `${lead.name}'s status`);
  }
  log(`every lead turned ${[...new Set(leads.map((l) => l.expected))].join(' or ')} as predicted`);
  const verified = leads.filter((lead) => lead.expected === 'Verified');
  const toCheck = leads.filter((lead) => lead.expected === 'To Check');
  for (const lead of verified) {
    await expectText(rowOf(lead.name).locator('td[data-field=crm]'), /^synced v\d+$/, `${lead.name} in the CRM`);
  }
  for (const lead of toCheck) {
    await expectText(rowOf(lead.name).locator('td[data-field=crm]'), '—', `${lead.name} kept out of the CRM`);
  }
  log(`${verified.length} Verified leads show as synced to the CRM; ${toCheck.length} To Check leads do not`);
  await screenshot('enriched-and-synced');

  // Two events for the first Verified lead, from the form; the score moves live.
  const star = verified[0];
  const { rules } = await (await page.request.get(new URL('/api/scoring-rules', gateway).toString(), { headers: keyHeaders })).json();
  const expectedScore = rules.points.page_view + rules.points.demo_request;
  for (const type of ['page_view', 'demo_request']) {
    await page.fill('#event-lead', ids[star.name]);
    await page.selectOption('#event-type', type);
    await page.click('#event-form button[type=submit]');
    await page.waitForSelector('#event-form .form-result.ok', { timeout: 30_000 });
    // The next submit must show its own answer.
    await page.evaluate(() => document.querySelector('#event-form .form-result').replaceChildren());
  }
  await expectText(rowOf(star.name).locator('td[data-field=score]'), String(expectedScore), `${star.name}'s score`);
  log(`${star.name} scored ${expectedScore} live from page_view + demo_request`);
  await screenshot('scored');

  // The connection drops, an update happens meanwhile, the connection comes back: the browser
  // resumes with Last-Event-ID and the gateway replays what was missed, with no re-read.
  const seen = [];
  page.on('request', (request) => seen.push(request));
  const errorsBeforeCut = pageErrors.length;
  proxy.cut();
  await page.waitForSelector('#live-status:not([data-state="live"])', { timeout: 30_000 });
  log(`connection cut: the page says "${await page.locator('#live-status').textContent()}"`);
  const resumedScore = expectedScore + rules.points.signup;
  // Watch the gateway directly, so the page is let back in only once the update has happened.
  const happened = nextUpdate(gateway, (u) => u.kind === 'scored' && u.leadId === ids[star.name] && u.score === resumedScore);
  await happened.ready;
  const missed = await page.request.post(new URL('/api/events', gateway).toString(), {
    data: { leadId: ids[star.name], eventType: 'signup' },
    headers: keyHeaders,
  });
  if (missed.status() !== 202) throw new Error(`the signup event got ${missed.status()}`);
  await happened.update;
  proxy.restore();
  await expectText(rowOf(star.name).locator('td[data-field=score]'), String(resumedScore), `${star.name}'s score after the reconnect`);
  const streams = seen.filter((r) => new URL(r.url()).pathname === '/api/stream');
  const resumedWith = (await Promise.all(streams.map((r) => r.allHeaders()))).map((h) => h['last-event-id']).filter(Boolean);
  const reads = seen.filter((r) => new URL(r.url()).pathname === '/api/leads');
  if (!resumedWith.length) throw new Error(`none of the ${streams.length} reconnects sent Last-Event-ID`);
  if (reads.length) throw new Error(`the page re-read the leads ${reads.length} times instead of resuming`);
  // The browser reports the connections the cut broke; those errors are the point here.
  pageErrors.splice(errorsBeforeCut, Infinity, ...pageErrors.slice(errorsBeforeCut).filter((e) => !/net::ERR_/.test(e)));
  log(`reconnected with Last-Event-ID ${resumedWith[0]}: the missed signup arrived (score ${resumedScore}), no re-read`);

  // The status filter: only To Check leads, then everyone again.
  if (toCheck.length) {
    await page.selectOption('#filters select[name=status]', 'To Check');
    await expectCount(page.locator('#leads-table tbody tr[data-status="To Check"]'), (n) => n >= toCheck.length, 'To Check rows');
    await expectCount(page.locator('#leads-table tbody tr:not([data-status="To Check"])'), (n) => n === 0, 'rows of other statuses under the To Check filter');
    await rowOf(toCheck[0].name).waitFor({ timeout: 10_000 });
    log('the status filter shows only To Check leads');
    await screenshot('filtered-to-check');
    await page.selectOption('#filters select[name=status]', '');
  }

  if (!(await page.evaluate(() => window.loadedOnce === true))) throw new Error('the page reloaded: updates were not live');
  log('every change above arrived without a reload');

  // The lead's page: chart, history and intelligence.
  await rowOf(star.name).locator('td[data-field=name] a').click();
  // page_view, demo_request, signup: three points, each higher than the last.
  await expectCount(page.locator('#score-chart svg circle'), (n) => n === 3, "points on the lead's chart");
  await expectCount(page.locator('#history-table tbody tr'), (n) => n === 3, 'history rows');
  await expectText(page.locator('[data-fact=velocity]'), '3 events in the last 24 h', 'velocity');
  // Hot (75) with three events in a day: the intelligence rules say reach out now.
  await expectText(page.locator('[data-fact=next-action]'), 'Immediate outreach', 'next action');
  const path = await page.locator('#score-chart svg path.score-line').getAttribute('d');
  const heights = [...path.matchAll(/[ML][\d.]+,([\d.]+)/g)].map((m) => Number(m[1]));
  if (heights.length !== 3 || !(heights[0] > heights[1] && heights[1] > heights[2])) {
    throw new Error(`the score line should climb through 3 points: ${path}`);
  }
  log(`${star.name}'s page: a 3-point rising chart (${path}), 3 history rows, next action "Immediate outreach"`);
  await screenshot('lead-chart');

  await page.click('[data-nav=leaderboard]');
  await page.locator(`#leaderboard-table tbody tr[data-lead-id="${ids[star.name]}"]`).waitFor({ timeout: 10_000 });
  log(`${star.name} is on the leaderboard`);
  await screenshot('leaderboard');

  // A person verifies the first To Check lead from its page; the page follows it to the CRM.
  if (toCheck.length) {
    const doubtful = toCheck[0];
    await page.goto(new URL(`#/leads/${encodeURIComponent(ids[doubtful.name])}`, url).toString());
    await page.locator('#lead-review button[data-decision=Verified]').click({ timeout: 30_000 });
    await page.waitForSelector('#lead-review .form-result.ok', { timeout: 30_000 });
    await expectText(page.locator('[data-fact=status]'), 'Verified', `${doubtful.name}'s status after the review`);
    await expectText(page.locator('[data-fact=crm]'), /^synced v\d+ at /, `${doubtful.name} in the CRM after the review`);
    if (!(await page.locator('#lead-review').isHidden())) throw new Error('the review buttons stay after the decision');
    log(`${doubtful.name}, To Check, verified from its page and synced to the CRM`);
    await screenshot('reviewed');
  }

  // The other project: its own (empty) leads and its own stream; then back.
  await page.click('[data-nav=leads]');
  const switched = [];
  const onRequest = (request) => switched.push(request.url());
  page.on('request', onRequest);
  await page.selectOption('#project-switcher', required('OTHER_PROJECT'));
  await page.waitForSelector('#leads-empty:not([hidden])', { timeout: 30_000 });
  await page.waitForSelector('#live-status[data-state="live"]', { timeout: 30_000 });
  await expectCount(page.locator('#leads-table tbody tr'), (n) => n === 0, `rows in ${required('OTHER_PROJECT')}`);
  const otherStream = `/api/stream?project=${required('OTHER_PROJECT')}`;
  if (!switched.some((u) => u.endsWith(otherStream))) throw new Error(`no ${otherStream} among ${switched.join(', ')}`);
  log(`switched to ${required('OTHER_PROJECT')}: no leads, and the stream is ${otherStream}`);
  await screenshot('other-project');
  await page.selectOption('#project-switcher', required('PROJECT'));
  await rowOf(star.name).waitFor({ timeout: 30_000 });
  page.off('request', onRequest);
  log(`back in ${required('PROJECT')}: its leads again`);

  // Logging out ends the session: back on the login page, and the API refuses the old page.
  await page.click('#logout');
  await page.waitForSelector('#login-form', { state: 'visible', timeout: 10_000 });
  if (!(await page.locator('#app').isHidden())) throw new Error('the dashboard still shows after logging out');
  if ((await page.context().cookies()).some((c) => c.name === 'leadflow_session')) throw new Error('the session cookie outlived the logout');
  log('logged out: the login page again, and no session cookie');
  await screenshot('logged-out');
});
proxy.close();

// A TCP proxy to `target` on a port of the OS's choosing. `cut()` closes every connection and
// refuses new ones until `restore()`.
async function startProxy(target) {
  const open = new Set();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(target.port), target.hostname);
    const pair = [client, upstream];
    for (const socket of pair) {
      open.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        for (const s of pair) {
          s.destroy();
          open.delete(s);
        }
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    cut() {
      refusing = true;
      for (const socket of open) socket.destroy();
    },
    restore() {
      refusing = false;
    },
    close() {
      server.close();
      for (const socket of open) socket.destroy();
    },
  };
}

// The first `lead` update on the gateway's stream that satisfies `wanted`: `ready` settles once
// the stream is open (it holds only what happens after that), `update` with the update.
function nextUpdate(base, wanted) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), STEP_MS);
  let opened;
  const ready = new Promise((resolve) => (opened = resolve));
  const update = (async () => {
    const response = await fetch(new URL('/api/stream', base), { signal: controller.signal, headers: keyHeaders });
    opened();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error('the stream ended');
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trim()).join('');
          if (block.includes('event: lead') && wanted(JSON.parse(data))) return JSON.parse(data);
        }
      }
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  })();
  update.catch(() => opened());
  return { ready, update };
}
