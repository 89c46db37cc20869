//! Deliveries against a real receiver that verifies signatures with the
//! `standardwebhooks` package. The outbox: every event a webhook wants
//! arrives once, in order, also when the receiver was down for a while.
//! One attempt: delivered and verified; a wrong
//! secret, a 500, a redirect (never followed), a hang (cut at the
//! deadline) and an endless answer (not read past a few KiB) are failures
//! with their reason; loopback targets are refused unless allowed.
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use serde_json::json;
use visage_service::domain::{Outcome, Webhook, new_id, now as timestamp};
use visage_service::events::{Secret, Sender, SenderOptions};
use visage_service::service::deliveries::{Deliverer, DeliveryConfig};
use visage_service::store::{NewEvent, Store};

use crate::helpers::{root, temp_dir};

pub(crate) struct Receiver {
    child: Child,
    /// The receiver's records, read on a thread of their own.
    pub(crate) lines: std::sync::mpsc::Receiver<String>,
    port: u16,
}

impl Receiver {
    pub(crate) fn start(secret: &Secret) -> Receiver {
        Receiver::start_on(secret, 0)
    }

    pub(crate) fn start_on(secret: &Secret, port: u16) -> Receiver {
        let python = root().join("target/test-venv/bin/python");
        let mut child = Command::new(&python)
            .arg(root().join("tests/webhooks/receiver.py"))
            .arg(secret.expose())
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{} (make test-venv): {e}", python.display()));
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut port = String::new();
        out.read_line(&mut port).unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || read_lines(out, tx));
        Receiver { child, lines, port: port.trim().parse().unwrap() }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next request the receiver recorded (within 20 s).
    pub(crate) fn next(&mut self) -> Value {
        let line = self.lines.recv_timeout(Duration::from_secs(20)).expect("the receiver saw nothing in 20 s");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }
}

