//! What an API key may do.
use serde::{Deserialize, Serialize};

/// What a key may do; each scope includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// verify, identify, compare, detect, embed, info.
    Match,
    /// enroll (new persons and new faces), and everything `match` may do.
    Enroll,
    /// manage keys and persons (list, rename, delete), and everything else.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Match, Scope::Enroll, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Match => "match",
            Scope::Enroll => "enroll",
            Scope::Admin => "admin",
        }
    }

    /// Whether a key of this scope may do what `needed` allows.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is none of `match`, `enroll`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key scope {0:?} (match, enroll or admin)")]
pub struct UnknownScope(pub String);

impl std::str::FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s).ok_or_else(|| UnknownScope(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_from_their_names_and_order_by_power() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
            assert_eq!(serde_json::to_string(&scope).unwrap(), format!("\"{scope}\""));
        }
        assert!("Admin".parse::<Scope>().is_err());
        assert!(Scope::Admin.allows(Scope::Match) && Scope::Enroll.allows(Scope::Enroll));
        assert!(!Scope::Match.allows(Scope::Enroll));
    }
}
