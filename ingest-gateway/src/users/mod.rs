//! Dashboard users: people who log in to the dashboard with an email and a password, and then
//! act in their projects with the `read` and `admin` scopes.
//!
//! By file: [`input`] checks the register and login bodies, [`password`] hashes with argon2id,
//! [`session`] makes and checks the session JWT, its cookie and the CSRF token, [`throttle`]
//! refuses an email's logins after repeated failures, [`store`] keeps the users in MongoDB,
//! and [`handlers`] serves `/api/auth/{register,login,me,logout}`.

pub mod input;
pub mod password;
pub mod session;
pub mod store;
pub mod throttle;
