// What the browser scripts share: their environment, a headless Chromium page that records
// what went wrong in it, numbered screenshots, logging in, and waiting for a text or a count
// with a deadline (polled, never a fixed sleep).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

export function logger(tag) {
  return (message) => console.log(`[${tag}] ${message}`);
}

// Chromium ($CHROMIUM) with one page. `pageErrors` collects the page's script errors, console
// errors and every answer of 400 or more: a step that expects one takes it out again.
// `screenshot(name)` writes $SCREENSHOT_DIR/NN-name.png.
export async function openPage(log) {
  const screenshots = required('SCREENSHOT_DIR');
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
  return { browser, page, pageErrors, screenshot };
}

// Runs the script's `steps`; after them the page must have logged no errors. Exits 1 with the
// step that failed (and a screenshot of the page then), else closes the browser.
export async function runSteps({ browser, pageErrors, screenshot }, log, steps) {
  try {
    await steps();
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
}

// Logs in on the login page and waits for the dashboard.
export async function logIn(page, email, password) {
  await page.fill('#login-email', email);
  await page.fill('#login-password', password);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#app:not([hidden])', { timeout: 30_000 });
}

// Waits until `locator`'s text (trimmed) is `expected` (a string) or matches it (a RegExp).
export async function expectText(page, locator, expected, what, ms) {
  const deadline = Date.now() + ms;
  let seen;
  while (Date.now() < deadline) {
    seen = (await locator.textContent({ timeout: ms }).catch(() => null))?.trim();
    if (typeof expected === 'string' ? seen === expected : expected.test(seen ?? '')) return seen;
    await page.waitForTimeout(100);
  }
  throw new Error(`${what}: expected ${expected}, still ${JSON.stringify(seen)} after ${ms / 1000} s`);
}

// Waits until the number of elements `locator` finds satisfies `ok`.
export async function expectCount(page, locator, ok, what, ms) {
  const deadline = Date.now() + ms;
  let count;
  while (Date.now() < deadline) {
    count = await locator.count();
    if (ok(count)) return count;
    await page.waitForTimeout(100);
  }
  throw new Error(`${what}: ${count} after ${ms / 1000} s`);
}
