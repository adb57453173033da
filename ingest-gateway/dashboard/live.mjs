// The live connection to `GET /api/stream`. The browser's EventSource reconnects by itself and
// sends `Last-Event-ID`, so the gateway replays what was missed; when it cannot, it sends `reset`
// and the views re-read what they show. If the browser gives up (the gateway answered with an
// error), a new connection is opened after a pause, and the views re-read too, since a new
// EventSource has no last id to resume from.

const RETRY_MS = 3000;

export function connectLive({ onUpdate, onResync, onState }) {
  let source;
  let opened = false;
  const connect = () => {
    source = new EventSource('/api/stream');
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
      if (source.readyState === EventSource.CLOSED) {
        onState('offline');
        opened = false;
        setTimeout(connect, RETRY_MS);
      } else {
        onState('reconnecting');
      }
    });
  };
  connect();
}
