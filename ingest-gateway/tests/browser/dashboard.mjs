// Drives the dashboard in a real headless Chromium, as a person would: submit names, watch them
// appear and turn Verified (or To Check) without reloading, watch the Verified ones reach the
// CRM, fire two events and watch the score move, filter, open a lead's chart, look at the
// leaderboard, and verify a To Check lead from its page. Screenshots of each step go to $SCREENSHOT_DIR.
//
// Run by ingest-gateway/tests/dashboard_browser.rs, which starts the pipeline and passes:
//   DASHBOARD_URL   the gateway, e.g. http://127.0.0.1:41234/
//   CHROMIUM        the browser binary (Debian's /usr/bin/chromium)
//   SCREENSHOT_DIR  where the screenshots go
//   LEADS           JSON [{name, email?, expected: "Verified" | "To Check"}]; the first To Check
//                   lead is verified from its page
// Exits 0 when every step held, 1 with the failed step otherwise.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const url = required('DASHBOARD_URL');
const leads = JSON.parse(required('LEADS'));
const screenshots = required('SCREENSHOT_DIR');
const STEP_MS = 90_000; // enrichment, scoring and delivery through real Kafka on two cores

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function log(message) {
  console.log(`[dashboard] ${message}`);
}

mkdirSync(screenshots, { recursive: true });
const browser = await chromium.launch({ executablePath: required('CHROMIUM') });
const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
const pageErrors = [];
page.on('pageerror', (error) => pageErrors.push(error.message));
page.on('console', (message) => {
  if (message.type() === 'error') pageErrors.push(message.text());
});
page.on('response', (response) => {
  if (response.status() >= 400) pageErrors.push(`${response.request().method()} ${response.url()}: ${response.status()}`);
});
let shot = 0;
const screenshot = async (name) => {
  const file = join(screenshots, `${String(++shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${file}`);
};

try {
  await page.goto(url);
  await page.waitForSelector('#live-status[data-state="live"]', { timeout: 30_000 });
  log('the page is live on /api/stream');
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
  const { rules } = await (await page.request.get(new URL('/api/scoring-rules', url).toString())).json();
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
  await expectCount(page.locator('#score-chart svg circle'), (n) => n === 2, "points on the lead's chart");
  await expectCount(page.locator('#history-table tbody tr'), (n) => n === 2, 'history rows');
  await expectText(page.locator('[data-fact=velocity]'), '2 events in the last 24 h', 'velocity');
  const action = await page.locator('[data-fact=next-action]').textContent();
  const path = await page.locator('#score-chart svg path.score-line').getAttribute('d');
  if (!/^M[\d.]+,[\d.]+ L[\d.]+,[\d.]+$/.test(path)) throw new Error(`the score line is ${path}`);
  log(`${star.name}'s page: a 2-point chart (${path}), 2 history rows, next action "${action}"`);
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

  if (pageErrors.length) throw new Error(`the page logged errors: ${pageErrors.join(' | ')}`);
  log('passed');
} catch (error) {
  log(`FAILED: ${error.message}`);
  if (pageErrors.length) log(`page errors: ${pageErrors.join(' | ')}`);
  await screenshot('failure').catch(() => {});
  await browser.close();
  process.exit(1);
}
await browser.close();

async function expectText(locator, expected, what) {
  const deadline = Date.now() + STEP_MS;
  let seen;
  while (Date.now() < deadline) {
    seen = (await locator.textContent({ timeout: STEP_MS }).catch(() => null))?.trim();
    if (typeof expected === 'string' ? seen === expected : expected.test(seen ?? '')) return;
    await page.waitForTimeout(100);
  }
  throw new Error(`${what}: expected ${expected}, still ${JSON.stringify(seen)} after ${STEP_MS / 1000} s`);
}

async function expectCount(locator, ok, what) {
  const deadline = Date.now() + STEP_MS;
  let count;
  while (Date.now() < deadline) {
    count = await locator.count();
    if (ok(count)) return;
    await page.waitForTimeout(100);
  }
  throw new Error(`${what}: ${count} after ${STEP_MS / 1000} s`);
}
