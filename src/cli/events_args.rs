//! `visage serve`'s flags for events: how webhooks are delivered to, and
//! how many identify events wait in memory while the database is down.
use clap::Args;
use visage_service::events::SenderOptions;
use visage_service::service::ServiceConfig;
use visage_service::service::deliveries::DeliveryConfig;

use super::args::{Ttl, ttl};

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
        }
    }
}
