//! Durations on the command line: `30d`, `12h`, `90m`, `3600s`, or `0`.

/// A duration given on the command line (None: `0`, no limit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ttl(pub Option<std::time::Duration>);

/// `30d`, `12h`, `90m`, `3600s` (or `0`: no limit).
pub fn ttl(s: &str) -> Result<Ttl, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Ttl(None));
    }
    let (number, unit) = s.split_at(s.len().saturating_sub(1));
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: a number followed by s, m, h or d (30d, 12h), or 0")),
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => n
            .checked_mul(seconds)
            .filter(|t| *t <= 100 * 365 * 86_400)
            .map(|t| Ttl(Some(std::time::Duration::from_secs(t))))
            .ok_or_else(|| format!("{s:?} is more than 100 years")),
        _ => Err(format!("{s:?}: a whole number above 0 followed by s, m, h or d, or 0")),
    }
}
