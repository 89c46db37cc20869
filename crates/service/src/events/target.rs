//! Where a webhook may point: `http` or `https` only, and by default never
//! at this machine or a private network (a webhook must not become a way to
//! reach what only the server can). Checked when a webhook is made and
//! again, on the addresses the name resolves to, at every delivery.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// URLs a webhook may have at most (characters).
pub const MAX_URL_CHARS: usize = 2000;

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("not a URL: {0}")]
    Syntax(String),
    #[error("a webhook URL is http or https")]
    Scheme,
    #[error("a webhook URL has at most {MAX_URL_CHARS} characters")]
    Length,
    #[error("a webhook URL names no host")]
    NoHost,
    #[error("a webhook URL carries no user or password (sign with the secret instead)")]
    Credentials,
    #[error("{0} is a loopback, link-local or private address (allowed only with --webhooks-allow-private)")]
    Private(IpAddr),
}

/// Checks a webhook URL as given; a host given by address is checked too
/// (names are checked when resolved, at every delivery).
pub fn check_url(text: &str, allow_private: bool) -> Result<url::Url, TargetError> {
    if text.chars().count() > MAX_URL_CHARS {
        return Err(TargetError::Length);
    }
    let url = url::Url::parse(text).map_err(|e| TargetError::Syntax(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    let ip = match url.host() {
        None => return Err(TargetError::NoHost),
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Some(url::Host::Domain(_)) => None,
        Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
    };
    match ip {
        Some(ip) if !allow_private && !is_public(ip) => Err(TargetError::Private(ip)),
        _ => Ok(url),
    }
}

/// Whether a delivery may connect to `ip` without `--webhooks-allow-private`.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => public_v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(a),
        },
    }
}

fn public_v4(a: Ipv4Addr) -> bool {
    let [x, y, ..] = a.octets();
    !(a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || x == 0
        // 100.64.0.0/10: carrier-grade NAT, private in practice.
        || (x == 100 && (64..128).contains(&y))
        // 198.18.0.0/15: benchmarking networks.
        || (x == 198 && (18..20).contains(&y))
        || x >= 240)
}

fn public_v6(a: Ipv6Addr) -> bool {
    !(a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        || a.is_unique_local()
        || a.is_unicast_link_local()
        // 64:ff9b:1::/48 local NAT64, 2001:db8::/32 documentation.
        || matches!(a.segments(), [0x64, 0xff9b, 1, ..] | [0x2001, 0xdb8, ..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_to_public_hosts_unless_allowed() {
        assert!(check_url("https://hooks.example.com/visage?x=1", false).is_ok());
        assert!(check_url("http://203.0.113.9:8080/", false).is_err(), "documentation range");
        assert!(check_url("http://8.8.8.8/", false).is_ok());
        assert_eq!(check_url("ftp://example.com/", false), Err(TargetError::Scheme));
        assert_eq!(check_url("file:///etc/passwd", false), Err(TargetError::Scheme));
        assert_eq!(check_url("https://u:p@example.com/", false), Err(TargetError::Credentials));
        assert!(matches!(check_url("not a url", false), Err(TargetError::Syntax(_))));
        assert_eq!(
            check_url(&format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS)), false),
            Err(TargetError::Length)
        );
        for private in [
            "http://127.0.0.1:9000/",
            "http://localhost/",
            "http://10.1.2.3/",
            "http://192.168.1.10/",
            "http://172.16.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
        ] {
            assert!(matches!(check_url(private, false), Err(TargetError::Private(_))), "{private}");
            assert!(check_url(private, true).is_ok(), "{private} with private addresses allowed");
        }
    }
}
