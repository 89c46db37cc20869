use super::*;

fn headers(xff: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in xff {
        h.append("x-forwarded-for", v.parse().unwrap());
    }
    h
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn rates_and_networks_parse_or_say_what_they_expect() {
    let r: Rate = "20/s".parse().unwrap();
    assert_eq!((r.count.get(), r.per, r.burst.get()), (20, Duration::from_secs(1), 20));
    let r: Rate = "600/m:50".parse().unwrap();
    assert_eq!((r.count.get(), r.per, r.burst.get()), (600, Duration::from_secs(60), 50));
    for bad in ["", "20", "0/s", "20/d", "20/s:0", "-1/s", "x/s", "20/s:x"] {
        assert!(bad.parse::<Rate>().unwrap_err().contains("COUNT/UNIT"), "{bad:?}");
    }
    let c: Cidr = "10.0.0.0/8".parse().unwrap();
    assert!(c.contains(ip("10.2.3.4")) && !c.contains(ip("11.0.0.1")) && !c.contains(ip("fd00::1")));
    assert!(c.contains(ip("::ffff:10.9.9.9")), "an IPv4-mapped address is the IPv4 one");
    let one: Cidr = "192.168.1.7".parse().unwrap();
    assert!(one.contains(ip("192.168.1.7")) && !one.contains(ip("192.168.1.8")));
    let v6: Cidr = "fd00::/8".parse().unwrap();
    assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
    assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
    for bad in ["10.0.0.0/33", "fd00::/129", "example.com", "10.0.0/8", ""] {
        assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
    }
}

#[test]
fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
    let limits =
        Limits::new(&LimitsConfig { trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()], ..LimitsConfig::default() });
    // An untrusted peer's X-Forwarded-For is ignored: a client cannot pick its own address.
    assert_eq!(limits.client(Some(ip("203.0.113.5")), &headers(&["198.51.100.1"])), ip("203.0.113.5"));
    // Behind the proxy: the nearest hop that is not a proxy (what the client wrote before it is ignored).
    let h = headers(&["1.2.3.4, 198.51.100.1, 10.0.0.9"]);
    assert_eq!(limits.client(Some(ip("10.0.0.2")), &h), ip("198.51.100.1"));
    assert_eq!(limits.client(Some(ip("10.0.0.2")), &headers(&["1.2.3.4", "198.51.100.2"])), ip("198.51.100.2"));
    assert_eq!(limits.client(Some(ip("10.0.0.2")), &headers(&["garbage"])), ip("10.0.0.2"));
    assert_eq!(limits.client(None, &HeaderMap::new()), ip("0.0.0.0"));
}

#[test]
fn failed_authentications_past_the_burst_bar_the_address_for_any_key() {
    let limits =
        Limits::new(&LimitsConfig { auth_failures: Some("1/h:3".parse().unwrap()), ..LimitsConfig::default() });
    let (a, b) = (ip("198.51.100.1"), ip("198.51.100.2"));
    for _ in 0..3 {
        assert!(limits.may_present_key(a).is_ok());
        assert!(limits.failed(a).is_ok());
    }
    let limited = limits.failed(a).unwrap_err();
    assert_eq!(limited.what, "auth_failures");
    assert!(limited.retry_after > Duration::from_secs(1000), "{limited:?}");
    assert!(limits.may_present_key(a).is_err(), "barred: even a right key waits");
    assert!(limits.may_present_key(b).is_ok(), "another address is not");
    limits.forget_idle();
    assert!(limits.may_present_key(a).is_err(), "still barred after forgetting idle state");
}

#[test]
fn each_key_has_its_own_bucket_at_its_scope_rate() {
    let limits = Limits::new(&LimitsConfig {
        per_scope: vec![(Scope::Match, "2/h".parse().unwrap())],
        anonymous: Some("1/h".parse().unwrap()),
        ..LimitsConfig::default()
    });
    assert!(limits.admit_key("k1", Scope::Match).is_ok());
    assert!(limits.admit_key("k1", Scope::Match).is_ok());
    assert_eq!(limits.admit_key("k1", Scope::Match).unwrap_err().what, "key");
    assert!(limits.admit_key("k2", Scope::Match).is_ok(), "another key has its own bucket");
    for _ in 0..10 {
        assert!(limits.admit_key("k3", Scope::Admin).is_ok(), "no rate for admin: no limit");
    }
    assert!(limits.admit_anonymous(ip("127.0.0.1")).is_ok());
    assert_eq!(limits.admit_anonymous(ip("127.0.0.1")).unwrap_err().what, "anonymous");
}
