//! The `--expect` grammar (see the [module docs](super)): text → typed [`Assertion`].
//!
//! Errors name the part that is wrong and list what would be valid; the CLI maps them to exit
//! code 2.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::candidate::CandidateType;
use crate::ice_url::Protocol;
use crate::model::nat::{ClassicName, FilteringBehavior, MappingBehavior};

/// Which report an assertion is evaluated on: the subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `iceprobe gather`.
    Gather,
    /// `iceprobe check`.
    Check,
    /// `iceprobe nat`.
    Nat,
}

impl Scope {
    /// The subcommand's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Gather => "gather",
            Scope::Check => "check",
            Scope::Nat => "nat",
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Cmp {
    /// Operators, longest first (the order the parser tries them in).
    const ALL: [(&'static str, Cmp); 6] = [
        ("!=", Cmp::Ne),
        ("<=", Cmp::Le),
        (">=", Cmp::Ge),
        ("=", Cmp::Eq),
        ("<", Cmp::Lt),
        (">", Cmp::Gt),
    ];

    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }

    /// Whether `observed OP wanted` holds for a type without an order: only `=` and `!=` can
    /// hold (the parser allows no other operator on words).
    pub fn holds_eq<T: PartialEq>(self, observed: &T, wanted: &T) -> bool {
        match self {
            Cmp::Eq => observed == wanted,
            Cmp::Ne => observed != wanted,
            _ => false,
        }
    }

    /// Whether `observed OP wanted` holds.
    pub fn holds<T: PartialOrd>(self, observed: &T, wanted: &T) -> bool {
        match self {
            Cmp::Eq => observed == wanted,
            Cmp::Ne => observed != wanted,
            Cmp::Lt => observed < wanted,
            Cmp::Le => observed <= wanted,
            Cmp::Gt => observed > wanted,
            Cmp::Ge => observed >= wanted,
        }
    }
}

/// An operator and the value to compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compare<T> {
    /// The operator.
    pub op: Cmp,
    /// The value on its right.
    pub value: T,
}

impl<T: PartialOrd> Compare<T> {
    /// Whether `observed` satisfies the comparison.
    pub fn holds(&self, observed: &T) -> bool {
        self.op.holds(observed, &self.value)
    }
}

/// A `check` stage that `STAGE:ok` asserts on. The TLS handshake is covered by `tls:ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKey {
    /// DNS resolution (rows whose URL names a host).
    Dns,
    /// TCP connect (TCP and TLS rows).
    Connect,
    /// STUN Binding (every row).
    Binding,
    /// Unauthenticated Allocate answered 401 (TURN rows).
    Challenge,
    /// Authenticated Allocate (TURN rows).
    Allocate,
    /// CreatePermission (TURN rows).
    Permission,
    /// ChannelBind (TURN rows).
    Channel,
    /// Data echoed through the relay, by Send indication and by ChannelData (TURN rows).
    Echo,
    /// Refresh LIFETIME 0 (TURN rows).
    Release,
}

impl StageKey {
    /// Every stage key, in protocol order.
    pub const ALL: [StageKey; 9] = [
        StageKey::Dns,
        StageKey::Connect,
        StageKey::Binding,
        StageKey::Challenge,
        StageKey::Allocate,
        StageKey::Permission,
        StageKey::Channel,
        StageKey::Echo,
        StageKey::Release,
    ];

    /// The key as written.
    pub fn as_str(self) -> &'static str {
        match self {
            StageKey::Dns => "dns",
            StageKey::Connect => "connect",
            StageKey::Binding => "binding",
            StageKey::Challenge => "challenge",
            StageKey::Allocate => "allocate",
            StageKey::Permission => "permission",
            StageKey::Channel => "channel",
            StageKey::Echo => "echo",
            StageKey::Release => "release",
        }
    }
}

/// Which round trips `rtt` looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RttStage {
    /// Binding and authenticated Allocate (`rtt`).
    Any,
    /// The STUN Binding transaction (`rtt:binding`).
    Binding,
    /// The authenticated Allocate transaction (`rtt:allocate`).
    Allocate,
}

