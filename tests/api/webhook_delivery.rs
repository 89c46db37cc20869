//! One delivery attempt against a real receiver that verifies signatures
//! with the `standardwebhooks` package: delivered and verified; a wrong
//! secret, a 500, a redirect (never followed), a hang (cut at the
//! deadline) and an endless answer (not read past a few KiB) are failures
//! with their reason; loopback targets are refused unless allowed.
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use visage_service::events::{Secret, Sender, SenderOptions};

use crate::helpers::root;

struct Receiver {
    child: Child,
    lines: BufReader<ChildStdout>,
    port: u16,
}

impl Receiver {
    fn start(secret: &Secret) -> Receiver {
        let python = root().join("target/test-venv/bin/python");
        let mut child = Command::new(&python)
            .arg(root().join("tests/webhooks/receiver.py"))
            .arg(secret.expose())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{} (make test-venv): {e}", python.display()));
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut port = String::new();
        lines.read_line(&mut port).unwrap();
        Receiver { child, lines, port: port.trim().parse().unwrap() }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next request the receiver recorded.
    fn next(&mut self) -> Value {
        let mut line = String::new();
        self.lines.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
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
