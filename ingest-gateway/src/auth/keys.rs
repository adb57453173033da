//! API key text: `lf_<keyId>_<secret>`, where the key id is 12 lowercase hex characters (it
//! finds the stored key) and the secret is 32 random bytes from the OS, base64url without
//! padding. Only the SHA-256 of the whole text is stored, and a presented key is checked by a
//! constant-time comparison of hashes. SHA-256 is enough here: the secret has 256 bits of
//! entropy, so there is nothing to brute-force that a slow hash (argon2, for passwords) would
//! protect.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use leadflow_core::runtime::secret::Secret;

pub const KEY_PREFIX: &str = "lf_";
pub const KEY_ID_CHARS: usize = 12;
pub const SECRET_BYTES: usize = 32;
/// base64url of 32 bytes, unpadded.
const SECRET_CHARS: usize = 43;

/// A newly made key: its id, its text (shown once) and the hash that is stored.
pub struct NewKey {
    pub id: String,
    pub text: Secret,
    pub hash: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(getrandom::Error);

pub fn generate() -> Result<NewKey, RandomError> {
    let mut id = [0u8; KEY_ID_CHARS / 2];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id).map_err(RandomError)?;
    getrandom::fill(&mut secret).map_err(RandomError)?;
    let id = hex::encode(id);
    let text = format!("{KEY_PREFIX}{id}_{}", URL_SAFE_NO_PAD.encode(secret));
    let hash = hash(&text);
    Ok(NewKey { id, text: Secret::new(text), hash })
}

/// Lowercase hex SHA-256 of the key text.
pub fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The key id of a text shaped like a key, or `None` for anything else (the admin token, a typo).
pub fn key_id_of(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == KEY_ID_CHARS && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let secret_ok = secret.len() == SECRET_CHARS
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some(id)
}

/// Does `text` hash to `stored_hash`? Constant-time in the hash, so a timing difference never
/// tells how much of a guess was right.
pub fn matches(text: &str, stored_hash: &str) -> bool {
    let presented = hash(text);
    presented.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// Constant-time equality of two secrets of any length (the admin token).
pub fn same_secret(presented: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(presented.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_has_the_documented_shape_and_its_hash_matches_it_alone() {
        let key = generate().unwrap();
        let text = key.text.expose();
        assert_eq!(text.len(), 3 + 12 + 1 + 43, "{text}");
        assert!(text.starts_with("lf_") && text[3..15] == key.id, "{text}");
        assert_eq!(key_id_of(text), Some(key.id.as_str()));
        assert_eq!(key.hash, hash(text));
        assert_eq!(key.hash.len(), 64);
        assert!(matches(text, &key.hash));
        let mut other = text.to_owned();
        other.pop();
        other.push(if text.ends_with('A') { 'B' } else { 'A' });
        assert!(!matches(&other, &key.hash));
        assert_ne!(generate().unwrap().text.expose(), text, "two keys differ");
    }

    #[test]
    fn only_key_shaped_texts_have_a_key_id() {
        let secret = "A".repeat(43);
        assert_eq!(key_id_of(&format!("lf_0123456789ab_{secret}")), Some("0123456789ab"));
        for bad in [
            format!("lf_0123456789AB_{secret}"),
            format!("lf_0123456789a_{secret}"),
            format!("xx_0123456789ab_{secret}"),
            format!("lf_0123456789ab_{}", &secret[1..]),
            format!("lf_0123456789ab_{}!", &secret[1..]),
            "an-admin-token-of-thirty-chars".to_owned(),
        ] {
            assert_eq!(key_id_of(&bad), None, "{bad}");
        }
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(same_secret("admin-token", "admin-token"));
        assert!(!same_secret("admin-token", "admin-tokeN"));
        assert!(!same_secret("admin", "admin-token"));
    }
}
