//! Telling others what happened: how an event is published to MQTT (with
//! Home Assistant's discovery), how a webhook
//! delivery is signed (Standard Webhooks) and sent, when a failed one is
//! tried again, and where a webhook may point.
//! Knows nothing of HTTP routes or the store; the service decides what is
//! an event and when it goes out.
pub mod backoff;
pub mod deliver;
pub mod home_assistant;
pub mod mqtt;
pub mod signing;
pub mod target;

pub use backoff::next_try;
pub use deliver::{Attempt, Sender, SenderOptions};
pub use mqtt::{MqttConfig, MqttError, Publisher};
pub use signing::{Secret, SecretError};
pub use target::{TargetError, check_url, is_public};
