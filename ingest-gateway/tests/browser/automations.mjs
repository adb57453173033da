// Drives the dashboard's webhooks and automations pages in a real headless Chromium, as a
// person would: log in, add a webhook subscription to the test's receiver, read its signing
// secret (shown once, and gone once the page is left), send a test delivery and watch it
// succeed in the delivery log; then create a rule "enters hot → that webhook" and see it
// listed, have a rule with an invalid threshold refused with the field named, create and
// delete a notify-sales rule, create an email rule "enters qualified → email to
// sales@example.com" and see it listed, have an email to "not an address" refused on the
// recipients box, and read the executions of the last days: this project's only,
// and an older one only once 30 days are chosen; then switch to the user's other project and
// see its own executions and none of the first's rules or subscriptions. Screenshots of each
// step go to $SCREENSHOT_DIR.
//
// Run by ingest-gateway/tests/automations_browser.rs, which starts the gateway and passes:
//   DASHBOARD_URL   the gateway, e.g. http://127.0.0.1:41234/
//   CHROMIUM        the browser binary (Debian's /usr/bin/chromium)
//   SCREENSHOT_DIR  where the screenshots go
//   USER_EMAIL, USER_PASSWORD  a dashboard user of PROJECT and OTHER_PROJECT
//   PROJECT         the user's first project, new to this run: no rules, no subscriptions
//   OTHER_PROJECT   the user's second project, also new: no rules, no subscriptions
//   RECEIVER_URL    the webhook receiver stand-in, e.g. http://127.0.0.1:41235
//   RECEIVER_PATH   the path the subscription posts to, e.g. /hooks/browser
//   EXECUTIONS      JSON {recent: [execution...], older: execution, otherProject: execution}:
//                   executions in MongoDB, today's and 10 days old of PROJECT, and today's of
//                   OTHER_PROJECT ({executionKey, leadId, ruleId, ruleVersion, utcDay, messageId})
//   RESULT_FILE     where to write {subscriptionId, secret, deliveryId} for the Rust side
// Exits 0 when every step held, 1 with the failed step otherwise.

import { writeFileSync } from 'node:fs';
import { expectCount, expectText, logIn, logger, openPage, required, runSteps } from './harness.mjs';

const url = required('DASHBOARD_URL');
const receiver = required('RECEIVER_URL');
const hookUrl = `${receiver}${required('RECEIVER_PATH')}`;
const project = required('PROJECT');
const executions = JSON.parse(required('EXECUTIONS'));
const STEP_MS = 30_000; // nothing here waits on Kafka consumers: the gateway answers directly
const log = logger('automations');

const opened = await openPage(log);
const { page, pageErrors, screenshot } = opened;
const text = (locator, expected, what) => expectText(page, locator, expected, what, STEP_MS);
const count = (locator, ok, what) => expectCount(page, locator, ok, what, STEP_MS);

// A refusal the step asked for is not an error of the page's: neither the answer nor the line
// Chromium logs for it.
function expectedRefusal(method, path, status) {
  const entries = [`${method} ${new URL(path, url)}: ${status}`, `Failed to load resource: the server responded with a status of ${status} `];
  for (const entry of entries) {
    const at = pageErrors.findIndex((e) => e.startsWith(entry));
    if (at < 0) throw new Error(`expected the page to log ${entry}; it logged ${pageErrors.join(' | ') || 'nothing'}`);
    pageErrors.splice(at, 1);
  }
}

// Fills the rule form: the fields given, the selects by value.
async function fillRule({ id, name, condition, action, ...fields }) {
  await page.fill('#rule-id', id);
  await page.fill('#rule-name', name);
  await page.selectOption('#rule-condition', condition);
  await page.selectOption('#rule-action', action);
  for (const [field, value] of Object.entries(fields)) {
    const input = page.locator(`#rule-form [name=${field}]`);
    if ((await input.evaluate((node) => node.tagName)) === 'SELECT') await input.selectOption(value);
    else await input.fill(value);
  }
}

