//! MongoDB: the client, its errors, the documents kept there, and budgets shared through it.

pub mod documents;
pub mod mongo;
pub mod shared_budget;