/// One typed assertion. `Display` gives the canonical expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assertion {
    /// `host`, `srflx`, `prflx`, `relay[:TRANSPORT]`, optionally counted (`relay>=2`); bare,
    /// the count is `>=1`.
    Candidates {
        /// The candidate type.
        kind: CandidateType,
        /// For relays: how the TURN server was reached.
        via: Option<Protocol>,
        /// The count comparison.
        count: Compare<u64>,
    },
    /// `udp:ok`, `tcp:ok`, `tls:ok`: everything over that transport passed.
    TransportOk(Protocol),
    /// `STAGE:ok` (check).
    StageOk(StageKey),
    /// `tls:cert-valid-days OP N` (check): the least days left of the leaf certificates.
    CertValidDays(Compare<i64>),
    /// `rtt[:binding|allocate] OP DURATION` (check): the worst round trip.
    Rtt {
        /// Which transactions.
        stage: RttStage,
        /// The comparison.
        limit: Compare<Duration>,
    },
    /// `nat:mapping=…` (RFC 4787 §4.1).
    NatMapping(Compare<MappingBehavior>),
    /// `nat:filtering=…` (RFC 4787 §5).
    NatFiltering(Compare<FilteringBehavior>),
    /// `nat:type=…` (the classic RFC 3489 name).
    NatType(Compare<ClassicName>),
    /// `nat:hairpin=yes|no` (RFC 4787 §6).
    NatHairpin(Compare<bool>),
}

/// One key of the grammar, for error messages and documentation.
#[derive(Debug, Clone, Copy)]
pub struct KeyInfo {
    /// How it is written.
    pub syntax: &'static str,
    /// Where it applies.
    pub scopes: &'static [Scope],
}

const G: Scope = Scope::Gather;
const C: Scope = Scope::Check;
const N: Scope = Scope::Nat;

/// Every key, with where it applies.
pub const KEYS: &[KeyInfo] = &[
    KeyInfo {
        syntax: "host[OP N]",
        scopes: &[G],
    },
    KeyInfo {
        syntax: "srflx[OP N]",
        scopes: &[G, C],
    },
    KeyInfo {
        syntax: "relay[:udp|tcp|tls|dtls][OP N]",
        scopes: &[G, C],
    },
    KeyInfo {
        syntax: "udp:ok",
        scopes: &[G, C],
    },
    KeyInfo {
        syntax: "tcp:ok",
        scopes: &[G, C],
    },
    KeyInfo {
        syntax: "tls:ok",
        scopes: &[G, C],
    },
    KeyInfo {
        syntax: "dtls:ok",
        scopes: &[C],
    },
    KeyInfo {
        syntax: "dns|connect|binding|challenge|allocate|permission|channel|echo|release:ok",
        scopes: &[C],
    },
    KeyInfo {
        syntax: "tls:cert-valid-days OP N",
        scopes: &[C],
    },
    KeyInfo {
        syntax: "rtt[:binding|allocate] OP DURATION",
        scopes: &[C],
    },
    KeyInfo {
        syntax: "nat:mapping=|!=WORD",
        scopes: &[N],
    },
    KeyInfo {
        syntax: "nat:filtering=|!=WORD",
        scopes: &[N],
    },
    KeyInfo {
        syntax: "nat:type=|!=WORD",
        scopes: &[N],
    },
    KeyInfo {
        syntax: "nat:hairpin=|!=yes|no",
        scopes: &[N],
    },
];

