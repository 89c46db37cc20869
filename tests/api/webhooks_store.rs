//! The store's contract for webhooks, on both databases: created with a
//! secret that is never listed, changed, paused, deleted, each audited.
use serde_json::json;
use visage_service::domain::{new_id, now};
use visage_service::store::{ChangePos, Delivery, NewEvent, Outcome, Store, Webhook, WebhookChange};

use crate::helpers::temp_dir;

fn hook(url: &str, events: &[&str]) -> Webhook {
    Webhook {
        id: new_id(),
        url: url.into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        paused: false,
        created_at: now(),
    }
}

async fn contract(store: Store) {
    let a = hook("https://example.com/a", &["person.created", "person.deleted"]);
    let b = hook("https://example.com/b", &["*"]);
    store.create_webhook(&a, "whsec_AAAA", "t").await.unwrap();
    store.create_webhook(&b, "whsec_BBBB", "t").await.unwrap();
    assert_eq!(store.list_webhooks().await.unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(store.get_webhook(&a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(store.get_webhook(&new_id()).await.unwrap(), None);
    assert_eq!(store.webhook_secret(&b.id).await.unwrap().as_deref(), Some("whsec_BBBB"));
    // A change replaces what it gives and keeps the rest.
    let paused = WebhookChange { paused: Some(true), ..WebhookChange::default() };
    let now_a = store.update_webhook(&a.id, &paused, "t").await.unwrap().unwrap();
    assert_eq!(now_a, Webhook { paused: true, ..a.clone() });
    let moved = WebhookChange {
        url: Some("https://example.com/c".into()),
        events: Some(vec!["face.added".into()]),
        paused: Some(false),
    };
    let now_a = store.update_webhook(&a.id, &moved, "t").await.unwrap().unwrap();
    assert_eq!(
        (now_a.url.as_str(), now_a.events.as_slice(), now_a.paused),
        ("https://example.com/c", &["face.added".to_string()][..], false)
    );
    assert_eq!(store.get_webhook(&a.id).await.unwrap(), Some(now_a));
    assert_eq!(store.update_webhook(&new_id(), &paused, "t").await.unwrap(), None);
    // Deleted once; its secret goes with it.
    assert!(store.delete_webhook(&a.id, "t").await.unwrap());
    assert!(!store.delete_webhook(&a.id, "t").await.unwrap());
    assert_eq!(store.webhook_secret(&a.id).await.unwrap(), None);
    assert_eq!(store.list_webhooks().await.unwrap(), vec![b]);
    // A URL the table cannot hold is refused by the database itself.
    assert!(store.create_webhook(&hook(&"a".repeat(2001), &["*"]), "whsec_CCCC", "t").await.is_err());
    let log = store.audit_log(100, None).await.unwrap();
    for action in ["create_webhook", "update_webhook", "delete_webhook"] {
        assert!(log.iter().any(|e| e.action == action && e.subject == a.id), "no {action} in the log");
    }
    outbox(&store).await;
    store.close().await;
}

fn event(kind: &str, n: i64) -> NewEvent {
    NewEvent { id: format!("msg_{}", new_id()), kind: kind.into(), at: now(), data: json!({"n": n}) }
}

fn attempt(w: &str, seq: i64, attempt: u32, outcome: Outcome) -> Delivery {
    let error = (outcome != Outcome::Delivered).then(|| "answered 500".to_string());
    let status = Some(if error.is_some() { 500 } else { 204 });
    Delivery {
        id: new_id(),
        webhook_id: w.into(),
        event_seq: seq,
        attempt,
        at: now(),
        status,
        error,
        outcome,
        millis: 12,
    }
}

/// Events, a webhook's place among them, and its attempts.
async fn outbox(store: &Store) {
    store.append_events(&[event("person.created", 0)]).await.unwrap();
    let w = hook("https://example.com/w", &["person.created"]);
    store.create_webhook(&w, "whsec_WWWW", "t").await.unwrap();
    // A new webhook starts after the events written before it.
    let place = store.webhook_place(&w.id).await.unwrap().unwrap();
    assert_eq!((place.failures, place.next_at.as_deref()), (0, None));
    assert!(store.events_after(place.after, 10).await.unwrap().is_empty());
    let batch = [event("person.created", 1), event("face.added", 2), event("person.created", 3)];
    let seqs = store.append_events(&batch).await.unwrap();
    assert!(seqs.windows(2).all(|p| p[0] < p[1]));
    // Pending: the two person.created after its place (not the face.added it does not want).
    assert!(store.pending_events().await.unwrap().contains(&(w.id.clone(), 2)));
    // A batch written again (its database answered too late the first time) is not written twice.
    assert!(store.append_events(&batch[..1]).await.unwrap().is_empty());
    let next = store.events_after(place.after, 10).await.unwrap();
    assert_eq!(next.iter().map(|e| e.pos.seq).collect::<Vec<_>>(), seqs);
    assert!(next.windows(2).all(|p| p[0].pos < p[1].pos));
    assert_eq!((next[0].kind.as_str(), &next[0].data), ("person.created", &json!({"n": 1})));
    assert_eq!(store.events_after(place.after, 1).await.unwrap().len(), 1);
    let pos: Vec<ChangePos> = next.iter().map(|e| e.pos).collect();
    // The first fails twice, then is delivered; the webhook moves on only then.
    assert!(
        store
            .record_delivery(&attempt(&w.id, seqs[0], 1, Outcome::Retrying), pos[0], Some("2026-12-07T10:00:00Z"))
            .await
            .unwrap()
    );
    let retrying = store.webhook_place(&w.id).await.unwrap().unwrap();
    assert_eq!((retrying.after, retrying.failures), (place.after, 1));
    assert!(retrying.next_at.as_deref().is_some_and(|t| t.starts_with("2026-12-07T10:00:00")), "{retrying:?}");
    assert!(store.record_delivery(&attempt(&w.id, seqs[0], 2, Outcome::Delivered), pos[0], None).await.unwrap());
    let place = store.webhook_place(&w.id).await.unwrap().unwrap();
    assert_eq!((place.after, place.failures, place.next_at), (pos[0], 0, None));
    // Once past an event, another attempt of it records nothing.
    assert!(!store.record_delivery(&attempt(&w.id, seqs[0], 3, Outcome::Delivered), pos[0], None).await.unwrap());
    // The face.added it does not want is skipped; never backwards.
    store.skip_events(&w.id, pos[1]).await.unwrap();
    store.skip_events(&w.id, pos[0]).await.unwrap();
    assert_eq!(store.webhook_place(&w.id).await.unwrap().unwrap().after, pos[1]);
    assert!(store.record_delivery(&attempt(&w.id, seqs[2], 1, Outcome::Failed), pos[2], None).await.unwrap());
    let log = store.deliveries(&w.id, 10, None).await.unwrap();
    let shown: Vec<(i64, u32, Outcome)> = log.iter().map(|(_, d)| (d.event_seq, d.attempt, d.outcome)).collect();
    assert_eq!(
        shown,
        [(seqs[2], 1, Outcome::Failed), (seqs[0], 2, Outcome::Delivered), (seqs[0], 1, Outcome::Retrying)]
    );
    assert_eq!((log[2].1.status, log[2].1.error.as_deref(), log[2].1.millis), (Some(500), Some("answered 500"), 12));
    let older = store.deliveries(&w.id, 10, Some(log[0].0)).await.unwrap();
    assert_eq!(older.len(), 2);
    // Deleted: its attempts go with it, and a late attempt records nothing.
    assert!(store.delete_webhook(&w.id, "t").await.unwrap());
    assert!(store.deliveries(&w.id, 10, None).await.unwrap().is_empty());
    assert!(!store.record_delivery(&attempt(&w.id, seqs[2], 1, Outcome::Delivered), pos[2], None).await.unwrap());
    assert_eq!(store.webhook_place(&w.id).await.unwrap(), None);
}

#[tokio::test]
async fn sqlite_keeps_the_webhooks_contract() {
    let dir = temp_dir();
    contract(Store::open(&dir.path().join("w.db")).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_keeps_the_webhooks_contract() {
    contract(Store::open(&crate::pg::database()).await.unwrap()).await;
}
