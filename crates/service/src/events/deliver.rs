//! One delivery attempt over HTTP: signed anew (its own timestamp), posted
//! with a deadline, redirects never followed, at most a small part of the
//! answer read; and, unless allowed, never to a loopback, link-local or
//! private address: checked on the URL and again on the addresses a name
//! resolves to when connecting, so a name cannot be pointed at them after
//! the webhook was made.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::signing::Secret;
use super::target::{check_url, is_public};

/// Bytes of an answer read at most (the rest is never read).
pub const MOST_ANSWER_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderOptions {
    /// The whole attempt's deadline: connecting, sending, the answer.
    pub timeout: Duration,
    /// Whether loopback, link-local and private addresses may be targets.
    pub allow_private: bool,
}

impl Default for SenderOptions {
    fn default() -> Self {
        SenderOptions { timeout: Duration::from_secs(10), allow_private: false }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// Why it was not delivered (None: delivered, the receiver answered 2xx).
    pub error: Option<String>,
    pub millis: u64,
}

impl Attempt {
    pub fn delivered(&self) -> bool {
        self.error.is_none()
    }
}

pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    pub fn new(o: &SenderOptions) -> Result<Self, reqwest::Error> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(o.timeout)
            .connect_timeout(o.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("visage-webhooks/", env!("CARGO_PKG_VERSION")));
        if !o.allow_private {
            b = b.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(Sender { client: b.build()?, allow_private: o.allow_private })
    }

    /// Posts `body` (an event's JSON) to `url` as message `id`, signed with
    /// `secret` at `timestamp` (seconds since the epoch).
    pub async fn send(&self, url: &str, secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> Attempt {
        let start = Instant::now();
        let result = self.post(url, secret, id, timestamp, body).await;
        let millis = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok((status, _)) if (200..300).contains(&status) => Attempt { status: Some(status), error: None, millis },
            Ok((status, excerpt)) => {
                Attempt { status: Some(status), error: Some(format!("answered {status}{excerpt}")), millis }
            }
            Err(e) => Attempt { status: None, error: Some(e), millis },
        }
    }

    /// The status and, for an answer other than 2xx, the start of its body.
    async fn post(
        &self,
        url: &str,
        secret: &Secret,
        id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> Result<(u16, String), String> {
        check_url(url, self.allow_private).map_err(|e| e.to_string())?;
        let mut answer = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", secret.sign(id, timestamp, body))
            .body(body.to_vec())
            .send()
            .await
            .map_err(describe)?;
        // A redirect is an answer like any other: never followed.
        let status = answer.status().as_u16();
        let mut read = Vec::new();
        while read.len() < MOST_ANSWER_BYTES {
            match answer.chunk().await {
                Ok(Some(c)) => read.extend_from_slice(&c),
                _ => break,
            }
        }
        if (200..300).contains(&status) {
            return Ok((status, String::new()));
        }
        let text = String::from_utf8_lossy(&read[..read.len().min(200)]);
        let excerpt: String = text.trim().chars().filter(|c| !c.is_control()).collect();
        Ok((status, if excerpt.is_empty() { excerpt } else { format!(": {excerpt}") }))
    }
}

/// Why an attempt failed, without the URL (it may carry a token).
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut why = kind.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        why.push_str(": ");
        why.push_str(&s.to_string());
        source = s.source();
    }
    why
}

/// Resolves names as the system does, keeping public addresses only.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                let why = format!("{host} resolves to no public address (allowed with --webhooks-allow-private)");
                return Err(why.into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use reqwest::dns::{Name, Resolve as _};

    use super::*;

    #[tokio::test]
    async fn a_name_that_resolves_only_to_loopback_is_refused_when_connecting() {
        // "localhost" as a name (the URL check refuses it by name before it
        // gets here; any other name pointed at 127.0.0.1 would not be).
        let e = PublicOnly.resolve(Name::from_str("localhost").unwrap()).await.err().unwrap();
        assert!(e.to_string().contains("no public address"), "{e}");
    }
}
