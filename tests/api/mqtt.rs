//! Events over MQTT to a real broker (mosquitto, started here on a free
//! port), read by a `paho-mqtt` subscriber: each event on `visage/<type>`
//! in order, Home Assistant's discovery of each enrolled person and its
//! state on identification; the broker down for a while: the events wait in
//! the outbox and arrive once it is back.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use visage_service::events::MqttConfig;

use crate::helpers::{config, fresh_db, photo, root, spawn_with, temp_dir};

/// mosquitto on 127.0.0.1:port, anonymous, nothing kept between runs.
struct Broker(Child);

impl Broker {
    fn start(dir: &Path, port: u16) -> Broker {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")).unwrap();
        let bin =
            ["/usr/sbin/mosquitto", "mosquitto"].into_iter().find(|b| Path::new(b).exists()).unwrap_or("mosquitto");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("mosquitto (make test-tools): {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker(child)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The paho-mqtt subscriber's records, read on a thread of their own.
struct Subscriber {
    child: Child,
    lines: std::sync::mpsc::Receiver<Value>,
}

impl Subscriber {
    fn start(port: u16) -> Subscriber {
        let python = root().join("target/test-venv/bin/python");
        let mut child = Command::new(&python)
            .arg(root().join("tests/mqtt/subscriber.py"))
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{} (make test-venv): {e}", python.display()));
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(serde_json::from_str(&line).unwrap_or(Value::Null)).is_err() {
                    return;
                }
            }
        });
        Subscriber { child, lines }
    }

    /// Records until one satisfies `want` (within `secs`); that one last.
    fn until(&mut self, secs: u64, want: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.lines.recv_timeout(left).unwrap_or_else(|_| panic!("not seen in {secs} s; saw {seen:#?}"));
            let done = want(&v);
            seen.push(v);
            if done {
                return seen;
            }
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn topic_is(v: &Value, topic: &str) -> bool {
    v["topic"].as_str() == Some(topic)
}

fn payload(v: &Value) -> Value {
    serde_json::from_str(v["payload"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_mqtt_with_home_assistant_discovery_and_wait_while_the_broker_is_down() {
    let dir = temp_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let broker = Broker::start(dir.path(), port);
    let mut sub = Subscriber::start(port);
    tokio::task::block_in_place(|| sub.until(10, |v| v["subscribed"] == true));
    let mut c = config(&fresh_db(&dir));
    c.service.webhooks.mqtt = Some(MqttConfig {
        url: format!("mqtt://127.0.0.1:{port}"),
        user: None,
        password: None,
        prefix: "visage".into(),
        discovery_prefix: Some("homeassistant".into()),
        ca_file: None,
        client_id: "visage-under-test".into(),
    });
    let mut app = spawn_with(c).await;

    let alice = app.enroll("Alice", "obama.jpg").await;
    let seen = tokio::task::block_in_place(|| sub.until(20, |v| topic_is(v, "visage/face.added")));
    let topics: Vec<&str> = seen.iter().filter_map(|v| v["topic"].as_str()).collect();
    let created = seen.iter().find(|v| topic_is(v, "visage/person.created")).expect("person.created");
    assert_eq!(payload(created)["data"]["person"]["id"], alice.as_str());
    assert!(topics.contains(&"visage/status"), "{topics:?}");
    let config_topic = format!("homeassistant/sensor/visage/{alice}_last_seen/config");
    let discovery = seen.iter().find(|v| topic_is(v, &config_topic)).unwrap_or_else(|| panic!("{topics:?}"));
    let discovery = payload(discovery);
    assert_eq!(
        (discovery["device"]["name"].as_str(), discovery["device_class"].as_str()),
        (Some("Alice"), Some("timestamp"))
    );
    assert!(
        topics.iter().position(|t| *t == "visage/person.created")
            < topics.iter().position(|t| *t == "visage/face.added")
    );

    let r = app.post_image("/v1/identify", photo("obama2.jpg"), &[("source", "front-door")]).await;
    assert_eq!(r.status(), 200);
    let state_topic = format!("visage/person/{alice}/state");
    let seen = tokio::task::block_in_place(|| sub.until(20, |v| topic_is(v, &state_topic)));
    let identified = seen.iter().find(|v| topic_is(v, "visage/identify.identified")).expect("identify.identified");
    assert_eq!(payload(identified)["data"]["match"]["person_id"], alice.as_str());
    let state = payload(seen.last().unwrap());
    assert_eq!(state["source"], "front-door");
    assert!(state["similarity"].as_f64().unwrap() > 0.5 && state["last_seen"].is_string(), "{state}");

    // The broker goes down; what happens meanwhile waits in the outbox.
    drop(broker);
    let bob = app.enroll("Bob", "biden.jpg").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _broker = Broker::start(dir.path(), port);
    let seen = tokio::task::block_in_place(|| {
        sub.until(45, |v| topic_is(v, "visage/person.created") && payload(v)["data"]["person"]["id"] == bob.as_str())
    });
    assert!(seen.iter().any(|v| v["subscribed"] == true), "the subscriber did not come back: {seen:?}");
    app.stop().await;
}
