//! Password hashing with argon2id into caller-provided memory, and the password policy; no
//! storage and no scheduling (see [`crate::hash_pool`] for that).
use crate::Error;
use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Shortest accepted password, in characters.
pub const MIN_LEN: usize = 8;
/// Longest accepted password, in bytes (hashing cost must not depend on attacker input).
pub const MAX_LEN: usize = 1024;
/// Length of the argon2 output stored in a PHC string, in bytes.
const OUTPUT_LEN: usize = 32;

/// argon2id with the given memory cost (KiB) and passes.
#[derive(Clone, Debug)]
pub struct Hasher {
    params: Params,
}

impl Hasher {
    pub fn new(memory_kib: u32, passes: u32) -> Result<Self, Error> {
        let params = Params::new(memory_kib, passes, 1, Some(OUTPUT_LEN))
            .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
        Ok(Hasher { params })
    }

    /// A zeroed memory area for one hash with this hasher's parameters.
    pub fn new_memory(&self) -> Vec<Block> {
        vec![Block::default(); self.params.block_count()]
    }

    /// Checks the policy, then hashes into a PHC string (`$argon2id$…`), working in `memory`
    /// (at least [`Hasher::new_memory`]'s size).
    pub fn hash_with(&self, password: &str, memory: &mut [Block]) -> Result<String, Error> {
        check_policy(password)?;
        let fail = |e: &dyn std::fmt::Display| Error::Internal(format!("argon2: {e}"));
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_buf = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| fail(&e))?;
        let mut out = [0u8; OUTPUT_LEN];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
            .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, memory)
            .map_err(|e| fail(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(|e| fail(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
        };
        Ok(phc.to_string())
    }

    /// True if `password` matches the PHC string `hash`, working in `memory`; a hash that
    /// needs more memory than given (made with other parameters) gets a temporary area. A
    /// malformed hash never matches.
    pub fn verify_with(&self, password: &str, hash: &str, memory: &mut [Block]) -> bool {
        if password.len() > MAX_LEN {
            return false;
        }
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        let (Ok(algorithm), Ok(params)) = (
            Algorithm::try_from(parsed.algorithm),
            Params::try_from(&parsed),
        ) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from) {
            None => Version::default(),
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let mut out = vec![0u8; expected.len()];
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let done = if params.block_count() <= memory.len() {
            argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
        } else {
            let mut temporary = vec![Block::default(); params.block_count()];
            argon2.hash_password_into_with_memory(
                password.as_bytes(),
                salt,
                &mut out,
                &mut temporary,
            )
        };
        // `Output` compares in constant time
        done.is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
    }

    /// [`Hasher::hash_with`] in a fresh memory area.
    pub fn hash(&self, password: &str) -> Result<String, Error> {
        self.hash_with(password, &mut self.new_memory())
    }

    /// [`Hasher::verify_with`] in a fresh memory area.
    pub fn verify(&self, password: &str, hash: &str) -> bool {
        self.verify_with(password, hash, &mut self.new_memory())
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
    fn reused_memory_and_hashes_of_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let h = Hasher::new(1024, 1).expect("params");
        let mut memory = h.new_memory();
        let ours = h.hash_with("correct horse", &mut memory).expect("hash");
        // hashes stored before the pool existed (made by the crate's own API) still verify
        let salt = SaltString::generate(&mut OsRng);
        let params = Params::new(2048, 1, 1, None).expect("params");
        let crate_made = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"correct horse", &salt)
            .expect("hash")
            .to_string();
        for _ in 0..2 {
            assert!(h.verify_with("correct horse", &ours, &mut memory));
            assert!(!h.verify_with("correct hors3", &ours, &mut memory));
            // needs 2 MiB, the area has 1 MiB: a temporary area is used
            assert!(h.verify_with("correct horse", &crate_made, &mut memory));
            assert!(!h.verify_with("wrong horse!", &crate_made, &mut memory));
        }
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
    }

    #[test]
    fn policy() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("        ").is_err());
        assert!(check_policy(&"x".repeat(2000)).is_err());
        assert!(check_policy("long enough").is_ok());
    }
}
