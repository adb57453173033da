// Bundles npm's @segment/analytics-next into one IIFE script (dist/analytics-next.js, global
// `SegmentAnalytics`) for the page that sdk_analytics_next.mjs serves, as a site would bundle it.
// It builds only when the bundle is missing or was built from other inputs (the lock file's
// packages, this entry), so repeated test runs cost nothing.
// Run: node build_bundle.mjs (scripts/install-browser-test does; sdk_analytics_next.mjs checks).

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const entry = join(here, 'analytics_next_entry.mjs');
export const bundlePath = join(here, 'dist', 'analytics-next.js');
const stampPath = join(here, 'dist', 'analytics-next.stamp');

// What the bundle is made from: the installed packages (the lock npm ci installed) and the entry.
function inputsDigest() {
  const hash = createHash('sha256');
  hash.update(readFileSync(join(here, 'node_modules', '.package-lock.json')));
  hash.update(readFileSync(entry));
  return hash.digest('hex');
}

/** Builds the bundle unless an up-to-date one is there; returns its path. */
export async function ensureBundle(log = () => {}) {
  const digest = inputsDigest();
  if (existsSync(bundlePath) && existsSync(stampPath) && readFileSync(stampPath, 'utf8') === digest) {
    return bundlePath;
  }
  const { build } = await import('esbuild');
  mkdirSync(dirname(bundlePath), { recursive: true });
  await build({
    entryPoints: [entry],
    bundle: true,
    format: 'iife',
    globalName: 'SegmentAnalytics',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    outfile: bundlePath,
    logLevel: 'warning',
  });
  writeFileSync(stampPath, digest);
  log(`built ${bundlePath}`);
  return bundlePath;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await ensureBundle((message) => console.log(`   ${message}`));
}
