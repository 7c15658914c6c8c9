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

    /// clap's `value_parser` for a secret flag: every string is a valid secret.
    pub fn parse_arg(s: &str) -> Result<Secret, std::convert::Infallible> {
        Ok(Secret::new(s))
    }
}

/// Secrets are read from module files; they are never written (no `Serialize`). A value of
/// the wrong type is refused without being quoted: serde's own message would print a numeric
/// password ("invalid type: integer `987654321`").
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `deserialize_any`: with `deserialize_string`, serde_json reports a number itself,
        // value included, before the visitor can refuse it.
        d.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl SecretVisitor {
    fn refuse<E: serde::de::Error>(found: &str) -> Result<Secret, E> {
        Err(E::custom(format!(
            "a secret must be a string, found {found} (its value is not shown)"
        )))
    }
}

impl serde::de::Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret::new(v))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }

    // Every kind serde would otherwise quote in its "invalid type" message.
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
        Self::refuse("a boolean")
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
        Self::refuse("a number")
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
        Self::refuse("a number")
    }

    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<Secret, E> {
        Self::refuse("a number")
    }

    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<Secret, E> {
        Self::refuse("a number")
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
        Self::refuse("a number")
    }

    fn visit_char<E: serde::de::Error>(self, _: char) -> Result<Secret, E> {
        Self::refuse("a character")
    }

    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        Self::refuse("bytes")
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
    }

    /// A password written without quotes is refused without being repeated.
    #[test]
    fn a_secret_of_the_wrong_type_is_refused_without_its_value() {
        for (json, found) in [
            ("987654321", "a number"),
            ("-987654321", "a number"),
            ("98765.4321", "a number"),
            ("true", "a boolean"),
        ] {
            let e = serde_json::from_str::<Secret>(json)
                .expect_err(json)
                .to_string();
            assert!(
                e.starts_with(&format!(
                    "a secret must be a string, found {found} (its value is not shown)"
                )),
                "{json}: {e}"
            );
            let digits = json.trim_start_matches('-').replace('.', "");
            assert!(!e.replace('.', "").contains(&digits), "{json}: {e}");
        }
        // Structures carry no value in serde's message; they are refused all the same.
        assert!(serde_json::from_str::<Secret>("[1]").is_err());
        assert!(serde_json::from_str::<Secret>("null").is_err());
    }
}