/// The keys valid for a subcommand, comma-separated.
pub fn valid_keys(scope: Scope) -> String {
    KEYS.iter()
        .filter(|k| k.scopes.contains(&scope))
        .map(|k| k.syntax)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A bad `--expect` expression. The message quotes the expression, names the bad part and
/// says what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpectError {
    /// Nothing given.
    #[error("--expect: empty expression; valid keys for {scope}: {valid}")]
    Empty {
        /// The subcommand.
        scope: &'static str,
        /// Valid keys.
        valid: String,
    },
    /// The key (before `:`) is not one of the grammar's.
    #[error("--expect {expr:?}: unknown key {key:?}; valid keys for {scope}: {valid}")]
    UnknownKey {
        /// The whole expression.
        expr: String,
        /// The key.
        key: String,
        /// The subcommand.
        scope: &'static str,
        /// Valid keys.
        valid: String,
    },
    /// The qualifier (after `:`) does not go with the key.
    #[error(
        "--expect {expr:?}: {key:?} does not take the qualifier {qualifier:?}; valid: {valid}"
    )]
    BadQualifier {
        /// The whole expression.
        expr: String,
        /// The key.
        key: String,
        /// The qualifier (empty when one is required and missing).
        qualifier: String,
        /// What would be valid.
        valid: String,
    },
    /// A valid key that the subcommand cannot measure.
    #[error("--expect {expr:?}: {key:?} cannot be evaluated on {scope} ({hint}); valid keys for {scope}: {valid}")]
    WrongCommand {
        /// The whole expression.
        expr: String,
        /// The key and qualifier.
        key: String,
        /// The subcommand.
        scope: &'static str,
        /// Where it does apply.
        hint: String,
        /// Valid keys.
        valid: String,
    },
    /// The operator is not allowed here (or not an operator at all).
    #[error("--expect {expr:?}: operator {op:?} is not allowed after {key:?}; use {allowed}")]
    BadOperator {
        /// The whole expression.
        expr: String,
        /// The key and qualifier.
        key: String,
        /// The operator found.
        op: String,
        /// What is allowed.
        allowed: String,
    },
    /// The value does not parse as what the key compares.
    #[error("--expect {expr:?}: bad value {value:?}: {why}")]
    BadValue {
        /// The whole expression.
        expr: String,
        /// The value.
        value: String,
        /// What was expected.
        why: String,
    },
}

/// The allowed operators for word values.
const EQ_NE: &[Cmp] = &[Cmp::Eq, Cmp::Ne];
/// Every operator.
const ANY_OP: &[Cmp] = &[Cmp::Eq, Cmp::Ne, Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge];

/// The serde (wire) word of an enum value, e.g. `endpoint-independent`.
fn wire<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Parse a wire word into an enum, listing the valid words on failure.
fn word<T: DeserializeOwned + Serialize>(s: &str, all: &[T]) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
        let words: Vec<String> = all.iter().map(wire).collect();
        format!("expected one of {}", words.join(", "))
    })
}