fn read_lines(mut out: BufReader<ChildStdout>, tx: std::sync::mpsc::Sender<String>) {
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 || tx.send(line).is_err() {
            return;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test]
async fn a_delivery_is_verified_by_a_standard_webhooks_receiver_and_failures_say_why() {
    let secret = Secret::generate().unwrap();
    let mut rx = Receiver::start(&secret);
    let options = SenderOptions { timeout: Duration::from_secs(2), allow_private: true };
    let sender = Sender::new(&options).unwrap();
    let body = br#"{"type":"person.created","timestamp":"2026-12-07T00:00:00Z","data":{"person_id":"p1"}}"#;

    let a = sender.send(&rx.url("/ok"), &secret, "msg_1", now(), body).await;
    assert!(a.delivered(), "{a:?}");
    assert_eq!(a.status, Some(204));
    let seen = rx.next();
    assert_eq!((seen["verified"].as_bool(), seen["id"].as_str()), (Some(true), Some("msg_1")), "{seen}");
    assert_eq!(seen["payload"]["data"]["person_id"], "p1");

    // Signed with another secret, or too old a timestamp: the receiver refuses it.
    let other = Secret::generate().unwrap();
    let a = sender.send(&rx.url("/ok"), &other, "msg_2", now(), body).await;
    assert_eq!((a.status, a.error.as_deref()), (Some(400), Some("answered 400: bad signature")));
    assert_eq!(rx.next()["verified"], false);
    let a = sender.send(&rx.url("/ok"), &secret, "msg_3", now() - 3600, body).await;
    assert_eq!(a.status, Some(400));
    assert_eq!(rx.next()["verified"], false);

    let a = sender.send(&rx.url("/fail"), &secret, "msg_4", now(), body).await;
    assert_eq!((a.status, a.error.as_deref()), (Some(500), Some("answered 500: receiver broke")));
    rx.next();

    // A redirect is not followed: the next request the receiver sees is the hang's.
    let a = sender.send(&rx.url("/redirect"), &secret, "msg_5", now(), body).await;
    assert_eq!((a.status, a.delivered()), (Some(302), false));
    assert_eq!(rx.next()["path"], "/redirect");

    let start = Instant::now();
    let a = sender.send(&rx.url("/hang"), &secret, "msg_6", now(), body).await;
    let took = start.elapsed();
    assert!(a.error.as_deref().is_some_and(|e| e.starts_with("timed out")), "{a:?}");
    assert!(took < Duration::from_secs(4), "the deadline is 2 s: {took:?}");
    assert_eq!(rx.next()["path"], "/hang");

    // 64 MiB sent slowly: the attempt ends once a few KiB are read.
    let start = Instant::now();
    let a = sender.send(&rx.url("/big"), &secret, "msg_7", now(), body).await;
    assert!(a.delivered(), "{a:?}");
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    assert_eq!(rx.next()["path"], "/big");
}

#[tokio::test]
async fn loopback_targets_are_refused_unless_allowed() {
    let secret = Secret::generate().unwrap();
    let mut rx = Receiver::start(&secret);
    let sender = Sender::new(&SenderOptions::default()).unwrap();
    let a = sender.send(&rx.url("/ok"), &secret, "msg_1", now(), b"{}").await;
    assert!(a.error.as_deref().is_some_and(|e| e.contains("private")), "{a:?}");
    // (A name that resolves to loopback is refused when connecting: a unit
    // test of the resolver, crates/service/src/events/deliver.rs.)
    let allowed = Sender::new(&SenderOptions { allow_private: true, ..SenderOptions::default() }).unwrap();
    let body = br#"{"type":"x","timestamp":"2026-12-07T00:00:00Z","data":{}}"#;
    let a = allowed.send(&rx.url("/ok"), &secret, "msg_3", now(), body).await;
    assert!(a.delivered(), "{a:?}");
    assert_eq!(rx.next()["id"], "msg_3");
}

fn event(kind: &str, n: u32) -> NewEvent {
    NewEvent { id: format!("msg_{}", new_id()), kind: kind.into(), at: timestamp(), data: json!({"n": n}) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wanted_event_arrives_in_order_after_the_receiver_comes_back() {
    let dir = temp_dir();
    let store = Store::open(&dir.path().join("o.db")).await.unwrap();
    let secret = Secret::generate().unwrap();
    // A port nobody listens on yet: the receiver comes up there later.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hook = Webhook {
        id: new_id(),
        url: format!("http://127.0.0.1:{port}/ok"),
        events: vec!["person.created".into(), "face.added".into()],
        paused: false,
        created_at: timestamp(),
    };
    store.create_webhook(&hook, &secret.expose(), "t").await.unwrap();
    let kinds = ["person.created", "person.deleted", "face.added", "person.updated", "person.created"];
    let events: Vec<NewEvent> = kinds.iter().enumerate().map(|(n, k)| event(k, n as u32)).collect();
    store.append_events(&events).await.unwrap();
    let config = DeliveryConfig {
        sender: SenderOptions { timeout: Duration::from_secs(2), allow_private: true },
        ..DeliveryConfig::default()
    };
    let deliverer = Deliverer::new(store.clone(), config, Default::default()).unwrap();
    let task = tokio::spawn(deliverer.clone().run());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut rx = Receiver::start_on(&secret, port);
    for want in [0, 2, 4] {
        let seen = tokio::task::block_in_place(|| rx.next());
        assert_eq!(seen["verified"], true, "{seen}");
        assert_eq!(seen["id"], events[want].id.as_str());
        assert_eq!(
            (seen["payload"]["type"].as_str(), &seen["payload"]["data"]),
            (Some(kinds[want]), &json!({"n": want}))
        );
    }
    // Each event was tried while the receiver was down, then delivered (the
    // last one's record is written once its answer is in).
    let deadline = Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = store.deliveries(&hook.id, 50, None).await.unwrap();
        if log.iter().filter(|(_, d)| d.outcome == Outcome::Delivered).count() == 3 || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let first = &log.last().unwrap().1;
    assert_eq!((first.attempt, first.outcome, first.status), (1, Outcome::Retrying, None));
    assert!(first.error.as_deref().is_some_and(|e| e.starts_with("could not connect")), "{first:?}");
    let delivered = log.iter().filter(|(_, d)| d.outcome == Outcome::Delivered).count();
    assert_eq!(delivered, 3, "{log:?}");
    task.abort();
    store.close().await;
}
