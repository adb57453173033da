//! Dashboard users: people who log in to the dashboard with an email and a password, and then
//! act in their projects with the `read` and `admin` scopes.
//!
//! By file: [`input`] checks the register and login bodies, [`password`] hashes with argon2id,
//! [`session`] makes and checks the session JWT, its cookie and the CSRF token, [`throttle`]
//! refuses an email's logins after repeated failures, [`store`] keeps the users in MongoDB,
//! [`session_check`] is the gateway's session credential (`crate::auth::session::SessionCheck`),
//! and [`handlers`] serves `/api/auth/{register,login,me,logout}`.

pub mod handlers;
pub mod input;
pub mod password;
pub mod session;
pub mod session_check;
pub mod store;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use crate::auth::config::AuthConfig;
use crate::users::session::{SessionError, SessionKeys};
use crate::users::session_check::UserSessions;
use crate::users::store::UserStore;
use crate::users::throttle::LoginThrottle;

/// What the `/api/auth/*` handlers use. [`UsersState::sessions`] is also the gateway's
/// [`crate::auth::session::SessionCheck`], the same instance, so both see one cache.
pub struct UsersState {
    pub store: Arc<dyn UserStore>,
    pub sessions: Arc<UserSessions>,
    pub throttle: LoginThrottle,
    /// Adds `Secure` to the session cookie.
    pub cookie_secure: bool,
    /// Sent as `Retry-After` with a 503 (MongoDB unreachable).
    pub retry_after: Duration,
}

impl UsersState {
    pub fn new(
        config: &AuthConfig,
        store: Arc<dyn UserStore>,
        retry_after: Duration,
    ) -> Result<Self, SessionError> {
        let keys = SessionKeys::new(&config.jwt_secret, config.session_ttl)?;
        let sessions = Arc::new(UserSessions::new(keys, store.clone(), config.cache_ttl, retry_after));
        Ok(UsersState {
            store,
            sessions,
            throttle: LoginThrottle::new(),
            cookie_secure: config.cookie_secure,
            retry_after,
        })
    }
}