/// Parse one expression for a subcommand.
pub fn parse(input: &str, scope: Scope) -> Result<Assertion, ExpectError> {
    let expr = input.trim().to_string();
    if expr.is_empty() {
        return Err(ExpectError::Empty {
            scope: scope.as_str(),
            valid: valid_keys(scope),
        });
    }
    // Split at the first operator character.
    let (lhs, comparison) = match expr.find(['=', '!', '<', '>']) {
        Some(i) => {
            let rest = &expr[i..];
            let (op_text, op) = Cmp::ALL
                .iter()
                .find(|(t, _)| rest.starts_with(t))
                .copied()
                .unwrap_or(("!", Cmp::Ne));
            let value = rest[op_text.len()..].trim();
            if op_text == "!" || value.starts_with(['=', '<', '>', '!']) {
                let op: String = rest.chars().take_while(|c| "=!<>".contains(*c)).collect();
                return Err(ExpectError::BadOperator {
                    expr: expr.clone(),
                    key: expr[..i].trim().to_lowercase(),
                    op,
                    allowed: "one of = != < <= > >=".into(),
                });
            }
            (expr[..i].trim(), Some((op, value.to_string())))
        }
        None => (expr.as_str(), None),
    };
    let lhs = lhs.to_lowercase();
    let (key, qualifier) = match lhs.split_once(':') {
        Some((k, q)) => (k.trim().to_string(), Some(q.trim().to_string())),
        None => (lhs.clone(), None),
    };
    let p = Parts {
        expr: &expr,
        lhs: &lhs,
        key: &key,
        comparison,
    };
    let a = match (key.as_str(), qualifier.as_deref()) {
        (k @ ("host" | "srflx" | "prflx" | "relay"), q) => {
            let kind = match k {
                "host" => CandidateType::Host,
                "srflx" => CandidateType::Srflx,
                "prflx" => CandidateType::Prflx,
                _ => CandidateType::Relay,
            };
            let via = match (kind, q) {
                (_, None) => None,
                (CandidateType::Relay, Some("udp")) => Some(Protocol::Udp),
                (CandidateType::Relay, Some("tcp")) => Some(Protocol::Tcp),
                (CandidateType::Relay, Some("tls")) => Some(Protocol::Tls),
                (CandidateType::Relay, Some("dtls")) => Some(Protocol::Dtls),
                (CandidateType::Relay, Some(q)) => {
                    return Err(p.bad_qualifier(q, "udp, tcp, tls, dtls"))
                }
                (_, Some(q)) => return Err(p.bad_qualifier(q, "none")),
            };
            let count = match p.comparison.clone() {
                None => Compare {
                    op: Cmp::Ge,
                    value: 1,
                },
                Some(_) => p.compare(ANY_OP, |v| {
                    v.parse::<u64>()
                        .map_err(|_| "expected a whole number of candidates".to_string())
                })?,
            };
            Assertion::Candidates { kind, via, count }
        }
        ("udp" | "tcp" | "tls" | "dtls", Some("ok")) => {
            p.no_comparison()?;
            Assertion::TransportOk(match key.as_str() {
                "udp" => Protocol::Udp,
                "tcp" => Protocol::Tcp,
                "dtls" => Protocol::Dtls,
                _ => Protocol::Tls,
            })
        }
        ("tls", Some("cert-valid-days")) => Assertion::CertValidDays(p.compare(ANY_OP, |v| {
            v.parse::<i64>()
                .map_err(|_| "expected a whole number of days, e.g. 14".to_string())
        })?),
        ("tls", q) => return Err(p.bad_qualifier(q.unwrap_or(""), "ok, cert-valid-days")),
        ("udp" | "tcp" | "dtls", q) => return Err(p.bad_qualifier(q.unwrap_or(""), "ok")),
        (k, q) if StageKey::ALL.iter().any(|s| s.as_str() == k) => {
            if q != Some("ok") {
                return Err(p.bad_qualifier(q.unwrap_or(""), "ok"));
            }
            p.no_comparison()?;
            Assertion::StageOk(
                StageKey::ALL
                    .into_iter()
                    .find(|s| s.as_str() == k)
                    .unwrap_or(StageKey::Binding),
            )
        }
        ("rtt", q) => {
            let stage = match q {
                None => RttStage::Any,
                Some("binding") => RttStage::Binding,
                Some("allocate") => RttStage::Allocate,
                Some(q) => return Err(p.bad_qualifier(q, "binding, allocate (or none)")),
            };
            let limit = p.compare(ANY_OP, |v| {
                humantime::parse_duration(v)
                    .map_err(|e| format!("expected a duration such as 150ms or 2s ({e})"))
            })?;
            Assertion::Rtt { stage, limit }
        }
        ("nat", Some("mapping")) => {
            Assertion::NatMapping(p.compare(EQ_NE, |v| word(v, &MappingBehavior::ALL))?)
        }
        ("nat", Some("filtering")) => {
            Assertion::NatFiltering(p.compare(EQ_NE, |v| word(v, &FilteringBehavior::ALL))?)
        }
        ("nat", Some("type")) => {
            Assertion::NatType(p.compare(EQ_NE, |v| word(v, &ClassicName::ALL))?)
        }
        ("nat", Some("hairpin")) => Assertion::NatHairpin(p.compare(EQ_NE, |v| match v {
            "yes" | "true" => Ok(true),
            "no" | "false" => Ok(false),
            _ => Err("expected yes or no".to_string()),
        })?),
        ("nat", q) => {
            return Err(p.bad_qualifier(q.unwrap_or(""), "mapping, filtering, type, hairpin"))
        }
        _ => {
            return Err(ExpectError::UnknownKey {
                expr: expr.clone(),
                key,
                scope: scope.as_str(),
                valid: valid_keys(scope),
            })
        }
    };
    let scopes = a.scopes();
    if !scopes.contains(&scope) {
        let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        return Err(ExpectError::WrongCommand {
            expr: expr.clone(),
            key: lhs,
            scope: scope.as_str(),
            hint: match a {
                Assertion::Rtt { .. } if scope == Scope::Gather => {
                    "gather records arrival times, not round trips; use check".into()
                }
                Assertion::Candidates {
                    kind: CandidateType::Prflx,
                    ..
                } => "peer-reflexive candidates come from a peer's connectivity checks, which iceprobe does not run".into(),
                _ => format!("it applies to {}", names.join(", ")),
            },
            valid: valid_keys(scope),
        });
    }
    Ok(a)
}

