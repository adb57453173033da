//! A dashboard session: an HS256 JWT `{sub: email, iat, exp, csrf}` carried in the
//! `leadflow_session` cookie (HttpOnly, so no script reads it; SameSite=Strict, so no other
//! site's page sends it), and the CSRF token the page echoes in `X-CSRF-Token` on unsafe
//! requests. The token is stateless: logging out clears the cookie, and a copied token stays
//! valid until it expires, which is why the lifetime is short (`auth.session_ttl`, 1 h).

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Method, header};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
// Compares without stopping at the first difference, so the time taken says nothing about how
// much of a guessed token was right.
use subtle::ConstantTimeEq;

use leadflow_core::runtime::secret::Secret;

use crate::error::AppError;

pub const COOKIE_NAME: &str = "leadflow_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The shortest `auth.jwt_secret` accepted: HS256 keys shorter than its 256-bit output are
/// guessable offline from one captured token.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's email, lowercased.
    pub sub: String,
    /// Issued at and expiry, seconds since the epoch.
    pub iat: u64,
    pub exp: u64,
    /// What `X-CSRF-Token` must equal on unsafe requests.
    pub csrf: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("auth.jwt_secret must be at least {MIN_SECRET_BYTES} bytes")]
    ShortSecret,
    #[error("cannot make the session keys: {0}")]
    Key(jsonwebtoken::errors::Error),
    #[error("cannot sign the session token: {0}")]
    Sign(jsonwebtoken::errors::Error),
    #[error("the operating system gave no randomness: {0}")]
    Random(String),
}

/// Signs and verifies session tokens with `auth.jwt_secret`.
#[derive(Clone)]
pub struct SessionKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub ttl: Duration,
}

impl SessionKeys {
    pub fn new(secret: &Secret, ttl: Duration) -> Result<Self, SessionError> {
        let bytes = secret.expose().as_bytes();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SessionError::ShortSecret);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        // Our own tokens, checked by the clock that signed them: no grace past `exp`.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Ok(SessionKeys {
            encoding: EncodingKey::from_secret(bytes).map_err(SessionError::Key)?,
            decoding: DecodingKey::from_secret(bytes).map_err(SessionError::Key)?,
            validation,
            ttl,
        })
    }

    /// A new session for `email` starting at `now` (seconds since the epoch), with a fresh CSRF
    /// token: the JWT and its claims.
    pub fn issue(&self, email: &str, now: u64) -> Result<(String, Claims), SessionError> {
        let claims =
            Claims { sub: email.to_owned(), iat: now, exp: now + self.ttl.as_secs(), csrf: random_token()? };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(SessionError::Sign)?;
        Ok((token, claims))
    }

    /// The claims of a token this gateway signed and that has not expired; `None` for anything
    /// else (a bad signature, another algorithm, `alg: none`, expired, malformed). The reason
    /// is not told to the caller.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Some(data.claims),
            Err(error) => {
                tracing::debug!(reason = ?error.kind(), "a session token was refused");
                None
            }
        }
    }
}

/// 32 random bytes from the operating system, base64url without padding.
fn random_token() -> Result<String, SessionError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| SessionError::Random(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// `Set-Cookie` for a new session of `ttl`.
pub fn session_cookie(token: &str, ttl: Duration, secure: bool) -> HeaderValue {
    cookie(token, ttl.as_secs(), secure)
}

/// `Set-Cookie` that makes the browser drop the session cookie.
pub fn cleared_cookie(secure: bool) -> HeaderValue {
    cookie("", 0, secure)
}

fn cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).expect("a JWT and the attributes are header-safe ASCII")
}

/// The session token in the request's cookies, if any (the first `leadflow_session` when a
/// browser sends several).
pub fn token_from(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE_NAME && !value.is_empty())
        .map(|(_, value)| value)
}

/// Whether the method changes something, and so needs the CSRF token with a cookie.
pub fn is_unsafe(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
}

/// An unsafe request made with the session cookie must carry `X-CSRF-Token` equal to the
/// session's `csrf` claim: another site can make a browser send the cookie (SameSite aside), but
/// cannot read the token to send it. Safe methods pass.
pub fn check_csrf(method: &Method, headers: &HeaderMap, claims: &Claims) -> Result<(), AppError> {
    if !is_unsafe(method) {
        return Ok(());
    }
    let sent = headers.get(CSRF_HEADER).map(HeaderValue::as_bytes).unwrap_or_default();
    if bool::from(sent.ct_eq(claims.csrf.as_bytes())) { Ok(()) } else { Err(csrf_failed(sent.is_empty())) }
}

