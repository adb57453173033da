// The score-over-time chart's geometry, from a lead's history (`GET /api/leads/{id}/history`)
// and the stage thresholds in force. Pure: lead.mjs turns it into SVG.

export const CHART = { width: 720, height: 260, left: 44, right: 16, top: 12, bottom: 28 };

const round = (n) => Math.round(n * 10) / 10;

// entries: [{timestamp (RFC 3339), score, stage, eventType}], in timestamp order.
// thresholds: {warm, hot, qualified}, or null when the rules are unknown.
export function scoreChart(entries, thresholds, size = CHART) {
  const plotWidth = size.width - size.left - size.right;
  const plotHeight = size.height - size.top - size.bottom;
  const times = entries.map((e) => Date.parse(e.timestamp));
  const first = Math.min(...times);
  const last = Math.max(...times);
  const highest = Math.max(1, ...entries.map((e) => e.score), ...(thresholds ? [thresholds.qualified] : []));
  const top = niceCeiling(highest * 1.05);
  // One event, or several at one instant, sit in the middle.
  const x = (t) => size.left + (last === first ? plotWidth / 2 : ((t - first) / (last - first)) * plotWidth);
  const y = (score) => size.top + plotHeight - (score / top) * plotHeight;

  const points = entries.map((entry, i) => ({ x: round(x(times[i])), y: round(y(entry.score)), entry }));
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${p.x},${p.y}`).join(' ');
  const thresholdLines = thresholds
    ? ['warm', 'hot', 'qualified'].map((stage) => ({ stage, value: thresholds[stage], y: round(y(thresholds[stage])) }))
    : [];
  const yTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => ({ value: round(top * f), y: round(y(top * f)) }));
  const xTicks = entries.length
    ? [...new Set([first, last])].map((t) => ({ label: new Date(t).toISOString().slice(0, 16).replace('T', ' '), x: round(x(t)) }))
    : [];
  return { size, points, path, thresholdLines, yTicks, xTicks };
}

// The smallest round number (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten) that is
// at least `n`, so the top of the axis is a number people read at a glance.
export function niceCeiling(n) {
  const power = 10 ** Math.floor(Math.log10(n));
  return [1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => Number((m * power).toPrecision(12))).find((candidate) => candidate >= n);
}
