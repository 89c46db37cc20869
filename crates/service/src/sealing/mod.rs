//! Encryption at rest of the biometric data (`--data-key-file`): every
//! embedding, kept crop and saved graph is sealed with XChaCha20-Poly1305
//! (RustCrypto's `chacha20poly1305`; no cipher code here) under a fresh
//! random 24-byte nonce, with what the value is and the id of the row that
//! holds it as associated data: a sealed value copied onto another row, or
//! altered, does not open.
//!
//! A sealed value: `F5 56 01`, the sealing key's id (8 bytes), the nonce,
//! the ciphertext and its 16-byte tag; 51 bytes more than the clear value.
//! An embedding's clear form is a whole number of f32s (length a multiple of
//! 4), its sealed form never is; a crop's clear form is a PNG, a graph's
//! starts with usearch's own header: neither starts with `F5 56 01`. So
//! clear rows (written before a key was given) are still read, and resealed
//! by `visage data-key rotate`.
//!
//! A key is 32 random bytes ([`key_file`]); its id and check value are an
//! HMAC of a fixed label under the key (a database stores the check value,
//! never the key, and so knows a wrong key at once).
pub mod key_file;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use key_file::{KeyFileError, generate, parse_key, read_key_file};

/// A data key's length: 32 bytes.
pub const KEY_LEN: usize = 32;
const MAGIC: [u8; 3] = [0xF5, b'V', 1];
const ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The magic and the key id: what says which key sealed a value.
pub const PREFIX_LEN: usize = MAGIC.len() + ID_LEN;
const HEADER_LEN: usize = PREFIX_LEN + NONCE_LEN;
/// How much longer a sealed value is than the clear one.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed with data key {0}, which was not given (give every key of a rotation in progress)")]
    UnknownKey(KeyId),
    #[error("a sealed {0} does not open: altered, truncated, or copied from another row")]
    DoesNotOpen(&'static str),
    #[error("a {0} in clear where a sealed one was expected")]
    NotSealed(&'static str),
}

/// The first 8 bytes of a key's check value: names the key in sealed values,
/// the database's key list and messages, without giving it away.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; ID_LEN]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// What a sealed value is, with the id of the row (or file) that holds it:
/// together its associated data.
#[derive(Debug, Clone, Copy)]
pub enum Sealed<'a> {
    /// A face's embedding by a model (its own, or one kept beside it).
    Embedding { face: &'a str, model: &'a str },
    /// A face's kept crop.
    Crop { face: &'a str },
    /// A saved graph file of the approximate index, by its name.
    Graph { file: &'a str },
}

impl Sealed<'_> {
    fn label(&self) -> &'static str {
        match self {
            Self::Embedding { .. } => "embedding",
            Self::Crop { .. } => "crop",
            Self::Graph { .. } => "graph",
        }
    }

    /// The associated data: the prefix (magic and key id), what it is, and its row's id.
    fn associated(&self, prefix: &[u8]) -> Vec<u8> {
        let mut ad = prefix.to_vec();
        ad.extend_from_slice(b"visage ");
        ad.extend_from_slice(self.label().as_bytes());
        for part in match self {
            Self::Embedding { face, model } => vec![*face, *model],
            Self::Crop { face } => vec![*face],
            Self::Graph { file } => vec![*file],
        } {
            ad.push(0);
            ad.extend_from_slice(part.as_bytes());
        }
        ad
    }

    /// Whether `stored` is meant to be in sealed form (else it is the clear
    /// value): an embedding of a length no f32s have, any other value that
    /// starts with the magic. Whether it truly is, opening says.
    pub fn is_sealed(&self, stored: &[u8]) -> bool {
        match self {
            Self::Embedding { .. } => !stored.len().is_multiple_of(4),
            Self::Crop { .. } | Self::Graph { .. } => stored.starts_with(&MAGIC),
        }
    }
}

/// Which key sealed a stored value; None when it is clear (or too short to say).
pub fn sealed_by(stored: &[u8]) -> Option<KeyId> {
    if stored.len() < OVERHEAD || !stored.starts_with(&MAGIC) {
        return None;
    }
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&stored[MAGIC.len()..PREFIX_LEN]);
    Some(KeyId(id))
}

/// One data key, ready to seal and open.
#[derive(Clone)]
pub struct DataKey {
    check: [u8; 32],
    cipher: XChaCha20Poly1305,
}

