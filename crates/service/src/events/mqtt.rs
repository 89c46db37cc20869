//! Publishing to an MQTT broker: QoS 1, one message at a time, each
//! confirmed by the broker (PUBACK) before the next, over TCP (`mqtt://`)
//! or TLS (`mqtts://`), with a retained `<prefix>/status` of `online`, and a
//! last will that sets it `offline`. A connection that fails is dropped
//! whole (with whatever it still queued) and made again at the next
//! publish: what was not confirmed counts as not delivered, and is sent
//! again (at least once).
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use tokio::sync::{Mutex, mpsc};

/// How long a publish may wait for the broker's confirmation.
const ACK_WAIT: Duration = Duration::from_secs(10);

/// Where and how to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttConfig {
    /// `mqtt://HOST[:PORT]` (1883) or `mqtts://HOST[:PORT]` (8883).
    pub url: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Topics are `<prefix>/<event type>` (default `visage`).
    pub prefix: String,
    /// Home Assistant's discovery prefix (default `homeassistant`; None: no discovery).
    pub discovery_prefix: Option<String>,
    /// A PEM file of the CAs to trust for `mqtts://` (default: the system's).
    pub ca_file: Option<PathBuf>,
    pub client_id: String,
}

/// Why an MQTT setting is refused.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("--mqtt-url {0:?}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")]
    Url(String),
    #[error("--mqtt-ca {0}: {1}")]
    Ca(PathBuf, String),
    #[error("--mqtt-prefix {0:?}: topic levels without + # or empty levels")]
    Prefix(String),
}

/// The broker's address from `url`.
fn host_port(url: &str) -> Result<(String, u16, bool), MqttError> {
    let bad = || MqttError::Url(url.to_string());
    let parsed = url::Url::parse(url).map_err(|_| bad())?;
    let tls = match parsed.scheme() {
        "mqtt" => false,
        "mqtts" => true,
        _ => return Err(bad()),
    };
    let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(bad)?.to_string();
    let port = parsed.port().unwrap_or(if tls { 8883 } else { 1883 });
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad()); // credentials come from --mqtt-user / --mqtt-password
    }
    Ok((host, port, tls))
}

/// A topic prefix: levels of printable characters, no wildcards.
fn check_prefix(prefix: &str) -> Result<(), MqttError> {
    let ok = !prefix.is_empty()
        && prefix.split('/').all(|l| !l.is_empty() && !l.contains(['+', '#']) && !l.chars().any(char::is_control));
    if ok { Ok(()) } else { Err(MqttError::Prefix(prefix.to_string())) }
}

impl MqttConfig {
    /// Checks the settings (the URL, the prefixes, the CA file).
    pub fn check(&self) -> Result<(), MqttError> {
        host_port(&self.url)?;
        check_prefix(&self.prefix)?;
        if let Some(p) = &self.discovery_prefix {
            check_prefix(p)?;
        }
        if let Some(ca) = &self.ca_file {
            std::fs::read(ca).map_err(|e| MqttError::Ca(ca.clone(), e.to_string()))?;
        }
        Ok(())
    }

    /// The topic of the service's availability (`online` / `offline`, retained).
    pub fn status_topic(&self) -> String {
        format!("{}/status", self.prefix)
    }

    fn options(&self) -> Result<MqttOptions, MqttError> {
        let (host, port, tls) = host_port(&self.url)?;
        let mut o = MqttOptions::new(&self.client_id, host, port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_clean_session(true);
        o.set_last_will(LastWill::new(self.status_topic(), "offline", QoS::AtLeastOnce, true));
        if let Some(user) = &self.user {
            o.set_credentials(user, self.password.clone().unwrap_or_default());
        }
        if tls {
            o.set_transport(Transport::Tls(TlsConfiguration::Rustls(Arc::new(self.tls()?))));
        }
        Ok(o)
    }

    fn tls(&self) -> Result<rustls::ClientConfig, MqttError> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| MqttError::Ca(path.clone(), e.to_string()))?;
                for cert in rustls_pemfile_certs(&pem) {
                    roots.add(cert).map_err(|e| MqttError::Ca(path.clone(), e.to_string()))?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| MqttError::Ca(PathBuf::new(), e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(config)
    }
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem).filter_map(Result::ok).collect()
}

