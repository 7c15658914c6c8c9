//! A credential that never prints itself.

use std::fmt;

/// A secret string (TURN credential, REST shared secret). `Debug` and `Display` print
/// `[redacted]`; there is deliberately no `Serialize`, so a secret cannot reach a report.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it (HMAC keys, MESSAGE-INTEGRITY).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Secret {
    /// clap's `value_parser` for a secret flag: every string is a valid secret.
    pub fn parse_arg(s: &str) -> Result<Secret, std::convert::Infallible> {
        Ok(Secret::new(s))
    }
}

/// Secrets are read from module files; they are never written (no `Serialize`).
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn parses_from_flags_and_files() {
        assert_eq!(Secret::parse_arg("a b").unwrap().expose(), "a b");
        let s: Secret = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(s.expose(), "hunter2");
        assert!(serde_json::from_str::<Secret>("7").is_err());
    }
}
