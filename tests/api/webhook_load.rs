//! 10,000 identify events written by many concurrent writers (as identify
//! requests under load write them) to two webhooks, each a real receiver
//! verifying signatures with `standardwebhooks`: none is lost, none comes
//! twice, and each webhook receives them in the outbox's order.
use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::json;
use visage_service::domain::{ChangePos, EventKind, Webhook, new_id, now};
use visage_service::events::{Secret, SenderOptions};
use visage_service::service::deliveries::{Deliverer, DeliveryConfig};
use visage_service::service::outbox::EventLog;
use visage_service::store::{NewEvent, Store};

use crate::helpers::{fresh_db, temp_dir};
use crate::webhook_delivery::Receiver;

const EVENTS: usize = 10_000;
const WRITERS: usize = 16;

/// While the database cannot take them, identify's events wait in order up
/// to the bound; what overflows is counted, and the rest is written once
/// the database takes it.
#[tokio::test]
async fn events_wait_for_the_database_in_order_up_to_the_bound() {
    let dir = temp_dir();
    let store = Store::open(&dir.path().join("w.db")).await.unwrap();
    let log = EventLog::new(store.clone(), 3);
    let events: Vec<NewEvent> = (0..5).map(|n| NewEvent::of(EventKind::IdentifyUnknown, &json!({"n": n}))).collect();
    for e in &events {
        log.record(vec![e.clone()], false).await;
    }
    assert_eq!(log.waiting(), 3);
    assert_eq!(log.write_now().await, 0);
    let written = store.events_after(ChangePos::default(), 10).await.unwrap();
    let ids: Vec<&str> = written.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, events[..3].iter().map(|e| e.id.as_str()).collect::<Vec<_>>());
    // Once the queue is empty, events are written at once again.
    log.record(vec![events[4].clone()], true).await;
    assert_eq!((log.waiting(), store.events_after(written[2].pos, 10).await.unwrap().len()), (0, 1));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_identify_events_reach_two_webhooks_complete_and_in_order() {
    let dir = temp_dir();
    let store = Store::open(&fresh_db(&dir)).await.unwrap();
    let secret = Secret::generate().unwrap();
    let mut receivers = [Receiver::start(&secret), Receiver::start(&secret)];
    for rx in &receivers {
        let hook = Webhook {
            id: new_id(),
            url: rx.url("/ok"),
            events: vec!["identify.identified".into(), "identify.unknown".into()],
            paused: false,
            created_at: now(),
        };
        store.create_webhook(&hook, &secret.expose(), "t").await.unwrap();
    }
    let log = EventLog::new(store.clone(), EVENTS);
    let config = DeliveryConfig {
        sender: SenderOptions { timeout: Duration::from_secs(5), allow_private: true },
        ..DeliveryConfig::default()
    };
    let deliverer = Deliverer::new(store.clone(), config, log.written()).unwrap();
    let task = tokio::spawn(deliverer.clone().run());
    // As the server does: events a busy database did not take in time are written as soon as it can.
    let writer = tokio::spawn(log.clone().write_waiting());

    let start = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..EVENTS / WRITERS {
                    let kind = if i % 3 == 0 { EventKind::IdentifyUnknown } else { EventKind::IdentifyIdentified };
                    log.record(vec![NewEvent::of(kind, &json!({"writer": w, "n": i}))], true).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let written = start.elapsed();
    for _ in 0..100 {
        if log.waiting() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(log.waiting(), 0, "events still wait for the database");

    // The outbox's order: what each webhook must receive, in this order.
    let mut order = Vec::with_capacity(EVENTS);
    let mut after = ChangePos::default();
    loop {
        let page = store.events_after(after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.pos;
        order.extend(page.into_iter().map(|e| e.id));
    }
    assert_eq!(order.len(), EVENTS);
    for rx in &mut receivers {
        let got: Vec<String> = tokio::task::block_in_place(|| {
            (0..EVENTS)
                .map(|_| {
                    let seen = rx.next();
                    assert_eq!(seen["verified"], true, "{seen}");
                    seen["id"].as_str().unwrap().to_string()
                })
                .collect()
        });
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), EVENTS, "an event arrived twice");
        assert!(got == order, "a webhook received the events out of the outbox's order");
    }
    println!(
        "{EVENTS} events from {WRITERS} writers written in {:.1} s; both webhooks had them all after {:.1} s",
        written.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    task.abort();
    writer.abort();
    store.close().await;
}
