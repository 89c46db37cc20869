//! Standard Webhooks signatures: a delivery is signed with HMAC-SHA256 over
//! `{id}.{timestamp}.{body}` under the webhook's secret, sent as
//! `webhook-signature: v1,<base64>` beside `webhook-id` and
//! `webhook-timestamp` (seconds since the epoch), so any Standard Webhooks
//! library verifies it. A secret is `whsec_` and the base64 of its key bytes.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// What a secret starts with.
pub const PREFIX: &str = "whsec_";
/// Key bytes a generated secret has (the libraries' own choice: 24).
const GENERATED_BYTES: usize = 24;
/// Key bytes a given secret may have: at least 16 (128 bits), at most 64.
const MIN_BYTES: usize = 16;
const MAX_BYTES: usize = 64;

/// A webhook's signing key (the bytes behind `whsec_...`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a given secret is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with whsec_")]
    Prefix,
    #[error("a webhook secret is whsec_ and base64")]
    Base64,
    #[error("a webhook secret holds 16 to 64 bytes")]
    Length,
}

impl Secret {
    /// A new random secret.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut key = vec![0u8; GENERATED_BYTES];
        getrandom::fill(&mut key)?;
        Ok(Secret(key))
    }

    /// A secret as written (`whsec_` + base64).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let b64 = text.strip_prefix(PREFIX).ok_or(SecretError::Prefix)?;
        let key = STANDARD.decode(b64).map_err(|_| SecretError::Base64)?;
        if !(MIN_BYTES..=MAX_BYTES).contains(&key.len()) {
            return Err(SecretError::Length);
        }
        Ok(Secret(key))
    }

    /// As written: `whsec_` + base64 (shown once, stored).
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The `webhook-signature` header's value for one attempt.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // A key of any length is accepted by HMAC: this cannot fail.
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_standard_webhooks_libraries_do() {
        // The libraries' own test vector.
        let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = s.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_ne!(s.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, br#"{"test": 2432232314}"#), sig);
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_refused() {
        let s = Secret::generate().unwrap();
        assert_eq!(Secret::parse(&s.expose()).unwrap(), s);
        assert_ne!(Secret::generate().unwrap(), s);
        assert_eq!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Err(SecretError::Prefix));
        assert_eq!(Secret::parse("whsec_not base64!"), Err(SecretError::Base64));
        assert_eq!(Secret::parse("whsec_c2hvcnQ="), Err(SecretError::Length));
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }
}