/// One connection: the client, and what its event loop reports.
struct Connection {
    client: AsyncClient,
    /// Each PUBACK (Ok) or connection failure (Err), in order.
    acks: mpsc::UnboundedReceiver<Result<(), String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Publishes one message at a time, each confirmed.
pub struct Publisher {
    config: MqttConfig,
    connection: Mutex<Option<Connection>>,
}

impl Publisher {
    pub fn new(config: MqttConfig) -> Result<Self, MqttError> {
        config.check()?;
        Ok(Publisher { config, connection: Mutex::new(None) })
    }

    pub fn config(&self) -> &MqttConfig {
        &self.config
    }

    /// Publishes at QoS 1 and waits for the broker's PUBACK; a failure
    /// drops the connection (the next publish makes a new one).
    pub async fn publish(&self, topic: &str, payload: Vec<u8>, retain: bool) -> Result<(), String> {
        let mut guard = self.connection.lock().await;
        if guard.is_none() {
            let fresh = self.connect().map_err(|e| e.to_string())?;
            *guard = Some(fresh);
            // The first message of a connection says the service is online.
            if let Err(e) = send(guard.as_mut(), &self.config.status_topic(), b"online".to_vec(), true).await {
                *guard = None;
                return Err(e);
            }
        }
        let sent = send(guard.as_mut(), topic, payload, retain).await;
        if sent.is_err() {
            *guard = None;
        }
        sent
    }

    fn connect(&self) -> Result<Connection, MqttError> {
        let (client, eventloop) = AsyncClient::new(self.config.options()?, 16);
        let (tx, acks) = mpsc::unbounded_channel();
        let task = tokio::spawn(drive(eventloop, tx));
        Ok(Connection { client, acks, task })
    }
}

async fn send(c: Option<&mut Connection>, topic: &str, payload: Vec<u8>, retain: bool) -> Result<(), String> {
    let Some(c) = c else { return Err("not connected".into()) };
    c.client.publish(topic, QoS::AtLeastOnce, retain, payload).await.map_err(|e| e.to_string())?;
    match tokio::time::timeout(ACK_WAIT, c.acks.recv()).await {
        Ok(Some(result)) => result,
        Ok(None) => Err("the MQTT connection ended".into()),
        Err(_) => Err(format!("the broker did not confirm within {} s", ACK_WAIT.as_secs())),
    }
}

/// Runs a connection's event loop, reporting PUBACKs and the first failure.
async fn drive(mut eventloop: EventLoop, tx: mpsc::UnboundedSender<Result<(), String>>) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                if tx.send(Ok(())).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let _ = tx.send(Err(format!("MQTT: {e}")));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> MqttConfig {
        MqttConfig {
            url: url.into(),
            user: None,
            password: None,
            prefix: "visage".into(),
            discovery_prefix: Some("homeassistant".into()),
            ca_file: None,
            client_id: "visage-test".into(),
        }
    }

    #[test]
    fn urls_and_prefixes_are_checked() {
        assert_eq!(host_port("mqtt://broker").unwrap(), ("broker".into(), 1883, false));
        assert_eq!(host_port("mqtts://broker:9000").unwrap(), ("broker".into(), 9000, true));
        for bad in ["http://broker", "mqtt://", "broker:1883", "mqtt://u:p@broker"] {
            assert!(host_port(bad).is_err(), "{bad}");
        }
        assert!(config("mqtt://b").check().is_ok());
        for prefix in ["", "a/+", "a/#", "a//b", "/a"] {
            let c = MqttConfig { prefix: prefix.into(), ..config("mqtt://b") };
            assert!(c.check().is_err(), "{prefix:?}");
        }
    }
}
