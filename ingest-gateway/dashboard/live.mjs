// The live connection to `GET /api/stream`. The browser's EventSource reconnects by itself and
// sends `Last-Event-ID`, so the gateway replays what was missed; when it cannot, it sends `reset`
// and the views re-read what they show. If the browser gives up (the gateway answered with an
// error), a new connection is opened after a pause, and the views re-read too, since a new
// EventSource has no last id to resume from. The stream is the chosen project's: the session
// cookie goes with it (same origin), and the project as `?project=`, since EventSource sends no
// headers of ours. `close()` ends it for good (a project switch or a logout).

import { streamUrl } from './session.mjs';

const RETRY_MS = 3000;

// For a view that re-reads itself on updates: `refresh` once, `ms` after the first update of a
// burst, however many come meanwhile.
export function coalesced(refresh, ms) {
  let pending = null;
  return () => {
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      refresh();
    }, ms);
  };
}

export function connectLive({ onUpdate, onResync, onState }) {
  let source;
  let opened = false;
  let closed = false;
  let retry;
  const connect = () => {
    source = new EventSource(streamUrl());
    source.addEventListener('open', () => {
      onState('live');
      // The first connection, and any that could not resume: read afresh.
      if (!opened) onResync();
      opened = true;
    });
    source.addEventListener('lead', (event) => {
      let update;
      try {
        update = JSON.parse(event.data);
      } catch {
        return; // the gateway writes JSON; anything else is not ours to show
      }
      onUpdate(update);
    });
    source.addEventListener('reset', () => onResync());
    source.addEventListener('error', () => {
      if (closed) return;
      if (source.readyState === EventSource.CLOSED) {
        onState('offline');
        opened = false;
        retry = setTimeout(connect, RETRY_MS);
      } else {
        onState('reconnecting');
      }
    });
  };
  connect();
  return {
    close() {
      closed = true;
      clearTimeout(retry);
      source.close();
    },
  };
}
