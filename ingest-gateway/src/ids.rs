//! The ids the API takes, and the one rule both halves of it apply: what a lead id may be. The
//! write API checks it in records and in a review's path, the read API in its paths, so a lead
//! that can be posted can be read back by the same id.

use crate::error::FieldError;

/// The most characters an id (a lead's, an event's) may have.
pub const MAX_ID_CHARS: usize = 128;

fn is_lead_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-')
}

/// `leadId`: 1–128 characters from `[A-Za-z0-9._:@-]`.
pub fn check_lead_id(field: &str, lead_id: &str) -> Result<(), FieldError> {
    if lead_id.is_empty() {
        return Err(FieldError::new(field, "empty", format!("{field} must not be empty")));
    }
    if lead_id.chars().count() > MAX_ID_CHARS {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("{field} must be at most {MAX_ID_CHARS} characters"),
        ));
    }
    if let Some(bad) = lead_id.chars().find(|c| !is_lead_id_char(*c)) {
        return Err(FieldError::new(
            field,
            "invalid_format",
            format!("{field} may hold only A-Z a-z 0-9 . _ : @ -; found {bad:?}"),
        ));
    }
    Ok(())
}

/// A path segment naming an automation rule or a webhook subscription: a slug as
/// `^[a-z0-9][a-z0-9-]{0,62}$` (a rule's id, a subscription's UUID), else a 400 naming `id`.
pub fn slug_from_path(
    path: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<String, crate::error::AppError> {
    let bad = |message: String| {
        crate::error::AppError::invalid_fields(vec![FieldError::new("id", "invalid_format", message)])
    };
    let axum::extract::Path(id) =
        path.map_err(|rejection| bad(format!("id is not a valid path segment: {rejection}")))?;
    leadflow_core::contract::project::check_project_id(&id)
        .map_err(|_| bad(format!("id must match ^[a-z0-9][a-z0-9-]{{0,62}}$; got {id:?}")))?;
    Ok(id)
}
