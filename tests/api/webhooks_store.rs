//! The store's contract for webhooks, on both databases: created with a
//! secret that is never listed, changed, paused, deleted, each audited.
use visage_service::domain::{new_id, now};
use visage_service::store::{Store, Webhook, WebhookChange};

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
    store.close().await;
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
