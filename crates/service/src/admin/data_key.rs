//! `visage data-key rotate`: reseals every embedding and crop with the
//! current data key, pass after pass until none is left sealed otherwise
//! (or in clear), then retires the database's other keys. `visage backup
//! --decrypt` does the same to a copy with no key: every value in clear. Each batch is one
//! transaction of compare-and-sets: the service keeps serving, a value
//! changed meanwhile is taken again in the next pass, and a rotation killed
//! at any point finishes when run again.
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use super::ACTOR;
use crate::sealing::{DataKeys, KeyId, Sealed};
use crate::store::{SealedColumn, Store, StoredValue};

/// Values read and resealed per transaction.
const BATCH: u32 = 500;
/// Passes before giving up on values that keep changing under the rotation.
const MAX_PASSES: u32 = 10;

/// What a rotation did: the key everything is sealed with now, values
/// resealed, passes, earlier keys unlisted, seconds.
#[derive(Debug)]
pub struct Rotated {
    pub key: KeyId,
    pub resealed: u64,
    pub passes: u32,
    pub retired: u64,
    pub seconds: f64,
}

/// What a stored value is bound to.
fn bound(v: &StoredValue) -> Sealed<'_> {
    match v.column {
        SealedColumn::FaceEmbedding | SealedColumn::BesideEmbedding => {
            Sealed::Embedding { face: &v.face_id, model: &v.model }
        }
        SealedColumn::Crop => Sealed::Crop { face: &v.face_id },
    }
}

/// The value sealed anew with the current key (in clear with none).
fn resealed(keys: &DataKeys, v: &StoredValue) -> Result<Vec<u8>> {
    let what = bound(v);
    let clear = keys.open(what, &v.stored).with_context(|| format!("face {}", v.face_id))?;
    Ok(keys.seal(what, clear.into_owned()))
}

/// One pass over a column; (values found, values resealed). With a key,
/// the values not sealed by it; without, the sealed ones.
async fn pass(store: &Store, column: SealedColumn, progress: &impl Fn(u64)) -> Result<(u64, u64)> {
    let keys = store.sealing();
    // No prefix: every value is read, and the clear ones are left out here.
    let prefix = keys.current().map(|k| k.prefix().to_vec()).unwrap_or_default();
    let (mut found, mut done) = (0u64, 0u64);
    let mut after: Option<(String, String)> = None;
    loop {
        let cursor = after.as_ref().map(|(f, m)| (f.as_str(), m.as_str()));
        let mut batch = store.values_not_sealed_by(column, &prefix, cursor, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = Some((last.face_id.clone(), last.model.clone()));
        if !keys.is_on() {
            batch.retain(|v| bound(v).is_sealed(&v.stored));
        }
        found += batch.len() as u64;
        let rewritten =
            batch.into_iter().map(|v| resealed(keys, &v).map(|new| (v, new))).collect::<Result<Vec<_>>>()?;
        done += store.replace_values(&rewritten).await?;
        progress(done);
    }
    Ok((found, done))
}

/// Reseals everything with the store's current key and retires the others.
pub async fn rotate(store: &Store, progress: impl Fn(u64)) -> Result<Rotated> {
    let key = store.sealing().current().context("no data key to reseal with")?;
    let (resealed, passes, seconds) = reseal_all(store, progress).await?;
    let retired = store.retire_data_keys(&key.id().to_string(), ACTOR).await?;
    Ok(Rotated { key: key.id(), resealed, passes, retired, seconds })
}

/// Opens every sealed value of a store opened without a key for writing
/// (a copy being decrypted: [`decrypting`]) and retires every key; how many.
pub async fn decrypt(store: &Store) -> Result<u64> {
    anyhow::ensure!(!store.sealing().is_on(), "decrypting needs a store that seals nothing");
    let (opened, _, _) = reseal_all(store, |_| {}).await?;
    store.retire_data_keys("", ACTOR).await?;
    Ok(opened)
}

/// Passes until none finds a value left to reseal; (resealed, passes, seconds).
async fn reseal_all(store: &Store, progress: impl Fn(u64)) -> Result<(u64, u32, f64)> {
    let start = Instant::now();
    let (mut resealed, mut passes) = (0u64, 0u32);
    loop {
        passes += 1;
        let mut found = 0;
        for column in SealedColumn::ALL {
            let (f, d) = pass(store, column, &|n| progress(resealed + n)).await?;
            found += f;
            resealed += d;
        }
        if found == 0 {
            break;
        }
        if passes == MAX_PASSES {
            bail!("values keep changing under the rotation after {passes} passes; run it again");
        }
    }
    Ok((resealed, passes, start.elapsed().as_secs_f64()))
}
