//! The change log replicas follow: the audit log, read in an order in which
//! no change is ever skipped.
//!
//! Sequence values are taken when a transaction inserts its audit row, not
//! when it commits: a transaction holding `seq` 7 can commit after one
//! holding `seq` 8, so a reader that remembered "up to 8" would skip 7. Each
//! row therefore carries the id of the transaction that wrote it (`txid`),
//! and a reader takes only rows of transactions older than the oldest one
//! still running (the `xmin` of its snapshot): those have all committed or
//! rolled back, so no row can appear before them any more. Rows are read
//! in (`txid`, `seq`) order and the position is that pair. A transaction
//! that runs long delays what comes after it; it never loses it.
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use uuid::Uuid;

use super::convert::{XMIN, uuids};
use super::faces::{EMBEDDING_OF_MODEL, EmbeddingRow};
use crate::store::{Change, ChangePos, StoreResult, StoredEmbedding};

/// The channel the audit trigger notifies.
const CHANNEL: &str = "visage_changes";

/// Before the oldest running transaction: everything earlier is settled.
pub(super) async fn horizon(pool: &PgPool) -> StoreResult<ChangePos> {
    let xmin: i64 = sqlx::query_scalar(&format!("SELECT {XMIN}")).fetch_one(pool).await?;
    // `after` is exclusive and `seq` starts at 1: (xmin, 0) keeps every
    // change of transaction `xmin` and later.
    Ok(ChangePos { txid: xmin, seq: 0 })
}

pub(super) async fn after(pool: &PgPool, after: ChangePos, limit: u32) -> StoreResult<Vec<Change>> {
    let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(&format!(
        "SELECT txid, seq, action, subject FROM audit \
         WHERE (txid, seq) > ($1, $2) AND txid < {XMIN} ORDER BY txid, seq LIMIT $3"
    ))
    .bind(after.txid)
    .bind(after.seq)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(txid, seq, action, subject)| Change { pos: ChangePos { txid, seq }, action, subject })
        .collect())
}

/// `LISTEN` on a connection of its own: an item per notification; an error
/// (then the end) when the connection is lost.
pub(super) async fn signals(pool: &PgPool) -> StoreResult<BoxStream<'static, StoreResult<()>>> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Lost connections are reported, not silently replaced: the follower
    // must catch up on what it missed meanwhile.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(futures_util::stream::unfold(Some(listener), |state| async move {
        let mut listener = state?;
        match listener.try_recv().await {
            Ok(Some(_)) => Some((Ok(()), Some(listener))),
            Ok(None) => Some((Err(sqlx::Error::Io(std::io::ErrorKind::ConnectionAborted.into()).into()), None)),
            Err(e) => Some((Err(e.into()), None)),
        }
    })
    .boxed())
}

pub(super) async fn embeddings_of(
    pool: &PgPool,
    keys: &crate::sealing::DataKeys,
    faces: &[&str],
    persons: &[&str],
    model: &str,
) -> StoreResult<Vec<StoredEmbedding>> {
    let (faces, persons): (Vec<Uuid>, Vec<Uuid>) = (uuids(faces), uuids(persons));
    let sql = format!("{EMBEDDING_OF_MODEL} AND (f.id = ANY($2) OR f.person_id = ANY($3))");
    let rows = sqlx::query_as::<_, EmbeddingRow>(&sql).bind(model).bind(faces).bind(persons).fetch_all(pool).await?;
    rows.into_iter().map(|r| r.open(keys)).collect()
}
