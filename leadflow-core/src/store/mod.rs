//! MongoDB: the client, its errors, and the documents kept there.

pub mod documents;
pub mod mongo;
