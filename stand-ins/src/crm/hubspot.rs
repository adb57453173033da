//! The HubSpot mode: HubSpot's contacts API as it really behaves (see the [`crm`](super) module
//! doc for the wire). Layers: `fields`, `upsert`, `read` and `properties` judge bodies;
//! `contacts` applies writes; `limits` counts requests; `state` puts them together with the
//! faults and counters; `http` and `admin` are the routes.

mod admin;
mod contacts;
mod errors;
mod fields;
mod http;
mod limits;
mod properties;
mod read;
mod state;
mod upsert;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::routing::{delete, get, post, put};
use time::OffsetDateTime;

use super::settings::Settings;

pub use contacts::{Contact as HubSpotContact, VERSION_PROPERTY};
pub use fields::MAX_INPUTS;
pub use properties::{EMAIL_PROPERTY, OBJECT_ID_PROPERTY, Property, PropertySpec};
pub use state::HubSpotStats;
pub use upsert::valid_email;

/// Batch upsert, at the path HubSpot now calls legacy and at the date-versioned one.
pub const UPSERT_PATHS: [&str; 2] =
    ["/crm/v3/objects/contacts/batch/upsert", "/crm/objects/2026-03/contacts/batch/upsert"];
/// Batch read, likewise.
pub const READ_PATHS: [&str; 2] =
    ["/crm/v3/objects/contacts/batch/read", "/crm/objects/2026-03/contacts/batch/read"];
/// The contact properties API: `POST` creates, `GET` lists, `GET {PROPERTIES_PATH}/{name}` reads one.
pub const PROPERTIES_PATH: &str = "/crm/v3/properties/contacts";

type Shared = Arc<Mutex<state::HubSpot>>;

// A panicking handler cannot leave the state half-updated in a way that matters to a test double.
fn lock(crm: &Shared) -> MutexGuard<'_, state::HubSpot> {
    crm.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The HubSpot mode's routes over fresh state; clones of the router share it.
pub fn router(settings: &Settings) -> Router {
    let mut router = Router::new();
    for path in UPSERT_PATHS {
        router = router.route(path, post(http::upsert));
    }
    for path in READ_PATHS {
        router = router.route(path, post(http::batch_read));
    }
    router
        .route(PROPERTIES_PATH, post(http::create_property).get(http::list_properties))
        .route(&format!("{PROPERTIES_PATH}/{{name}}"), get(http::get_property))
        .route("/__admin/contacts", get(admin::contacts))
        .route("/__admin/contacts/{key}", delete(admin::delete_contact).patch(admin::patch_contact))
        .route("/__admin/faults", put(admin::set_faults).get(admin::get_faults))
        .route("/__admin/stats", get(admin::stats))
        .route("/__admin/properties", post(admin::precreate_properties))
        .route("/__admin/reset", post(admin::reset))
        .route("/__admin/daily/reset", post(admin::reset_daily))
        .with_state(Arc::new(Mutex::new(state::HubSpot::new(settings, OffsetDateTime::now_utc()))))
}
