//! API keys: `vsk_<id>_<secret>`. The id (16 hex digits) is public and names
//! the key in lists and logs; the secret (32 random bytes, base64url) is
//! stored only as its SHA-256 and compared in constant time. This format is
//! the store's, whichever database keeps the keys.
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiKey, NewKey, Store, StoreError, StoreResult, now};
use crate::domain::Scope;

const PREFIX: &str = "vsk_";

fn random_bytes<const N: usize>() -> StoreResult<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| StoreError::Corrupt(format!("no system randomness: {e}")))?;
    Ok(b)
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Splits a presented key into its id and secret; None when malformed.
fn split(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (id_ok && !secret.is_empty() && secret.len() <= 128).then_some((id, secret))
}

impl Store {
    pub async fn create_key(&self, name: &str, scope: Scope, actor: &str) -> StoreResult<NewKey> {
        let id = hex::encode(random_bytes::<8>()?);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        let key = ApiKey { id, name: name.to_string(), scope, created_at: now(), revoked_at: None };
        self.insert_key(&key, &digest(&secret), actor).await?;
        let full = SecretString::from(format!("{PREFIX}{}_{secret}", key.id));
        Ok(NewKey { key, secret: full })
    }

    /// The valid key a client presented, or None (malformed, unknown,
    /// revoked, or wrong secret: the caller cannot tell which).
    pub async fn authenticate(&self, presented: &SecretString) -> StoreResult<Option<ApiKey>> {
        let Some(id) = presented_id(presented) else { return Ok(None) };
        let found = self.valid_key(id).await?;
        Ok(verify(presented, found))
    }
}

/// The id of a presented key; None when it is not shaped like a key.
pub fn presented_id(presented: &SecretString) -> Option<&str> {
    split(presented.expose_secret()).map(|(id, _)| id)
}

/// The key `found` under the presented key's id, when the presented secret
/// is its secret (compared in constant time). The secret is hashed whether
/// or not a key was found, so timing does not tell a known id from an
/// unknown one.
pub fn verify(presented: &SecretString, found: Option<(ApiKey, Vec<u8>)>) -> Option<ApiKey> {
    let (_, secret) = split(presented.expose_secret())?;
    let presented = digest(secret);
    let (key, stored) = found?;
    bool::from(stored.as_slice().ct_eq(presented.as_slice())).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest() {
        assert!(Scope::Admin.allows(Scope::Enroll) && Scope::Admin.allows(Scope::Match));
        assert!(Scope::Enroll.allows(Scope::Match) && Scope::Enroll.allows(Scope::Enroll));
        assert!(!Scope::Enroll.allows(Scope::Admin) && !Scope::Match.allows(Scope::Enroll));
    }

    #[test]
    fn presented_keys_are_split_strictly() {
        assert_eq!(split("vsk_0123456789abcdef_s3cr3t"), Some(("0123456789abcdef", "s3cr3t")));
        for bad in [
            "",
            "vsk_",
            "vsk_0123456789abcdef",
            "vsk_0123456789abcdef_",
            "xyz_0123456789abcdef_s",
            "vsk_0123456789ABCDEF_s",
            "vsk_../../etc/passw_s",
            "vsk_0123_s",
        ] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }
}
