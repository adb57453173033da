//! docs/openapi.yaml documents exactly the routes the API's router serves, and not the ops
//! endpoints, which are on the ops port.

use std::collections::BTreeSet;

use ingest_gateway::routes::ROUTES;

/// On the ops port, not the API's: on the API port they are 404, so the API document must not list them.
const OPS_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];
const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

/// (method, path) pairs under `paths:`: paths are indented two spaces, methods four.
fn documented_routes(yaml: &str) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    let mut in_paths = false;
    let mut path = None;
    for line in yaml.lines() {
        if !line.starts_with(' ') {
            in_paths = line.trim_end() == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /") {
            path = Some(format!("/{}", p.trim_end().trim_end_matches(':')));
        } else if let (Some(rest), Some(path)) = (line.strip_prefix("    "), &path) {
            let method = rest.trim_end().trim_end_matches(':');
            if !rest.starts_with(' ') && METHODS.contains(&method) {
                routes.insert((method.to_owned(), path.clone()));
            }
        }
    }
    routes
}

#[test]
fn the_openapi_document_matches_the_router() {
    let yaml = include_str!("../../docs/openapi.yaml");
    let documented = documented_routes(yaml);
    let served: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, served);
    for path in OPS_PATHS {
        assert!(!yaml.contains(&format!("\n  {path}:")), "{path} is on the ops port, not the API's");
    }
}

#[test]
fn the_route_reader_sees_methods_under_paths_only() {
    let yaml = "paths:\n  /a:\n    get:\n      x: 1\n    post:\n  /b/{id}:\n    put:\ncomponents:\n  /c:\n    get:\n";
    let routes = documented_routes(yaml);
    let expected: BTreeSet<(String, String)> = [("get", "/a"), ("post", "/a"), ("put", "/b/{id}")]
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(routes, expected);
}
