// The two forms: submit names (one or many) and fire a test event. Both show the gateway's
// answer; a 400 shows every field it named.

import { getScoringRules, sendEvent, submitLeads } from './api.mjs';
import { el } from './dom.mjs';
import { showResult, whileBusy as whileButtonBusy } from './form_result.mjs';
import { explainLeadErrors, parseNames } from './model.mjs';

const whileBusy = (form, work) => whileButtonBusy(form.querySelector('button[type=submit]'), work);

export function setUpNamesForm(form, onAccepted) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const input = form.querySelector('textarea');
    const { names, errors } = parseNames(input.value);
    if (errors.length) {
      showResult(form, false, errors.map((e) => (e.line ? `line ${e.line} ${e.message}` : e.message)));
      return;
    }
    whileBusy(form, async () => {
      try {
        const accepted = await submitLeads(names.map((n) => n.lead));
        showResult(form, true, [`${accepted.length} accepted; they appear below as they are enriched.`]);
        input.value = '';
        onAccepted(accepted);
      } catch (error) {
        showResult(form, false, error.details.length ? explainLeadErrors(error.details, names) : [error.message]);
      }
    });
  });
}

// The event types the chosen project's rules score; read again on every project switch.
export async function loadEventTypes(form) {
  const select = form.querySelector('select[name=eventType]');
  try {
    const { rules } = await getScoringRules();
    select.replaceChildren(
      ...Object.entries(rules.points).map(([type, points]) => el('option', { value: type }, `${type} (${points} points)`)),
    );
  } catch (error) {
    // The rules say which types score; without them any well-formed type may still be sent.
    select.replaceChildren(...['page_view', 'signup', 'demo_request'].map((type) => el('option', { value: type }, type)));
    showResult(form, false, [`the scoring rules could not be read: ${error.message}`]);
  }
}

export function setUpEventForm(form) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const payload = { leadId: data.get('leadId').trim(), eventType: data.get('eventType') };
    const properties = data.get('properties').trim();
    if (properties) {
      try {
        payload.properties = JSON.parse(properties);
      } catch (error) {
        showResult(form, false, [`properties is not JSON: ${error.message}`]);
        return;
      }
    }
    whileBusy(form, async () => {
      try {
        const accepted = await sendEvent(payload);
        showResult(form, true, [`event ${accepted.eventId} accepted for ${accepted.leadId}.`]);
      } catch (error) {
        showResult(form, false, error.details.length ? error.details.map((d) => `${d.field}: ${d.message}`) : [error.message]);
      }
    });
  });
}
