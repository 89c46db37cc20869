//! Abuse limits on the command line: request rates per key by scope (and
//! without a key), failed authentications per client address, and the
//! proxies whose `X-Forwarded-For` is believed.
use anyhow::{Result, bail};
use clap::Args;

use visage_service::domain::Scope;
use visage_service::http::limits::{Cidr, LimitsConfig, Rate};

#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Requests per API key at its scope's rate, e.g. `match=50/s`,
    /// `enroll=5/s:10` (COUNT/UNIT[:BURST], units s, m, h); `anonymous=RATE`
    /// limits requests without a key per client address (while the service
    /// runs open). Repeat, or separate with commas. None: no request limit.
    #[arg(long = "rate-limit", env = "VISAGE_RATE_LIMIT", value_delimiter = ',', value_name = "SCOPE=RATE")]
    pub rate_limits: Vec<String>,
    /// Failed authentications per client address (COUNT/UNIT[:BURST]); past
    /// them the address may present no key until one comes back (429). `off`
    /// turns it off.
    #[arg(long, env = "VISAGE_AUTH_FAILURES", default_value = "10/m:20")]
    pub auth_failures: String,
    /// A proxy (address or network, e.g. 10.0.0.0/8) whose `X-Forwarded-For`
    /// names the client; repeat, or separate with commas. Without one, the
    /// client is the connection's peer.
    #[arg(long = "trusted-proxy", env = "VISAGE_TRUSTED_PROXIES", value_delimiter = ',', value_name = "CIDR")]
    pub trusted_proxies: Vec<String>,
}

impl LimitArgs {
    pub fn config(&self) -> Result<LimitsConfig> {
        let mut config = LimitsConfig::default();
        for item in &self.rate_limits {
            let Some((who, rate)) = item.split_once('=') else {
                bail!("--rate-limit {item:?}: expected SCOPE=RATE, e.g. match=50/s");
            };
            let rate: Rate = rate.parse().map_err(|e| anyhow::anyhow!("--rate-limit: {e}"))?;
            let scope = match who.trim() {
                "anonymous" => {
                    config.anonymous = Some(rate);
                    continue;
                }
                "match" => Scope::Match,
                "enroll" => Scope::Enroll,
                "admin" => Scope::Admin,
                other => bail!("--rate-limit {other:?}: expected match, enroll, admin or anonymous"),
            };
            config.per_scope.retain(|(s, _)| *s != scope);
            config.per_scope.push((scope, rate));
        }
        config.auth_failures = match self.auth_failures.trim() {
            "off" => None,
            rate => Some(rate.parse().map_err(|e| anyhow::anyhow!("--auth-failures: {e}"))?),
        };
        for proxy in &self.trusted_proxies {
            let cidr: Cidr = proxy.parse().map_err(|e| anyhow::anyhow!("--trusted-proxy: {e}"))?;
            config.trusted_proxies.push(cidr);
        }
        Ok(config)
    }
}
