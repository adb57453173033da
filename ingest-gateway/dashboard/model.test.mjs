// `node --test ingest-gateway/dashboard/` (scripts/test runs it): the dashboard's pure logic.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { applyUpdate, byScore, crmLabel, explainLeadErrors, matches, parseNames, pendingRow, rowFromSummary } from './model.mjs';
import { niceCeiling, scoreChart } from './chart.mjs';

test('names: one per line, optional email and company, blank lines skipped', () => {
  const { names, errors } = parseNames('Ada Lovelace, ada@example.com, Analytical Engines\n\n  Kenji Watanabe  \nZoë,,Nordlys AB\n');
  assert.deepEqual(errors, []);
  assert.deepEqual(names, [
    { lead: { name: 'Ada Lovelace', email: 'ada@example.com', company: 'Analytical Engines' }, line: 1 },
    { lead: { name: 'Kenji Watanabe' }, line: 3 },
    { lead: { name: 'Zoë', company: 'Nordlys AB' }, line: 4 },
  ]);
});

test('names: a line without a name or with too many parts is refused by line number', () => {
  const { errors } = parseNames('Ada\n, ada@example.com\na, b, c, d');
  assert.deepEqual(errors.map((e) => e.line), [2, 3]);
  assert.equal(parseNames('  \n ').errors[0].message, 'enter at least one name');
  assert.match(parseNames('x\n'.repeat(501)).errors[0].message, /at most 500/);
});

test("the gateway's field errors point at the person's line", () => {
  const submitted = parseNames('Ada\n\nGrace, not-an-email').names;
  const messages = explainLeadErrors(
    [{ field: 'names[1].email', message: 'email must be an address' }, { field: 'names', message: 'too many' }],
    submitted,
  );
  assert.deepEqual(messages, ['line 3: email must be an address', 'too many']);
});

test('a submitted lead turns Verified, scored and synced from live updates', () => {
  let row = pendingRow({ leadId: 'l1', name: 'Ada' });
  assert.equal(row.pending, true);
  row = applyUpdate(row, { kind: 'enriched', leadId: 'l1', name: 'Ada', status: 'Verified', countryCode: 'GB', probability: 0.8 });
  assert.equal(row.pending, false);
  assert.equal(row.status, 'Verified');
  assert.equal(crmLabel(row), 'waiting');
  row = applyUpdate(row, { kind: 'scored', leadId: 'l1', score: 45, stage: 'warm' });
  assert.deepEqual([row.score, row.stage], [45, 'warm']);
  row = applyUpdate(row, { kind: 'crm_sync', leadId: 'l1', version: 2, status: 'delivered' });
  row = applyUpdate(row, { kind: 'crm_sync', leadId: 'l1', version: 1, status: 'delivered' });
  assert.equal(crmLabel(row), 'synced v2', 'an older receipt arriving late does not go back');
});

test("a review outranks the enrichment, whichever arrives first", () => {
  let row = applyUpdate(undefined, { kind: 'enriched', leadId: 'l2', name: 'Kenji', status: 'To Check' });
  row = applyUpdate(row, { kind: 'reviewed', leadId: 'l2', decision: 'Verified' });
  row = applyUpdate(row, { kind: 'enriched', leadId: 'l2', name: 'Kenji', status: 'To Check' });
  assert.equal(row.status, 'Verified');
});

test('only an enrichment can add a lead the table does not show; unknown kinds change nothing', () => {
  assert.equal(applyUpdate(undefined, { kind: 'scored', leadId: 'x', score: 5, stage: 'cold' }), undefined);
  const row = rowFromSummary({ leadId: 'x', name: 'X' });
  assert.equal(applyUpdate(row, { kind: 'something_new', leadId: 'x' }), row);
});

test('filters: status, stage and a case-blind name search', () => {
  const row = { ...rowFromSummary({ leadId: 'a', name: 'Ada Lovelace', status: 'Verified', stage: 'hot' }) };
  assert.ok(matches(row, { status: 'Verified', stage: 'hot', q: 'LOVE' }));
  assert.ok(!matches(row, { status: 'To Check' }));
  assert.ok(!matches(row, { stage: 'cold' }));
  assert.ok(!matches(row, { q: 'grace' }));
  assert.ok(!matches(pendingRow({ leadId: 'p', name: 'P' }), { status: 'Verified' }));
});

test('score order: highest first, unscored last, ties by lead id', () => {
  const rows = [{ leadId: 'c', score: null }, { leadId: 'b', score: 5 }, { leadId: 'a', score: 5 }, { leadId: 'd', score: 9 }];
  assert.deepEqual(rows.sort(byScore).map((r) => r.leadId), ['d', 'a', 'b', 'c']);
});

test('chart: time runs left to right, score bottom to top, thresholds drawn', () => {
  const entries = [
    { timestamp: '2026-01-16T10:00:00Z', score: 5, stage: 'cold' },
    { timestamp: '2026-01-16T10:05:00Z', score: 25, stage: 'warm' },
    { timestamp: '2026-01-16T10:10:00Z', score: 75, stage: 'hot' },
  ];
  const chart = scoreChart(entries, { warm: 20, hot: 50, qualified: 100 });
  const [a, b, c] = chart.points;
  assert.ok(a.x < b.x && b.x < c.x);
  assert.ok(a.y > b.y && b.y > c.y, 'a higher score is drawn higher');
  assert.equal(a.x, chart.size.left);
  assert.equal(c.x, chart.size.width - chart.size.right);
  assert.equal(chart.path.split(' ').length, 3);
  assert.deepEqual(chart.thresholdLines.map((t) => t.stage), ['warm', 'hot', 'qualified']);
  assert.ok(chart.thresholdLines[2].y >= chart.size.top, 'the qualified line fits');
});

test('chart: a single event sits in the middle', () => {
  const chart = scoreChart([{ timestamp: '2026-01-16T10:00:00Z', score: 10 }], null);
  const middle = chart.size.left + (chart.size.width - chart.size.left - chart.size.right) / 2;
  assert.equal(chart.points[0].x, Math.round(middle * 10) / 10);
  assert.deepEqual([niceCeiling(7), niceCeiling(105), niceCeiling(0.3), niceCeiling(100)], [8, 125, 0.3, 100]);
});

test('a row shows the score as of now, which sort=score ranks by, else the stored one', () => {
  assert.equal(rowFromSummary({ leadId: 'a', score: 100, effectiveScore: 18.4 }).score, 18.4);
  assert.equal(rowFromSummary({ leadId: 'b', score: 30 }).score, 30);
  assert.equal(rowFromSummary({ leadId: 'c' }).score, null);
});