await runSteps(opened, log, async () => {
  await page.goto(url);
  await page.waitForSelector('#login-form', { state: 'visible', timeout: STEP_MS });
  await logIn(page, required('USER_EMAIL'), required('USER_PASSWORD'));
  // Before the login, GET /api/auth/me was a 401, as it should be.
  pageErrors.splice(0, Infinity);
  if ((await page.inputValue('#project-switcher')) !== project) throw new Error(`the page is not in ${project}`);
  log(`logged in, in ${project}`);

  // ----- Webhooks -----
  await page.click('[data-nav=webhooks]');
  await page.waitForSelector('#webhooks-view:not([hidden])', { timeout: STEP_MS });
  await page.waitForSelector('#webhooks-empty:not([hidden])', { timeout: STEP_MS });
  await page.fill('#webhook-url', hookUrl);
  await page.check('#webhook-kinds input[value="lead.entered_stage"]');
  await page.fill('#webhook-description', 'the browser test\'s receiver');
  await page.click('#webhook-form button[type=submit]');
  await page.waitForSelector('#webhook-secret:not([hidden])', { timeout: STEP_MS });
  const secret = (await page.textContent('#webhook-secret-value')).trim();
  if (!/^whsec_[A-Za-z0-9+/=]+$/.test(secret)) throw new Error(`the secret shown is ${JSON.stringify(secret)}`);
  await text(page.locator('#webhook-secret .muted'), /it will not be shown again/, 'the note under the secret');
  const row = page.locator('#webhooks-table tbody tr');
  await count(row, (n) => n === 1, 'subscriptions listed');
  const subscriptionId = await row.getAttribute('data-subscription-id');
  await text(row.locator('td[data-field=url]'), new RegExp(`^${escapeRegExp(hookUrl)}`), 'the listed URL');
  await text(row.locator('td[data-field=kinds]'), 'lead.entered_stage', 'the listed event kinds');
  await text(row.locator('td[data-field=state]'), 'enabled', 'the listed state');
  log(`subscription ${subscriptionId} to ${hookUrl} added; its secret was shown once`);
  await screenshot('webhook-secret');

  // The receiver checks signatures with the secret from now on (its own check, not LeadFlow's).
  const told = await fetch(`${receiver}/__admin/secrets`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ perPath: { [required('RECEIVER_PATH')]: secret } }),
  });
  if (told.status !== 204) throw new Error(`the receiver took the secret with ${told.status}`);

  await row.locator('button[data-action=test]').click();
  const answer = await text(page.locator('#webhooks-result.ok'), /: succeeded, 200, \d+ ms$/, 'the test answer');
  log(`send test: "${answer}"`);
  await page.waitForSelector(`#deliveries:not([hidden])[data-subscription-id="${subscriptionId}"]`, { timeout: STEP_MS });
  const delivery = page.locator('#deliveries-table tbody tr');
  await count(delivery, (n) => n === 1, 'deliveries in the log');
  await text(delivery.locator('td[data-field=kind]'), 'webhook.test', 'the delivery kind');
  await text(delivery.locator('td[data-field=state]'), 'delivered', 'the delivery state');
  await text(delivery.locator('li[data-outcome=succeeded]'), /: succeeded, 200, \d+ ms$/, 'the attempt');
  const deliveryId = await delivery.getAttribute('data-delivery-id');
  log(`the delivery log shows ${deliveryId}: delivered, one attempt succeeded with 200`);
  await screenshot('webhook-tested');
  writeFileSync(required('RESULT_FILE'), JSON.stringify({ subscriptionId, secret, deliveryId }));

  // Left and come back to: the secret is gone from the page, and the API never answers it.
  await page.click('[data-nav=automations]');
  await page.click('[data-nav=webhooks]');
  await page.waitForSelector('#webhook-secret[hidden]', { state: 'attached', timeout: STEP_MS });
  await count(page.locator('#webhooks-table tbody tr'), (n) => n === 1, 'subscriptions listed again');
  if ((await page.content()).includes(secret)) throw new Error('the secret is still in the page');
  const listed = await page.evaluate(
    async (p) => (await fetch('/api/webhooks', { headers: { 'x-leadflow-project': p } })).text(),
    project,
  );
  if (!listed.includes(subscriptionId) || listed.includes(secret)) throw new Error(`GET /api/webhooks: ${listed}`);
  log('after leaving the page the secret is gone, and GET /api/webhooks does not hold it');

  // ----- Automations -----
  await page.click('[data-nav=automations]');
  await page.waitForSelector('#automations-view:not([hidden])', { timeout: STEP_MS });
  await page.waitForSelector('#rules-empty:not([hidden])', { timeout: STEP_MS });
  await page.waitForSelector(`#rule-subscription option[value="${subscriptionId}"]`, { state: 'attached', timeout: STEP_MS });
  await fillRule({
    id: 'hot-to-hook',
    name: 'Hot leads to the receiver',
    version: 'v1',
    condition: 'entersStage',
    stage: 'hot',
    action: 'webhook',
    subscriptionId,
  });
  await page.click('#rule-form button[type=submit]');
  await text(page.locator('#rule-form .form-result.ok'), /^rule hot-to-hook \(v1\) created: enters hot\.$/, 'the create answer');
  const rule = page.locator('#rules-table tbody tr[data-rule-id="hot-to-hook"]');
  await text(rule.locator('td[data-field=condition]'), 'enters hot', 'the rule\'s condition');
  await text(rule.locator('td[data-field=actions]'), `webhook to ${hookUrl}`, 'the rule\'s action');
  await text(rule.locator('td[data-field=version]'), 'v1', 'the rule\'s version');
  await text(rule.locator('td[data-field=enabled]'), 'yes', 'the rule enabled');
  log('rule hot-to-hook listed: "enters hot" → webhook to the receiver');
  await screenshot('rule-created');

  // A threshold of 0 can never be crossed: the gateway refuses it and names the field.
  await fillRule({ id: 'any-score', name: 'Any score at all', condition: 'scoreCrosses', threshold: '0', action: 'webhook' });
  await page.click('#rule-form button[type=submit]');
  const refusal = await text(page.locator('#rule-form .form-result.error'), /condition\.threshold/, 'the refusal');
  await page.waitForSelector('#rule-threshold[aria-invalid="true"]', { timeout: STEP_MS });
  await count(page.locator('#rule-form [aria-invalid="true"]'), (n) => n === 1, 'inputs marked invalid');
  await count(page.locator('#rules-table tbody tr[data-rule-id="any-score"]'), (n) => n === 0, 'the refused rule listed');
  expectedRefusal('POST', '/api/automations', 400);
  log(`an invalid threshold is refused, naming the field: "${refusal}"`);
  await screenshot('rule-refused');

  // A notify-sales rule, created and deleted again.
  await fillRule({
    id: 'verified-to-sales',
    name: 'Verified leads to sales',
    condition: 'becomesVerified',
    action: 'notifySales',
    channel: '#sales',
    message: '{name} is verified',
  });
  await page.click('#rule-form button[type=submit]');
  await text(page.locator('#rule-form .form-result.ok'), /^rule verified-to-sales \(v1\) created/, 'the second create answer');
  if ((await page.locator('#rule-form [aria-invalid="true"]').count()) !== 0) throw new Error('a field stays marked invalid');
  const sales = page.locator('#rules-table tbody tr[data-rule-id="verified-to-sales"]');
  await text(sales.locator('td[data-field=condition]'), 'becomes Verified', 'the second rule\'s condition');
  await text(sales.locator('td[data-field=actions]'), 'notify sales in #sales: “{name} is verified”', 'the second rule\'s action');
  page.once('dialog', (dialog) => dialog.accept());
  await sales.locator('button').click();
  await text(page.locator('#rules-result.ok'), 'rule verified-to-sales deleted.', 'the delete answer');
  await count(page.locator('#rules-table tbody tr'), (n) => n === 1, 'rules after the delete');
  log('a notify-sales rule was created, listed and deleted');

  // An email rule: choosing email shows its fields (the shared message box too) and hides the
  // other types'.
  await page.selectOption('#rule-action', 'email');
  for (const shown of ['#rule-to', '#rule-subject', '#rule-message']) await page.waitForSelector(shown, { state: 'visible', timeout: STEP_MS });
  for (const hidden of ['#rule-subscription', '#rule-channel']) await page.waitForSelector(hidden, { state: 'hidden', timeout: STEP_MS });
  await fillRule({
    id: 'qualified-to-sales',
    name: 'Qualified leads mailed to sales',
    condition: 'entersStage',
    stage: 'qualified',
    action: 'email',
    to: 'sales@example.com',
    subject: '{name} is qualified',
    message: '{name} ({leadId}) scores {score}',
  });
  await page.click('#rule-form button[type=submit]');
  await text(page.locator('#rule-form .form-result.ok'), /^rule qualified-to-sales \(v1\) created: enters qualified\.$/, 'the email rule\'s create answer');
  const email = page.locator('#rules-table tbody tr[data-rule-id="qualified-to-sales"]');
  await text(email.locator('td[data-field=condition]'), 'enters qualified', 'the email rule\'s condition');
  await text(email.locator('td[data-field=actions]'), 'email to sales@example.com: “{name} is qualified”', 'the email rule\'s action');
  await count(page.locator('#rules-table tbody tr'), (n) => n === 2, 'rules with the email rule');
  const stored = await page.evaluate(
    async (p) => (await fetch('/api/automations/qualified-to-sales', { headers: { 'x-leadflow-project': p } })).json(),
    project,
  );
  const expectedAction = { type: 'email', to: ['sales@example.com'], subject: '{name} is qualified', message: '{name} ({leadId}) scores {score}' };
  if (JSON.stringify(stored.rule?.actions) !== JSON.stringify([expectedAction])) throw new Error(`GET /api/automations/qualified-to-sales: ${JSON.stringify(stored)}`);
  log('rule qualified-to-sales listed: "enters qualified" → email to sales@example.com');
  await screenshot('email-rule-created');

  // Not an address: the gateway names the recipient it refuses, and the recipients box is marked.
  await fillRule({ id: 'mail-nobody', name: 'Mail to nobody', condition: 'becomesVerified', action: 'email', to: 'not an address' });
  await page.click('#rule-form button[type=submit]');
  const badAddress = await text(page.locator('#rule-form .form-result.error'), /actions\[0\]\.to\[0\].*bare address/, 'the address refusal');
  await page.waitForSelector('#rule-to[aria-invalid="true"]', { timeout: STEP_MS });
  await count(page.locator('#rule-form [aria-invalid="true"]'), (n) => n === 1, 'inputs marked invalid for the address');
  await count(page.locator('#rules-table tbody tr[data-rule-id="mail-nobody"]'), (n) => n === 0, 'the refused email rule listed');
  expectedRefusal('POST', '/api/automations', 400);
  log(`an email to "not an address" is refused on the recipients box: "${badAddress}"`);
  await screenshot('email-refused');

  // The executions of the last 7 days: this project's recent ones, not its older one, never
  // another project's.
  const executionRow = (execution) => page.locator(`#executions-table tbody tr[data-execution-key="${execution.executionKey}"]`);
  for (const execution of executions.recent) {
    const shown = executionRow(execution);
    await shown.waitFor({ timeout: STEP_MS });
    await text(shown.locator('td[data-field=rule]'), execution.ruleId, 'an execution\'s rule');
    await text(shown.locator('td[data-field=version]'), execution.ruleVersion, 'an execution\'s rule version');
    await text(shown.locator('td[data-field=day]'), execution.utcDay, 'an execution\'s UTC day');
    await text(shown.locator('td[data-field=outcome]'), 'queued', 'an execution\'s outcome');
    await text(shown.locator(`[data-message-id="${execution.messageId}"]`), execution.messageId, 'an execution\'s message id');
    const href = await shown.locator('td[data-field=lead] a').getAttribute('href');
    if (href !== `#/leads/${encodeURIComponent(execution.leadId)}`) throw new Error(`the lead links to ${href}`);
  }
  await count(page.locator('#executions-table tbody tr'), (n) => n === executions.recent.length, 'executions of the last 7 days');
  for (const absent of [executions.older, executions.otherProject]) {
    if ((await executionRow(absent).count()) !== 0) throw new Error(`${absent.executionKey} is shown under 7 days`);
  }
  log(`${executions.recent.length} executions of the last 7 days, with their leads and message ids; none of another project's`);
  await screenshot('executions');
  await page.selectOption('#executions-days', '30');
  await executionRow(executions.older).waitFor({ timeout: STEP_MS });
  await count(page.locator('#executions-table tbody tr'), (n) => n === executions.recent.length + 1, 'executions of the last 30 days');
  if ((await executionRow(executions.otherProject).count()) !== 0) throw new Error('another project\'s execution is shown');
  log('with 30 days chosen, the 10-day-old execution shows too');
  await screenshot('executions-30-days');

  // The other project: its own execution, and none of the first project's rules.
  await page.selectOption('#project-switcher', required('OTHER_PROJECT'));
  await page.waitForSelector('#rules-empty:not([hidden])', { timeout: STEP_MS });
  await executionRow(executions.otherProject).waitFor({ timeout: STEP_MS });
  await count(page.locator('#executions-table tbody tr'), (n) => n === 1, `executions of ${required('OTHER_PROJECT')}`);
  await count(page.locator('#rules-table tbody tr'), (n) => n === 0, `rules of ${required('OTHER_PROJECT')}`);
  if ((await page.textContent('#rule-form .form-result')).trim()) throw new Error('the first project\'s answer stays on the form');
  await page.click('[data-nav=webhooks]');
  await page.waitForSelector('#webhooks-empty:not([hidden])', { timeout: STEP_MS });
  await count(page.locator('#webhooks-table tbody tr'), (n) => n === 0, `subscriptions of ${required('OTHER_PROJECT')}`);
  if (!(await page.locator('#deliveries').isHidden())) throw new Error('a delivery log shows in the other project');
  log(`in ${required('OTHER_PROJECT')}: its own execution only, no rules, no subscriptions`);
  await screenshot('other-project');
});

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
