//! Projects: a project is a tenant. Every record names its project, and a lead is known by
//! (project, lead id), so two projects may use the same lead id without touching each other.
//!
//! On the wire, the project travels as `projectId`. Records written before projects existed
//! have none, and read as [`DEFAULT_PROJECT`]; a record of the default project is written
//! without it, so its bytes are exactly those of before.

use std::borrow::Cow;

/// The project of every record that names none.
pub const DEFAULT_PROJECT: &str = "default";

/// The most characters a project id may have.
pub const MAX_PROJECT_ID_CHARS: usize = 63;

/// Separates the project from the lead in a [`lead_key`]. Neither a project id nor a lead id
/// may hold it, so a key splits back unambiguously.
pub const KEY_SEPARATOR: char = '/';

/// The serde default of `projectId`.
pub fn default_project() -> String {
    DEFAULT_PROJECT.to_owned()
}

/// `skip_serializing_if` for `projectId`: the default project is not written.
pub fn is_default_project(project: &str) -> bool {
    project == DEFAULT_PROJECT
}

/// Why a project id is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectIdError {
    #[error("a project id must not be empty")]
    Empty,
    #[error("a project id must be at most {MAX_PROJECT_ID_CHARS} characters")]
    TooLong,
    #[error("a project id must match ^[a-z0-9][a-z0-9-]{{0,62}}$")]
    InvalidFormat,
}

impl ProjectIdError {
    /// The bounded reason, as the gateway's field errors name it.
    pub fn reason(&self) -> &'static str {
        match self {
            ProjectIdError::Empty => "empty",
            ProjectIdError::TooLong => "too_long",
            ProjectIdError::InvalidFormat => "invalid_format",
        }
    }
}

/// A project id is `^[a-z0-9][a-z0-9-]{0,62}$`: safe in a Kafka key, a MongoDB id, a URL path
/// and a metric label.
pub fn check_project_id(project: &str) -> Result<(), ProjectIdError> {
    let mut chars = project.chars();
    let first = chars.next().ok_or(ProjectIdError::Empty)?;
    if project.chars().count() > MAX_PROJECT_ID_CHARS {
        return Err(ProjectIdError::TooLong);
    }
    let lower_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !lower_alnum(first) || !chars.all(|c| lower_alnum(c) || c == '-') {
        return Err(ProjectIdError::InvalidFormat);
    }
    Ok(())
}

/// The key of a lead's records on every lead topic, and its id in every per-lead collection:
/// the bare lead id in the default project (as before projects), `<project>/<lead>` elsewhere.
/// One lead's records share a key, so they share a partition and keep their order.
pub fn lead_key<'a>(project: &str, lead_id: &'a str) -> Cow<'a, str> {
    if is_default_project(project) {
        Cow::Borrowed(lead_id)
    } else {
        Cow::Owned(format!("{project}{KEY_SEPARATOR}{lead_id}"))
    }
}

/// A lead key split back into (project, lead id): a key without the separator is a default
/// project's lead.
pub fn split_lead_key(key: &str) -> (&str, &str) {
    match key.split_once(KEY_SEPARATOR) {
        Some((project, lead)) => (project, lead),
        None => (DEFAULT_PROJECT, key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_default_project_keeps_the_bare_lead_id() {
        assert_eq!(lead_key(DEFAULT_PROJECT, "lead-1"), "lead-1");
        assert_eq!(lead_key("acme", "lead-1"), "acme/lead-1");
        assert_eq!(split_lead_key("lead-1"), (DEFAULT_PROJECT, "lead-1"));
        assert_eq!(split_lead_key("acme/lead-1"), ("acme", "lead-1"));
    }

    #[test]
    fn project_ids_are_lower_case_slugs() {
        for good in ["default", "acme", "a", "0-team-2", &"a".repeat(63)] {
            assert_eq!(check_project_id(good), Ok(()), "{good}");
        }
        assert_eq!(check_project_id(""), Err(ProjectIdError::Empty));
        assert_eq!(check_project_id(&"a".repeat(64)), Err(ProjectIdError::TooLong));
        for bad in ["Acme", "-acme", "ac me", "ac/me", "acmé", "a_b"] {
            assert_eq!(check_project_id(bad), Err(ProjectIdError::InvalidFormat), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn a_lead_key_splits_back(project in "[a-z0-9][a-z0-9-]{0,62}", lead in "[A-Za-z0-9._:@-]{1,128}") {
            let key = lead_key(&project, &lead);
            prop_assert_eq!(split_lead_key(&key), (project.as_str(), lead.as_str()));
        }
    }
}
