//! Password hashes: argon2id with the crate's default parameters (19 MiB, 2 passes, 1 lane:
//! OWASP's first recommendation), stored as PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$...`),
//! so a hash carries its own parameters and a later change of them still verifies old hashes.
//!
//! Both hashing and verifying take tens of milliseconds of CPU on purpose; callers run them
//! with `tokio::task::spawn_blocking`, off the async workers.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// The fewest and the most characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The operating system gave no random salt, or argon2 refused its input.
    #[error("cannot hash the password: {0}")]
    Hash(argon2::password_hash::Error),
    /// A stored hash is not a PHC string argon2 reads: the stored user is corrupt.
    #[error("a stored password hash cannot be read: {0}")]
    StoredHash(argon2::password_hash::phc::Error),
}

/// The PHC string of `password`'s argon2id hash, with a fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let hash = Argon2::default().hash_password(password.as_bytes()).map_err(PasswordError::Hash)?;
    Ok(hash.to_string())
}

/// Whether `password` is the one `stored` (a PHC string) was made from. The parameters are
/// those in `stored`, not today's defaults.
pub fn verify(password: &str, stored: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(stored).map_err(PasswordError::StoredHash)?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Runs the same verification as [`verify`] against a hash no password matches, for a login
/// whose email is unknown: it costs what a wrong password costs, so the answer's timing does
/// not tell whether the account exists. Always false.
pub fn verify_against_nobody(password: &str) -> bool {
    let matched = verify(password, &NOBODY).unwrap_or(false);
    // The hash is of 32 random bytes this process drew and forgot; no typed password is that.
    debug_assert!(!matched);
    false
}

/// A hash made once per process, with the same parameters as every new hash, of a random
/// password nobody knows.
static NOBODY: LazyLock<String> = LazyLock::new(|| {
    let unknowable =
        format!("{:032x}{:032x}", uuid::Uuid::new_v4().as_u128(), uuid::Uuid::new_v4().as_u128());
    hash(&unknowable).expect("hashing a fixed-length random text")
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_an_argon2id_phc_string_that_verifies_only_its_password() {
        let stored = hash("correct horse battery staple").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(!stored.contains("correct horse"), "{stored}");
        assert!(verify("correct horse battery staple", &stored).unwrap());
        assert!(!verify("correct horse battery stapl", &stored).unwrap());
        assert!(!verify("", &stored).unwrap());
    }

    #[test]
    fn each_hash_has_its_own_salt() {
        assert_ne!(hash("the same password").unwrap(), hash("the same password").unwrap());
    }

    #[test]
    fn a_hash_made_with_other_parameters_still_verifies() {
        let params = argon2::Params::new(8 * 1024, 1, 1, None).unwrap();
        let older = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"an older account's password")
            .unwrap()
            .to_string();
        assert!(older.contains("m=8192,t=1,p=1"), "{older}");
        assert!(verify("an older account's password", &older).unwrap());
        assert!(!verify("another password", &older).unwrap());
    }

    #[test]
    fn a_stored_hash_that_is_not_phc_is_an_error_not_a_mismatch() {
        let error = verify("whatever password", "plain-text-password").unwrap_err();
        assert!(matches!(error, PasswordError::StoredHash(_)), "{error}");
    }

    #[test]
    fn nobody_matches_the_dummy_hash_and_it_costs_a_real_verification() {
        assert!(!verify_against_nobody("correct horse battery staple"));
        assert!(NOBODY.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", *NOBODY);
    }
}
