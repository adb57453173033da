//! The dashboard at `/`: plain ES modules and a style sheet from `ingest-gateway/dashboard/`,
//! compiled into the binary, so a gateway serves its own UI with nothing to deploy beside it and
//! no front-end build step. The page reads the same public API as anyone else, as a dashboard
//! user: it logs in (`/api/auth/login`), and then its calls carry the session cookie, the chosen
//! project and, when unsafe, the CSRF token.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

/// The page. Its scripts and styles are the [`ASSETS`].
pub const INDEX: &str = include_str!("../dashboard/index.html");

/// What `/dashboard/{file}` serves: (file, content type, content).
pub const ASSETS: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("../dashboard/style.css")),
    ("app.mjs", JAVASCRIPT, include_str!("../dashboard/app.mjs")),
    ("api.mjs", JAVASCRIPT, include_str!("../dashboard/api.mjs")),
    ("automations_model.mjs", JAVASCRIPT, include_str!("../dashboard/automations_model.mjs")),
    ("automations_view.mjs", JAVASCRIPT, include_str!("../dashboard/automations_view.mjs")),
    ("chart.mjs", JAVASCRIPT, include_str!("../dashboard/chart.mjs")),
    ("dom.mjs", JAVASCRIPT, include_str!("../dashboard/dom.mjs")),
    ("form_result.mjs", JAVASCRIPT, include_str!("../dashboard/form_result.mjs")),
    ("forms.mjs", JAVASCRIPT, include_str!("../dashboard/forms.mjs")),
    ("leaderboard_view.mjs", JAVASCRIPT, include_str!("../dashboard/leaderboard_view.mjs")),
    ("lead_view.mjs", JAVASCRIPT, include_str!("../dashboard/lead_view.mjs")),
    ("leads_view.mjs", JAVASCRIPT, include_str!("../dashboard/leads_view.mjs")),
    ("live.mjs", JAVASCRIPT, include_str!("../dashboard/live.mjs")),
    ("model.mjs", JAVASCRIPT, include_str!("../dashboard/model.mjs")),
    ("session.mjs", JAVASCRIPT, include_str!("../dashboard/session.mjs")),
    ("webhooks_view.mjs", JAVASCRIPT, include_str!("../dashboard/webhooks_view.mjs")),
];

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// Everything the page loads comes from this origin; lead names are shown as text only, and this
/// keeps an injected script from running should that ever slip.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

pub async fn index() -> Response {
    with_headers(INDEX, "text/html; charset=utf-8")
}

pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, content)) => with_headers(content, content_type),
        None => AppError::not_found().into_response(),
    }
}

fn with_headers(content: &'static str, content_type: &'static str) -> Response {
    let mut response = content.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Served from the binary: a new gateway may bring new files under the same names.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module the page or another module imports is served, and every served file is used:
    /// a new module missing from [`ASSETS`] would break the page only in a browser.
    #[test]
    fn every_imported_module_is_served_and_every_served_file_is_used() {
        let mut referenced = std::collections::BTreeSet::new();
        let mut sources = vec![INDEX];
        sources.extend(ASSETS.iter().map(|(_, _, content)| *content));
        for source in sources {
            for quote in ["'", "\""] {
                for piece in source.split(quote) {
                    let name = piece.trim_start_matches("./").trim_start_matches("/dashboard/");
                    if (name.ends_with(".mjs") || name.ends_with(".css"))
                        && !name.contains(['/', ' '])
                        && (piece.starts_with("./") || piece.starts_with("/dashboard/"))
                    {
                        referenced.insert(name.to_owned());
                    }
                }
            }
        }
        let served: std::collections::BTreeSet<String> =
            ASSETS.iter().map(|(name, _, _)| name.to_string()).collect();
        assert_eq!(referenced, served);
    }
}
