//! `GET /api/stream`: Server-Sent Events of lead updates as they happen (see
//! [`crate::live::tail`] for where they come from and how `Last-Event-ID` resumes).
//!
//! Events: `lead` (data: one update, JSON, with `kind` enriched | scored | reviewed | crm_sync and
//! `leadId`), and `reset` (data `{}`): the client may have missed updates that this gateway
//! cannot replay, so it should re-read what it shows. A client too slow to keep up is
//! disconnected; reconnecting with its `Last-Event-ID` resumes where it left off. Streams end
//! when the gateway shuts down, so they never hold up a graceful stop.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::{Stream, StreamExt};
use tokio::sync::broadcast;

use crate::live::LiveState;
use crate::live::tail::{LiveUpdates, Update};

/// The stream's route, for a router whose state holds a [`LiveState`].
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<LiveState>: FromRef<S>,
{
    Router::new().route("/api/stream", get(stream))
}

pub async fn stream(
    State(state): State<Arc<LiveState>>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let (resume, receiver) = state.updates.subscribe(last_event_id);
    let live = state.updates.clone();
    let reset = resume.reset.then(|| Event::default().event("reset").data("{}"));
    let missed: Vec<Event> = resume.missed.iter().map(|u| lead_event(&live, u)).collect();
    let first = futures::stream::iter(reset.into_iter().chain(missed).map(Ok));
    let following = futures::stream::unfold((receiver, live), |(mut receiver, live)| async move {
        match receiver.recv().await {
            Ok(update) => {
                let event = lead_event(&live, &update);
                Some((Ok(event), (receiver, live)))
            }
            // Lagged: the client fell behind the broadcast; it resumes from its Last-Event-ID.
            Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => None,
        }
    });
    let stream = first.chain(following).take_until(state.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn lead_event(live: &LiveUpdates, update: &Update) -> Event {
    Event::default().id(live.event_id(update)).event("lead").data(update.data.to_string())
}

#[cfg(test)]
mod tests;
