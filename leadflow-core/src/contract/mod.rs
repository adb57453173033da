//! The ground floor: what travels on the topics and how it is framed.

pub mod codec;
pub mod project;
pub mod records;
pub mod topics;
