//! `GET /api/stream`: Server-Sent Events of lead updates as they happen (see
//! [`crate::live::tail`] for where they come from and how `Last-Event-ID` resumes).
//!
//! Events: `lead` (data: one update, JSON, with `kind` enriched | scored | reviewed | crm_sync and
//! `leadId`), and `reset` (data `{}`): the client may have missed updates that this gateway
//! cannot replay, so it should re-read what it shows. A client too slow to keep up is
//! disconnected; reconnecting with its `Last-Event-ID` resumes where it left off. Streams end
//! when the gateway shuts down, so they never hold up a graceful stop.
//!
//! A stream carries only its caller's project's updates. Every `auth.cache_ttl` it checks its
//! credential again, and ends when that no longer holds: a key is re-read from the store (not the
//! cache) and ends the stream once revoked; a dashboard session ends it once its JWT expires or
//! its user leaves the project. When the store cannot say, the stream ends too (failing closed;
//! the client reconnects, and is asked for a valid credential).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, Method};
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
    let credential = match caller.key {
        Some(key) => Credential::Key(key.key_id),
        None => Credential::Session { headers, project: caller.project_id.clone() },
    };
    let ended = async move {
        tokio::select! {
            _ = shutdown.cancelled_owned() => {}
            _ = until_revoked(auth, credential) => {}
        }
    };
    let stream = first.chain(following).take_until(ended);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// What a stream was opened with, to check again while it lasts.
enum Credential {
    Key(String),
    /// A dashboard session: the request's headers (its cookie), and the project it streams.
    Session {
        headers: HeaderMap,
        project: String,
    },
}

/// Resolves once the stream's credential no longer holds, as checked every `auth.cache_ttl`.
async fn until_revoked(auth: Arc<AuthState>, credential: Credential) {
    let every: Duration = auth.cache_ttl;
    loop {
        tokio::time::sleep(every).await;
        let holds = match &credential {
            Credential::Key(key_id) => auth.still_valid(key_id).await,
            Credential::Session { headers, project } => auth
                .sessions
                .check(headers, &Method::GET)
                .await
                .map(|user| user.is_some_and(|u| u.projects.contains(project))),
        };
        match holds {
            Ok(true) => {}
            Ok(false) => {
                match &credential {
                    Credential::Key(key_id) => {
                        tracing::info!(key = %key_id, "a stream's key was revoked; ending the stream")
                    }
                    Credential::Session { .. } => {
                        tracing::info!("a stream's session expired or left the project; ending the stream")
                    }
                }
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
