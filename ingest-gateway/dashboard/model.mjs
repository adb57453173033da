// The dashboard's pure logic: reading the names form, folding live updates into table rows,
// and deciding which rows a filter shows. No DOM and no network, so `node --test` checks it
// (model.test.mjs).

export const MAX_NAMES = 500; // the gateway's MAX_NAMES_PER_BATCH

// One lead per non-blank line: `name` or `name, email, company` (empty parts are left out).
// Returns {names, errors}; errors name the line, since the gateway's `names[i]` is not what a
// person sees.
export function parseNames(text) {
  const names = [];
  const errors = [];
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (!line) return;
    const [name, email, company, ...rest] = line.split(',').map((part) => part.trim());
    if (rest.length) {
      errors.push({ line: index + 1, message: 'has more than three comma-separated parts (name, email, company)' });
      return;
    }
    if (!name) {
      errors.push({ line: index + 1, message: 'has no name before the first comma' });
      return;
    }
    const lead = { name };
    if (email) lead.email = email;
    if (company) lead.company = company;
    names.push({ lead, line: index + 1 });
  });
  if (!names.length && !errors.length) errors.push({ line: null, message: 'enter at least one name' });
  if (names.length > MAX_NAMES) errors.push({ line: null, message: `at most ${MAX_NAMES} names at once; got ${names.length}` });
  return { names, errors };
}

// The gateway's `names[3].email` becomes "line 7: email …" for the person who typed it.
export function explainLeadErrors(details, submitted) {
  return details.map((detail) => {
    const match = /^names\[(\d+)\]\.?(.*)$/.exec(detail.field ?? '');
    if (!match) return detail.message;
    const entry = submitted[Number(match[1])];
    return `line ${entry ? entry.line : '?'}: ${detail.message}`;
  });
}

// A row as the table shows it, from a lead of `GET /api/leads` (a LeadSummary).
export function rowFromSummary(lead) {
  return {
    leadId: lead.leadId,
    name: lead.name ?? null,
    status: lead.status ?? null,
    countryCode: lead.countryCode ?? null,
    probability: lead.probability ?? null,
    stage: lead.stage ?? null,
    // The score as of now, which `sort=score` ranks by; a `scored` update's score is as of an
    // event that just happened, so it is the score now too.
    score: lead.effectiveScore ?? lead.score ?? null,
    syncedVersion: lead.syncedVersion ?? 0,
    crmError: null,
    reviewed: false,
    pending: false,
  };
}

// A row for a lead just submitted from this page: it is on its way through Kafka.
export function pendingRow(accepted) {
  return { ...rowFromSummary({ leadId: accepted.leadId, name: accepted.name }), pending: true };
}

// Folds one `lead` event of `/api/stream` into a row (a new object; `row` may be undefined for
// a lead the table does not show yet). Returns undefined when the update cannot make a row.
export function applyUpdate(row, update) {
  const base = row ?? (update.kind === 'enriched' ? rowFromSummary({ leadId: update.leadId }) : undefined);
  if (!base) return undefined;
  const next = { ...base };
  switch (update.kind) {
    case 'enriched':
      next.pending = false;
      next.name = update.name ?? next.name;
      next.countryCode = update.countryCode ?? null;
      next.probability = update.probability ?? null;
      // A person's review outranks the enrichment, as in the read model.
      if (!next.reviewed) next.status = update.status;
      break;
    case 'scored':
      next.score = update.score;
      next.stage = update.stage;
      break;
    case 'reviewed':
      next.reviewed = true;
      next.status = update.decision;
      break;
    case 'crm_sync':
      if (update.status === 'delivered') {
        next.syncedVersion = Math.max(next.syncedVersion, update.version);
        next.crmError = null;
      } else {
        next.crmError = `version ${update.version} was refused`;
      }
      break;
    default:
      return row;
  }
  return next;
}

// Whether a row belongs in the table under `filters` ({status, stage, q}); a submitted lead not
// yet enriched shows only while no status or stage is asked for.
export function matches(row, filters) {
  if (filters.status && row.status !== filters.status) return false;
  if (filters.stage && row.stage !== filters.stage) return false;
  const q = (filters.q ?? '').trim().toLowerCase();
  if (q && !(row.name ?? '').toLowerCase().includes(q)) return false;
  return true;
}

// The table's order for `sort=score`: the read API's (score desc, then lead id), unscored last.
export function byScore(a, b) {
  const sa = a.score ?? -Infinity;
  const sb = b.score ?? -Infinity;
  if (sa !== sb) return sb - sa;
  return a.leadId < b.leadId ? -1 : a.leadId > b.leadId ? 1 : 0;
}

export function crmLabel(row) {
  if (row.crmError) return `refused (${row.crmError})`;
  if (row.syncedVersion > 0) return `synced v${row.syncedVersion}`;
  return row.status === 'Verified' ? 'waiting' : '—';
}

export function countryLabel(row) {
  if (!row.countryCode) return '—';
  return row.probability == null ? row.countryCode : `${row.countryCode} (${Math.round(row.probability * 100)}%)`;
}

export function statusLabel(row) {
  if (row.pending) return 'Enriching…';
  return row.status ?? '—';
}
