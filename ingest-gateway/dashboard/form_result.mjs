// What a form shows after it is sent: the gateway's answer under it and, for a refusal, which of
// its inputs the gateway named.

import { el } from './dom.mjs';

export function showResult(form, ok, lines) {
  const result = form.querySelector('.form-result');
  result.className = `form-result ${ok ? 'ok' : 'error'}`;
  result.replaceChildren(...lines.flatMap((line, i) => (i ? [el('br'), line] : [line])));
}

// Runs `work` with `button` disabled, so a second click cannot send it twice.
export async function whileBusy(button, work) {
  button.disabled = true;
  try {
    return await work();
  } finally {
    button.disabled = false;
  }
}

// Marks the inputs named (by their `name`; nulls are skipped) as invalid, and no others.
export function markInvalid(form, names) {
  const invalid = new Set(names.filter(Boolean));
  for (const input of form.querySelectorAll('input, select, textarea')) {
    if (invalid.has(input.name)) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }
}