impl DataKey {
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        // HMAC takes a key of any length: `new_from_slice` cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        mac.update(b"visage data key check v1");
        let check: [u8; 32] = mac.finalize().into_bytes().into();
        Self { check, cipher: XChaCha20Poly1305::new(key.into()) }
    }

    pub fn id(&self) -> KeyId {
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&self.check[..ID_LEN]);
        KeyId(id)
    }

    /// What a database keeps to know this key again (an HMAC under it).
    pub fn check_value(&self) -> [u8; 32] {
        self.check
    }

    /// The magic and this key's id: how every value it seals starts.
    pub fn prefix(&self) -> [u8; PREFIX_LEN] {
        let mut p = [0u8; PREFIX_LEN];
        p[..MAGIC.len()].copy_from_slice(&MAGIC);
        p[MAGIC.len()..].copy_from_slice(&self.id().0);
        p
    }

    /// `clear`, sealed as `what` under a fresh random nonce (in place: a
    /// large value is not held twice).
    pub fn seal(&self, what: Sealed<'_>, mut value: Vec<u8>) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // The operating system's generator; without it nothing may be sealed safely.
        getrandom::fill(&mut nonce).unwrap_or_else(|e| panic!("no random numbers for a nonce: {e}"));
        let prefix = self.prefix();
        let ad = what.associated(&prefix);
        // Encryption fails only past 256 GiB per value.
        let tag = self
            .cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &ad, &mut value)
            .unwrap_or_else(|_| panic!("a value too long to seal"));
        value.reserve_exact(OVERHEAD);
        value.splice(0..0, prefix.iter().chain(&nonce).copied());
        value.extend_from_slice(&tag);
        value
    }

    /// The clear value of `stored` (at least [`OVERHEAD`] long, sealed by this key), in place.
    fn open(&self, what: Sealed<'_>, mut stored: Vec<u8>) -> Result<Vec<u8>, SealError> {
        let tag_at = stored.len() - TAG_LEN;
        let tag = *Tag::from_slice(&stored[tag_at..]);
        let mut head = [0u8; HEADER_LEN];
        head.copy_from_slice(&stored[..HEADER_LEN]);
        stored.truncate(tag_at);
        let ad = what.associated(&head[..PREFIX_LEN]);
        self.cipher
            .decrypt_in_place_detached(XNonce::from_slice(&head[PREFIX_LEN..]), &ad, &mut stored[HEADER_LEN..], &tag)
            .map_err(|_| SealError::DoesNotOpen(what.label()))?;
        stored.drain(..HEADER_LEN);
        Ok(stored)
    }
}

/// The keys a process holds: the one that seals (none: values are written
/// in clear) and those of a rotation in progress, which only open.
#[derive(Clone, Default)]
pub struct DataKeys {
    inner: Arc<Keys>,
}

#[derive(Default)]
struct Keys {
    current: Option<DataKey>,
    previous: Vec<DataKey>,
}

impl fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let previous: Vec<KeyId> = self.inner.previous.iter().map(DataKey::id).collect();
        f.debug_struct("DataKeys")
            .field("current", &self.current().map(DataKey::id))
            .field("previous", &previous)
            .finish()
    }
}

impl DataKeys {
    /// No key: values are written in clear (and sealed ones cannot be read).
    pub fn none() -> Self {
        Self::default()
    }

    pub fn new(current: DataKey, previous: Vec<DataKey>) -> Self {
        Self { inner: Arc::new(Keys { current: Some(current), previous }) }
    }

    /// Keys that open what they sealed and seal nothing (a copy being
    /// decrypted: `visage backup --decrypt`).
    pub fn opening_only(keys: Vec<DataKey>) -> Self {
        Self { inner: Arc::new(Keys { current: None, previous: keys }) }
    }

    /// These keys, all of them only opening.
    pub fn for_opening(&self) -> Self {
        Self::opening_only(self.current().into_iter().chain(self.previous()).cloned().collect())
    }

    /// The key that seals, when there is one.
    pub fn current(&self) -> Option<&DataKey> {
        self.inner.current.as_ref()
    }

    /// The keys that only open (a rotation's earlier ones).
    pub fn previous(&self) -> &[DataKey] {
        &self.inner.previous
    }

    pub fn is_on(&self) -> bool {
        self.inner.current.is_some()
    }

    /// `clear` sealed with the current key; as it is when there is none.
    pub fn seal(&self, what: Sealed<'_>, clear: Vec<u8>) -> Vec<u8> {
        match self.current() {
            Some(key) => key.seal(what, clear),
            None => clear,
        }
    }

    /// The clear value of a stored one (sealed by any key held, or clear).
    pub fn open<'s>(&self, what: Sealed<'_>, stored: &'s [u8]) -> Result<Cow<'s, [u8]>, SealError> {
        if !what.is_sealed(stored) {
            return Ok(Cow::Borrowed(stored));
        }
        let id = sealed_by(stored).ok_or(SealError::DoesNotOpen(what.label()))?;
        let key = self.key(id).ok_or(SealError::UnknownKey(id))?;
        key.open(what, stored.to_vec()).map(Cow::Owned)
    }

    /// As [`DataKeys::open`], in place, and a clear value is refused (a
    /// saved file written while a key was given is always sealed).
    pub fn open_sealed(&self, what: Sealed<'_>, stored: Vec<u8>) -> Result<Vec<u8>, SealError> {
        if !what.is_sealed(&stored) {
            return Err(SealError::NotSealed(what.label()));
        }
        let id = sealed_by(&stored).ok_or(SealError::DoesNotOpen(what.label()))?;
        self.key(id).ok_or(SealError::UnknownKey(id))?.open(what, stored)
    }

    fn key(&self, id: KeyId) -> Option<&DataKey> {
        self.current().into_iter().chain(self.previous()).find(|k| k.id() == id)
    }
}

#[cfg(test)]
mod tests;