pub fn csrf_failed(missing: bool) -> AppError {
    let message = if missing {
        "this request needs the X-CSRF-Token header that login and GET /api/auth/me give"
    } else {
        "X-CSRF-Token does not match this session's token"
    };
    let mut error = AppError::forbidden(message);
    error.body.error = "csrf_failed";
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SessionKeys {
        SessionKeys::new(&Secret::new("a test secret of at least 32 bytes!"), Duration::from_secs(3600))
            .unwrap()
    }

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn a_short_secret_is_refused() {
        let error = SessionKeys::new(&Secret::new("x".repeat(31)), Duration::from_secs(60)).err().unwrap();
        assert!(matches!(error, SessionError::ShortSecret));
        assert!(SessionKeys::new(&Secret::new("x".repeat(32)), Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn an_issued_token_verifies_to_its_claims_until_it_expires() {
        let keys = keys();
        let (token, claims) = keys.issue("ada@example.com", now()).unwrap();
        assert_eq!(claims.exp - claims.iat, 3600);
        assert_eq!(claims.csrf.len(), 43, "32 bytes, base64url unpadded: {}", claims.csrf);
        assert_eq!(keys.verify(&token), Some(claims.clone()));
        assert_ne!(
            keys.issue("ada@example.com", now()).unwrap().1.csrf,
            claims.csrf,
            "a fresh token each login"
        );

        let (expired, _) = keys.issue("ada@example.com", now() - 3601).unwrap();
        assert_eq!(keys.verify(&expired), None);
    }

    #[test]
    fn a_token_signed_otherwise_or_altered_is_refused() {
        let keys = keys();
        let (token, _) = keys.issue("ada@example.com", now()).unwrap();
        let other = SessionKeys::new(&Secret::new("another secret of at least 32 bytes"), keys.ttl).unwrap();
        assert_eq!(other.verify(&token), None, "another secret");

        // The same claims with `sub` changed: the signature no longer holds.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = String::from_utf8(engine.decode(&parts[1]).unwrap()).unwrap();
        parts[1] = engine.encode(payload.replace("ada@example.com", "eve@example.com"));
        assert_eq!(keys.verify(&parts.join(".")), None, "an altered payload");

        // `alg: none` with no signature.
        let none_header = engine.encode(r#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(keys.verify(&format!("{none_header}.{}.", parts[1])), None, "alg none");
        assert_eq!(keys.verify("not a token"), None);
    }

    #[test]
    fn the_cookie_is_http_only_same_site_strict_and_secure_when_asked() {
        let cookie = session_cookie("abc.def.ghi", Duration::from_secs(3600), false);
        assert_eq!(cookie, "leadflow_session=abc.def.ghi; HttpOnly; SameSite=Strict; Path=/; Max-Age=3600");
        let secure = session_cookie("abc.def.ghi", Duration::from_secs(60), true);
        assert_eq!(
            secure,
            "leadflow_session=abc.def.ghi; HttpOnly; SameSite=Strict; Path=/; Max-Age=60; Secure"
        );
        assert_eq!(cleared_cookie(false), "leadflow_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    }

    #[test]
    fn the_token_is_found_among_other_cookies() {
        let mut headers = HeaderMap::new();
        assert_eq!(token_from(&headers), None);
        headers.append(header::COOKIE, HeaderValue::from_static("theme=dark; leadflow_session=t.o.k"));
        assert_eq!(token_from(&headers), Some("t.o.k"));
        let mut empty = HeaderMap::new();
        empty.append(header::COOKIE, HeaderValue::from_static("leadflow_session=; other=1"));
        assert_eq!(token_from(&empty), None);
        let mut prefixed = HeaderMap::new();
        prefixed.append(header::COOKIE, HeaderValue::from_static("xleadflow_session=t.o.k"));
        assert_eq!(token_from(&prefixed), None);
    }

    #[test]
    fn unsafe_methods_need_the_matching_csrf_token_and_safe_ones_do_not() {
        let claims = Claims { sub: "a@b.c".into(), iat: 0, exp: 1, csrf: "the-token".into() };
        let mut headers = HeaderMap::new();
        assert!(check_csrf(&Method::GET, &headers, &claims).is_ok());
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let error = check_csrf(&method, &headers, &claims).unwrap_err();
            assert_eq!((error.status.as_u16(), error.body.error), (403, "csrf_failed"), "{method}");
        }
        headers.insert(CSRF_HEADER, HeaderValue::from_static("the-tokem"));
        assert_eq!(check_csrf(&Method::PUT, &headers, &claims).unwrap_err().body.error, "csrf_failed");
        headers.insert(CSRF_HEADER, HeaderValue::from_static("the-token-and-more"));
        assert!(check_csrf(&Method::PUT, &headers, &claims).is_err());
        headers.insert(CSRF_HEADER, HeaderValue::from_static("the-token"));
        assert!(check_csrf(&Method::PUT, &headers, &claims).is_ok());
    }
}
