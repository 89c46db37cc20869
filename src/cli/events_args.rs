//! `visage serve`'s flags for events: how webhooks are delivered to, and
//! how many identify events wait in memory while the database is down.
use clap::Args;
use visage_service::domain::new_id;
use visage_service::events::{MqttConfig, SenderOptions};
use visage_service::service::ServiceConfig;
use visage_service::service::deliveries::DeliveryConfig;

use super::durations::{Ttl, ttl};

#[derive(Args, Debug, Clone)]
pub struct EventArgs {
    /// Let webhooks point at loopback, link-local and private addresses
    /// (receivers on this machine or an internal network; off by default, so
    /// that a webhook cannot reach what only the server can).
    #[arg(long, env = "VISAGE_WEBHOOKS_ALLOW_PRIVATE")]
    pub webhooks_allow_private: bool,
    /// How long an event is retried before its delivery is marked failed: a
    /// number with s, m, h or d.
    #[arg(long, env = "VISAGE_WEBHOOKS_RETRY_FOR", default_value = "24h", value_parser = ttl)]
    pub webhooks_retry_for: Ttl,
    /// Seconds an attempt may take (connect, send, answer) before it counts as failed.
    #[arg(long, env = "VISAGE_WEBHOOKS_TIMEOUT", default_value_t = 10)]
    pub webhooks_timeout: u64,
    /// Identify events kept in memory at most while the database is down
    /// (written once it is back; what overflows is counted and logged).
    #[arg(long, env = "VISAGE_EVENT_QUEUE", default_value_t = ServiceConfig::default().event_queue)]
    pub event_queue: usize,
    /// Publish every event to this MQTT broker too: mqtt://HOST[:PORT] or
    /// mqtts://HOST[:PORT] (TLS), at QoS 1 on `<prefix>/<event type>`.
    #[arg(long, env = "VISAGE_MQTT_URL")]
    pub mqtt_url: Option<String>,
    #[arg(long, env = "VISAGE_MQTT_USER", requires = "mqtt_url")]
    pub mqtt_user: Option<String>,
    /// (Better from the environment than the command line, which others may read.)
    #[arg(long, env = "VISAGE_MQTT_PASSWORD", requires = "mqtt_user", hide_env_values = true)]
    pub mqtt_password: Option<String>,
    /// The first level of every topic.
    #[arg(long, env = "VISAGE_MQTT_PREFIX", default_value = "visage")]
    pub mqtt_prefix: String,
    /// Home Assistant's discovery prefix: each enrolled person appears as a
    /// device with "Last seen" and "Similarity" sensors; `none` turns it off.
    #[arg(long, env = "VISAGE_MQTT_DISCOVERY_PREFIX", default_value = "homeassistant")]
    pub mqtt_discovery_prefix: String,
    /// A PEM file of the certificate authorities to trust for mqtts:// (default: the system's).
    #[arg(long, env = "VISAGE_MQTT_CA", requires = "mqtt_url")]
    pub mqtt_ca: Option<std::path::PathBuf>,
    /// The MQTT client id (default: visage- and a random suffix, so replicas differ).
    #[arg(long, env = "VISAGE_MQTT_CLIENT_ID")]
    pub mqtt_client_id: Option<String>,
}

impl EventArgs {
    pub fn delivery(&self) -> DeliveryConfig {
        let default = DeliveryConfig::default();
        DeliveryConfig {
            retry_for: self.webhooks_retry_for.0.unwrap_or(default.retry_for),
            sender: SenderOptions {
                timeout: std::time::Duration::from_secs(self.webhooks_timeout.clamp(1, 300)),
                allow_private: self.webhooks_allow_private,
            },
            mqtt: self.mqtt(),
        }
    }

    fn mqtt(&self) -> Option<MqttConfig> {
        let url = self.mqtt_url.clone()?;
        let discovery = self.mqtt_discovery_prefix.trim();
        Some(MqttConfig {
            url,
            user: self.mqtt_user.clone(),
            password: self.mqtt_password.clone(),
            prefix: self.mqtt_prefix.trim_matches('/').to_string(),
            discovery_prefix: (!discovery.is_empty() && discovery != "none")
                .then(|| discovery.trim_matches('/').to_string()),
            ca_file: self.mqtt_ca.clone(),
            client_id: self.mqtt_client_id.clone().unwrap_or_else(|| format!("visage-{}", &new_id()[24..])),
        })
    }
}