/// The pieces of an expression being parsed, for building errors.
struct Parts<'a> {
    expr: &'a str,
    lhs: &'a str,
    key: &'a str,
    comparison: Option<(Cmp, String)>,
}

impl Parts<'_> {
    fn bad_qualifier(&self, q: &str, valid: &str) -> ExpectError {
        ExpectError::BadQualifier {
            expr: self.expr.into(),
            key: self.key.into(),
            qualifier: q.into(),
            valid: valid.into(),
        }
    }

    fn no_comparison(&self) -> Result<(), ExpectError> {
        match &self.comparison {
            None => Ok(()),
            Some((op, _)) => Err(ExpectError::BadOperator {
                expr: self.expr.into(),
                key: self.lhs.into(),
                op: op.as_str().into(),
                allowed: "no comparison (it holds or it does not)".into(),
            }),
        }
    }

    fn compare<T>(
        &self,
        allowed: &[Cmp],
        value: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Compare<T>, ExpectError> {
        let ops = || {
            allowed
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let Some((op, v)) = &self.comparison else {
            return Err(ExpectError::BadOperator {
                expr: self.expr.into(),
                key: self.lhs.into(),
                op: String::new(),
                allowed: format!("a comparison: {} and a value", ops()),
            });
        };
        if !allowed.contains(op) {
            return Err(ExpectError::BadOperator {
                expr: self.expr.into(),
                key: self.lhs.into(),
                op: op.as_str().into(),
                allowed: ops(),
            });
        }
        let bad = |why: String| ExpectError::BadValue {
            expr: self.expr.into(),
            value: v.clone(),
            why,
        };
        if v.is_empty() {
            return Err(bad("missing value after the operator".into()));
        }
        Ok(Compare {
            op: *op,
            value: value(&v.to_lowercase()).map_err(bad)?,
        })
    }
}

impl Assertion {
    /// The subcommands whose report can answer this assertion.
    pub fn scopes(&self) -> &'static [Scope] {
        match self {
            // Browsers use no TURN over DTLS, so gather never has it to count.
            Assertion::Candidates {
                kind: CandidateType::Relay,
                via: Some(Protocol::Dtls),
                ..
            }
            | Assertion::TransportOk(Protocol::Dtls) => &[C],
            Assertion::Candidates {
                kind: CandidateType::Srflx | CandidateType::Relay,
                ..
            }
            | Assertion::TransportOk(_) => &[G, C],
            Assertion::Candidates {
                kind: CandidateType::Prflx,
                ..
            } => &[],
            Assertion::Candidates { .. } => &[G],
            Assertion::StageOk(_) | Assertion::CertValidDays(_) | Assertion::Rtt { .. } => &[C],
            Assertion::NatMapping(_)
            | Assertion::NatFiltering(_)
            | Assertion::NatType(_)
            | Assertion::NatHairpin(_) => &[N],
        }
    }
}

