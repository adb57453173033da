//! `GET /api/stream`: Server-Sent Events of lead updates as they happen (see
//! [`crate::live::tail`] for where they come from and how `Last-Event-ID` resumes).
//!
//! Events: `lead` (data: one update, JSON, with `kind` enriched | scored | reviewed | crm_sync and
//! `leadId`), and `reset` (data `{}`): the client may have missed updates that this gateway
//! cannot replay, so it should re-read what it shows. A client too slow to keep up is
//! disconnected; reconnecting with its `Last-Event-ID` resumes where it left off. Streams end
//! when the gateway shuts down, so they never hold up a graceful stop.
//!
//! A stream carries only its caller's project's updates. A stream opened with a key re-reads
//! that key from the store (not the cache) every `auth.cache_ttl`, and ends when the key is
//! revoked, or when the store cannot say (failing closed; the client reconnects, and is asked
//! for a valid key).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::{Stream, StreamExt};
use tokio::sync::broadcast;

use crate::auth::AuthState;
use crate::auth::caller::Caller;
use crate::auth::scope::Scope;
use crate::error::AppError;
use crate::live::LiveState;
use crate::live::tail::{LiveUpdates, Update};

/// The stream's route, for a router whose state holds a [`LiveState`].
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<LiveState>: FromRef<S>,
    Arc<AuthState>: FromRef<S>,
{
    Router::new().route("/api/stream", get(stream))
}

pub async fn stream(
    State(state): State<Arc<LiveState>>,
    State(auth): State<Arc<AuthState>>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let caller = caller.in_project(Scope::Read)?;
    let project = caller.project_id.clone();
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let (resume, receiver) = state.updates.subscribe(last_event_id);
    let live = state.updates.clone();
    let reset = resume.reset.then(|| Event::default().event("reset").data("{}"));
    let missed: Vec<Event> =
        resume.missed.iter().filter(|u| u.project == project).map(|u| lead_event(&live, u)).collect();
    let first = futures::stream::iter(reset.into_iter().chain(missed).map(Ok));
    let following =
        futures::stream::unfold((receiver, live, project), |(mut receiver, live, project)| async move {
            loop {
                match receiver.recv().await {
                    Ok(update) if update.project == project => {
                        let event = lead_event(&live, &update);
                        return Some((Ok(event), (receiver, live, project)));
                    }
                    Ok(_) => continue,
                    // Lagged: the client fell behind the broadcast; it resumes from its
                    // Last-Event-ID.
                    Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => {
                        return None;
                    }
                }
            }
        });
    let shutdown = state.shutdown.clone();
    let key_id = caller.key.map(|k| k.key_id);
    let ended = async move {
        tokio::select! {
            _ = shutdown.cancelled_owned() => {}
            _ = until_revoked(auth, key_id) => {}
        }
    };
    let stream = first.chain(following).take_until(ended);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Resolves once `key_id` is no longer valid, as re-read every `auth.cache_ttl`; never for a
/// stream without a key (a dashboard session).
async fn until_revoked(auth: Arc<AuthState>, key_id: Option<String>) {
    let Some(key_id) = key_id else { return std::future::pending().await };
    let every: Duration = auth.cache_ttl;
    loop {
        tokio::time::sleep(every).await;
        match auth.still_valid(&key_id).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(key = %key_id, "a stream's key was revoked; ending the stream");
                return;
            }
            Err(_) => return,
        }
    }
}

fn lead_event(live: &LiveUpdates, update: &Update) -> Event {
    Event::default().id(live.event_id(update)).event("lead").data(update.data.to_string())
}

#[cfg(test)]
mod tests;
