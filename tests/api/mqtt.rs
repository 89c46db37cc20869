//! Events over MQTT to a real broker (mosquitto, started here on a free
//! port), read by a `paho-mqtt` subscriber: each event on `visage/<type>`
//! in order, Home Assistant's discovery of each enrolled person and its
//! state on identification; the broker down for a while: the events wait in
//! the outbox and arrive once it is back. Over TLS with a password: published;
//! with a wrong password: refused, and retried.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use visage_service::domain::{Delivery, Outcome};
use visage_service::events::MqttConfig;
use visage_service::store::Store;

use crate::helpers::{config, fresh_db, photo, root, spawn_with, temp_dir};

/// mosquitto on 127.0.0.1:port, anonymous; its sessions and queued
/// messages kept in `dir` across a restart (as a broker in service keeps them).
struct Broker(Child);

impl Broker {
    fn start(dir: &Path, port: u16) -> Broker {
        let persistence = format!("persistence true\npersistence_location {}/\n", dir.display());
        Broker::start_with(dir, port, &format!("allow_anonymous true\n{persistence}"))
    }

    /// With `settings` for its listener.
    fn start_with(dir: &Path, port: u16, settings: &str) -> Broker {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\n{settings}")).unwrap();
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

impl Broker {
    /// Stops it as a service manager would (SIGTERM: it saves its sessions).
    fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
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
    let db = fresh_db(&dir);
    let mut c = config(&db);
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
    broker.stop();
    let bob = app.enroll("Bob", "biden.jpg").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _broker = Broker::start(dir.path(), port);
    // Bob's sensors are published (retained) once his person.created is
    // confirmed: the subscriber sees them whenever it is back (the event
    // itself, not retained, reaches it only if it was back in time).
    let bob_config = format!("homeassistant/sensor/visage/{bob}_last_seen/config");
    tokio::task::block_in_place(|| sub.until(45, |v| topic_is(v, &bob_config)));
    // The publisher's record: Bob's event tried while the broker was down, then delivered.
    let store = Store::open(&db).await.unwrap();
    let events = store.events_after(Default::default(), 100).await.unwrap();
    let created = events.iter().find(|e| e.kind == "person.created" && e.data["person"]["id"] == bob.as_str()).unwrap();
    let tries: Vec<Outcome> =
        mqtt_attempts(&store).await.into_iter().filter(|d| d.event_seq == created.pos.seq).map(|d| d.outcome).collect();
    assert_eq!(tries.first(), Some(&Outcome::Delivered), "{tries:?}");
    assert!(tries.len() >= 2 && tries[1..].iter().all(|o| *o == Outcome::Retrying), "{tries:?}");
    store.close().await;
    app.stop().await;
}

/// A certificate authority and a certificate for `localhost` signed by it,
/// made with openssl in `dir`: (CA, certificate, key).
fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success(), "openssl {args:?}");
    };
    std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n").unwrap();
    run(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2"]
        .into_iter()
        .chain(["-subj", "/CN=visage test CA", "-addext", "basicConstraints=critical,CA:TRUE"])
        .chain(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .collect::<Vec<_>>());
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out"]
        .into_iter()
        .chain(["server.crt", "-days", "2", "-extfile", "server.ext"])
        .collect::<Vec<_>>());
    (dir.join("ca.crt"), dir.join("server.crt"), dir.join("server.key"))
}

/// The MQTT publisher's attempts, as the deliverer recorded them.
async fn mqtt_attempts(store: &Store) -> Vec<Delivery> {
    let hooks = store.list_webhooks().await.unwrap();
    let Some(sink) = hooks.iter().find(|h| h.url.starts_with("mqtt")) else { return Vec::new() };
    store.deliveries(&sink.id, 100, None).await.unwrap().into_iter().map(|(_, d)| d).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtts_with_a_password_is_published_to_and_a_wrong_password_is_refused() {
    let dir = temp_dir();
    let (ca, cert, key) = tls_files(dir.path());
    let passwd = dir.path().join("passwd");
    let status = Command::new("mosquitto_passwd").arg("-b").arg("-c").arg(&passwd).args(["visage", "s3cret"]).status();
    assert!(status.expect("mosquitto_passwd").success());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let tls = format!(
        "cafile {}\ncertfile {}\nkeyfile {}\nallow_anonymous false\npassword_file {}\nuser root\n",
        ca.display(),
        cert.display(),
        key.display(),
        passwd.display()
    );
    let _broker = Broker::start_with(dir.path(), port, &tls);
    for (password, delivered) in [("wrong", false), ("s3cret", true)] {
        let db = dir.path().join(format!("{password}.db"));
        let mut c = config(&db);
        c.service.webhooks.mqtt = Some(MqttConfig {
            url: format!("mqtts://localhost:{port}"),
            user: Some("visage".into()),
            password: Some(password.into()),
            prefix: "visage".into(),
            discovery_prefix: None,
            ca_file: Some(ca.clone()),
            client_id: format!("visage-{password}"),
        });
        let mut app = spawn_with(c).await;
        app.enroll("Alice", "obama.jpg").await;
        let store = Store::open(&db).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let attempts = loop {
            let attempts = mqtt_attempts(&store).await;
            if attempts.len() >= 2 || (delivered && attempts.iter().any(|a| a.outcome == Outcome::Delivered)) {
                break attempts;
            }
            assert!(Instant::now() < deadline, "{password}: attempts {attempts:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if delivered {
            assert!(attempts.iter().all(|a| a.outcome == Outcome::Delivered), "{attempts:?}");
        } else {
            assert!(attempts.iter().all(|a| a.outcome == Outcome::Retrying), "{attempts:?}");
            assert!(attempts[0].error.as_deref().is_some_and(|e| e.contains("MQTT")), "{attempts:?}");
        }
        store.close().await;
        app.stop().await;
    }
}