impl fmt::Display for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Assertion::Candidates { kind, via, count } => {
                write!(f, "{kind}")?;
                if let Some(t) = via {
                    write!(f, ":{t}")?;
                }
                if *count
                    != (Compare {
                        op: Cmp::Ge,
                        value: 1,
                    })
                {
                    write!(f, "{}{}", count.op.as_str(), count.value)?;
                }
                Ok(())
            }
            Assertion::TransportOk(t) => write!(f, "{t}:ok"),
            Assertion::StageOk(s) => write!(f, "{}:ok", s.as_str()),
            Assertion::CertValidDays(c) => {
                write!(f, "tls:cert-valid-days{}{}", c.op.as_str(), c.value)
            }
            Assertion::Rtt { stage, limit } => {
                f.write_str(match stage {
                    RttStage::Any => "rtt",
                    RttStage::Binding => "rtt:binding",
                    RttStage::Allocate => "rtt:allocate",
                })?;
                let d = humantime::format_duration(limit.value).to_string();
                write!(f, "{}{}", limit.op.as_str(), d.replace(' ', ""))
            }
            Assertion::NatMapping(c) => write!(f, "nat:mapping{}{}", c.op.as_str(), wire(&c.value)),
            Assertion::NatFiltering(c) => {
                write!(f, "nat:filtering{}{}", c.op.as_str(), wire(&c.value))
            }
            Assertion::NatType(c) => write!(f, "nat:type{}{}", c.op.as_str(), wire(&c.value)),
            Assertion::NatHairpin(c) => write!(
                f,
                "nat:hairpin{}{}",
                c.op.as_str(),
                if c.value { "yes" } else { "no" }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp<T>(op: Cmp, value: T) -> Compare<T> {
        Compare { op, value }
    }

    #[test]
    fn valid_expressions() {
        use Assertion as A;
        let ms = Duration::from_millis;
        let relay = |via, op, n| A::Candidates {
            kind: CandidateType::Relay,
            via,
            count: cmp(op, n),
        };
        let cases: Vec<(&str, Scope, Assertion, &str)> = vec![
            ("relay", G, relay(None, Cmp::Ge, 1), "relay"),
            (
                "relay:tls",
                G,
                relay(Some(Protocol::Tls), Cmp::Ge, 1),
                "relay:tls",
            ),
            (
                "RELAY:TCP",
                C,
                relay(Some(Protocol::Tcp), Cmp::Ge, 1),
                "relay:tcp",
            ),
            ("relay >= 2", G, relay(None, Cmp::Ge, 2), "relay>=2"),
            (
                "relay:udp=0",
                G,
                relay(Some(Protocol::Udp), Cmp::Eq, 0),
                "relay:udp=0",
            ),
            (
                "host=0",
                G,
                A::Candidates {
                    kind: CandidateType::Host,
                    via: None,
                    count: cmp(Cmp::Eq, 0),
                },
                "host=0",
            ),
            (
                " srflx ",
                C,
                A::Candidates {
                    kind: CandidateType::Srflx,
                    via: None,
                    count: cmp(Cmp::Ge, 1),
                },
                "srflx",
            ),
            ("udp:ok", C, A::TransportOk(Protocol::Udp), "udp:ok"),
            ("tls:ok", G, A::TransportOk(Protocol::Tls), "tls:ok"),
            (
                "allocate:ok",
                C,
                A::StageOk(StageKey::Allocate),
                "allocate:ok",
            ),
            ("echo:ok", C, A::StageOk(StageKey::Echo), "echo:ok"),
            (
                "tls:cert-valid-days>=14",
                C,
                A::CertValidDays(cmp(Cmp::Ge, 14)),
                "tls:cert-valid-days>=14",
            ),
            (
                "rtt<150ms",
                C,
                A::Rtt {
                    stage: RttStage::Any,
                    limit: cmp(Cmp::Lt, ms(150)),
                },
                "rtt<150ms",
            ),
            (
                "rtt:allocate <= 1.5s",
                C,
                A::Rtt {
                    stage: RttStage::Allocate,
                    limit: cmp(Cmp::Le, ms(1500)),
                },
                "rtt:allocate<=1s500ms",
            ),
            (
                "nat:mapping=endpoint-independent",
                N,
                A::NatMapping(cmp(Cmp::Eq, MappingBehavior::EndpointIndependent)),
                "nat:mapping=endpoint-independent",
            ),
            (
                "nat:filtering!=Address-And-Port-Dependent",
                N,
                A::NatFiltering(cmp(Cmp::Ne, FilteringBehavior::AddressAndPortDependent)),
                "nat:filtering!=address-and-port-dependent",
            ),
            (
                "nat:type=symmetric",
                N,
                A::NatType(cmp(Cmp::Eq, ClassicName::Symmetric)),
                "nat:type=symmetric",
            ),
            (
                "nat:type=port-restricted-cone",
                N,
                A::NatType(cmp(Cmp::Eq, ClassicName::PortRestrictedCone)),
                "nat:type=port-restricted-cone",
            ),
            (
                "nat:hairpin=yes",
                N,
                A::NatHairpin(cmp(Cmp::Eq, true)),
                "nat:hairpin=yes",
            ),
        ];
        for (text, scope, want, canonical) in cases {
            let got = parse(text, scope).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string(), canonical, "{text}");
            // The canonical form parses back to the same assertion.
            assert_eq!(parse(canonical, scope).unwrap(), want, "{canonical}");
        }
    }

    #[test]
    fn errors_name_the_bad_part() {
        let cases: &[(&str, Scope, &str)] = &[
            ("", C, "--expect: empty expression; valid keys for check: "),
            ("bogus", C, "unknown key \"bogus\"; valid keys for check: srflx[OP N], relay"),
            ("bogus", N, "valid keys for nat: nat:mapping=|!=WORD"),
            ("relay:sctp", G, "\"relay\" does not take the qualifier \"sctp\"; valid: udp, tcp, tls, dtls"),
            ("dtls:ok", G, "cannot be evaluated on gather (it applies to check)"),
            ("relay:dtls", G, "cannot be evaluated on gather (it applies to check)"),
            ("srflx:udp", G, "\"srflx\" does not take the qualifier \"udp\"; valid: none"),
            ("udp", C, "\"udp\" does not take the qualifier \"\"; valid: ok"),
            ("tls:fine", C, "valid: ok, cert-valid-days"),
            ("allocate", C, "\"allocate\" does not take the qualifier \"\"; valid: ok"),
            ("udp:ok=1", C, "operator \"=\" is not allowed after \"udp:ok\"; use no comparison"),
            ("rtt", C, "operator \"\" is not allowed after \"rtt\"; use a comparison: = != < <= > >= and a value"),
            ("rtt<fast", C, "bad value \"fast\": expected a duration such as 150ms or 2s"),
            ("rtt<", C, "bad value \"\": missing value after the operator"),
            ("rtt:dns<1s", C, "valid: binding, allocate (or none)"),
            ("rtt==1s", C, "operator \"==\" is not allowed after \"rtt\""),
            ("relay!1", G, "operator \"!\" is not allowed"),
            ("relay>=many", G, "bad value \"many\": expected a whole number of candidates"),
            ("tls:cert-valid-days>=two", C, "bad value \"two\": expected a whole number of days"),
            ("nat:mapping<endpoint-independent", N, "operator \"<\" is not allowed after \"nat:mapping\"; use = !="),
            ("nat:mapping=cone", N, "bad value \"cone\": expected one of endpoint-independent, address-dependent, address-and-port-dependent, destination-dependent"),
            ("nat:type=cone", N, "full-cone, restricted-cone, port-restricted-cone, symmetric, udp-blocked"),
            ("nat:hairpin=maybe", N, "expected yes or no"),
            ("nat", N, "valid: mapping, filtering, type, hairpin"),
            ("rtt<1s", G, "\"rtt\" cannot be evaluated on gather (gather records arrival times, not round trips; use check)"),
            ("nat:type=symmetric", C, "cannot be evaluated on check (it applies to nat); valid keys for check:"),
            ("host", C, "\"host\" cannot be evaluated on check (it applies to gather)"),
            ("allocate:ok", G, "cannot be evaluated on gather (it applies to check)"),
            ("relay", N, "cannot be evaluated on nat (it applies to gather, check)"),
            ("prflx", G, "\"prflx\" cannot be evaluated on gather (peer-reflexive candidates come from a peer's"),
        ];
        for (text, scope, want) in cases {
            let e = parse(text, *scope).expect_err(text).to_string();
            assert!(e.contains(want), "{text:?}:\n got  {e}\n want …{want}…");
        }
    }

    #[test]
    fn every_key_parses_somewhere() {
        // Each documented key has at least one valid expression in some scope.
        for (k, example) in KEYS.iter().zip([
            "host",
            "srflx",
            "relay:udp",
            "udp:ok",
            "tcp:ok",
            "tls:ok",
            "dtls:ok",
            "dns:ok",
            "tls:cert-valid-days>=1",
            "rtt<1s",
            "nat:mapping=address-dependent",
            "nat:filtering=endpoint-independent",
            "nat:type=full-cone",
            "nat:hairpin=no",
        ]) {
            let ok = k.scopes.iter().all(|s| parse(example, *s).is_ok());
            assert!(ok, "{} / {example}", k.syntax);
        }
        for s in StageKey::ALL {
            assert!(parse(&format!("{}:ok", s.as_str()), C).is_ok());
        }
    }
}
