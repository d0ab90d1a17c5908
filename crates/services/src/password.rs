//! Password hashing with argon2id and the password policy; no storage.
use crate::Error;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest accepted password, in characters.
pub const MIN_LEN: usize = 8;
/// Longest accepted password, in bytes (hashing cost must not depend on attacker input).
pub const MAX_LEN: usize = 1024;

/// argon2id with the given memory cost (KiB) and passes.
#[derive(Clone, Debug)]
pub struct Hasher {
    params: Params,
}

impl Hasher {
    pub fn new(memory_kib: u32, passes: u32) -> Result<Self, Error> {
        let params = Params::new(memory_kib, passes, 1, None)
            .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
        Ok(Hasher { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Checks the policy, then hashes into a PHC string (`$argon2id$…`).
    pub fn hash(&self, password: &str) -> Result<String, Error> {
        check_policy(password)?;
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("argon2: {e}")))
    }

    /// True if `password` matches the PHC string `hash`. A malformed hash never matches.
    pub fn verify(&self, password: &str, hash: &str) -> bool {
        if password.len() > MAX_LEN {
            return false;
        }
        match PasswordHash::new(hash) {
            Ok(parsed) => self
                .argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }
}

/// The password policy: 8 characters to 1024 bytes, not only white space.
pub fn check_policy(password: &str) -> Result<(), Error> {
    if password.chars().count() < MIN_LEN {
        return Err(Error::invalid(
            "password",
            format!("a password has at least {MIN_LEN} characters"),
        ));
    }
    if password.len() > MAX_LEN {
        return Err(Error::invalid(
            "password",
            format!("a password has at most {MAX_LEN} bytes"),
        ));
    }
    if password.trim().is_empty() {
        return Err(Error::invalid(
            "password",
            "a password cannot be only spaces",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = Hasher::new(1024, 1).expect("params");
        let phc = h.hash("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("correct horse", &phc));
        assert!(!h.verify("wrong horse!", &phc));
        assert!(!h.verify("correct horse", "not a hash"));
    }

    #[test]
    fn policy() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("        ").is_err());
        assert!(check_policy(&"x".repeat(2000)).is_err());
        assert!(check_policy("long enough").is_ok());
    }
}
