//! The clap definition.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::render::Format;
use crate::secret::Secret;

/// Trickle-ICE tester and WebRTC connectivity doctor.
///
/// Gathers ICE candidates from STUN/TURN servers over UDP, TCP and TLS, like the browser
/// "Trickle ICE" page but with real error codes, timings and machine-readable output.
#[derive(Debug, Parser)]
#[command(name = "iceprobe", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 every server gave what it should; 1 some server failed; 2 usage or configuration error; 130 interrupted (Ctrl-C); 143 stopped by SIGTERM. Both still release allocations and print the report."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Gather ICE candidates (host, srflx, relay) as they trickle in.
    #[command(after_help = GATHER_EXAMPLES)]
    Gather(Box<GatherArgs>),
    /// Check STUN/TURN servers stage by stage: DNS, connect, TLS, Binding, 401, Allocate,
    /// permission, channel, data through the relay, release.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(Box<CheckArgs>),
    /// Discover NAT behaviour: RFC 5780 mapping and filtering (validated), multi-server
    /// comparison, hairpinning, optionally the idle mapping lifetime; with a P2P forecast.
    #[command(after_help = NAT_EXAMPLES)]
    Nat(Box<NatArgs>),
    /// Prometheus exporter: /probe?target=URL&module=NAME runs a check and returns its metrics.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// End-to-end ICE: two peer connections (here, or on two hosts) run connectivity checks,
    /// DTLS and a data channel echo; reports candidates, pairs, the selected path and why not.
    #[command(after_help = CONNECT_EXAMPLES)]
    Connect(Box<ConnectArgs>),
    /// Start an in-process STUN/TURN server on loopback and gather from it over UDP, TCP and TLS.
    #[command(after_help = DEMO_EXIT_CODES)]
    Demo(DemoArgs),
    /// Print a shell completion script, e.g. `iceprobe completions bash > /etc/bash_completion.d/iceprobe`.
    Completions(CompletionsArgs),
    /// Print the man page (roff), e.g. `iceprobe man | man -l -`; `iceprobe man check` for a subcommand.
    Man(ManArgs),
}

/// `iceprobe completions`.
#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `iceprobe man`.
#[derive(Debug, Args, Clone)]
pub struct ManArgs {
    /// A subcommand's page instead of the main one.
    #[arg(value_parser = ["gather", "check", "nat", "demo", "completions"])]
    pub subcommand: Option<String>,
}

const CHECK_EXAMPLES: &str = "Examples:
  iceprobe check 'turn:turn.example.org?transport=udp' 'turn:turn.example.org?transport=tcp' turns:turn.example.org -u alice
  iceprobe check --all-transports turn:turn.example.org --format json
  ICEPROBE_TURN_SECRET=s3cret iceprobe check turns:turn.example.org --ca private-ca.pem

Every row is one server x address x transport. Real data goes through the relay: a second
allocation of ours echoes what the first sends (Send indication and ChannelData); both are
released with Refresh LIFETIME 0.

Exit codes: 0 every row passed (warnings allowed); 1 some row failed; 2 usage or configuration
error; 130 interrupted (Ctrl-C), 143 stopped by SIGTERM (allocations still released).";

const CONNECT_EXAMPLES: &str = "Examples:
  iceprobe connect                                   # loopback self-test, host candidates only
  iceprobe connect stun:stun.example.org turn:turn.example.org -u alice --credential-file pw
  iceprobe connect --policy-a relay --policy-b relay turn:turn.example.org -u alice   # relay to relay
  iceprobe connect --listen 0.0.0.0:7000 turn:turn.example.org -u alice   # host 1: prints a URL
  iceprobe connect --peer http://HOST:7000/TOKEN turn:turn.example.org -u alice   # host 2
  iceprobe connect --signal stdio [--answer]         # copy-paste the blobs between two hosts

Loopback runs sides a (offers) and b (answers) in this process; in two-host mode this process is
one side and --policy/--bind (aliases of --policy-a/--bind-a) apply to it. webrtc relays over
UDP only: turn:?transport=tcp and turns: URLs are skipped and listed.

Exit codes: 0 connected and data echoed; 1 not connected (the likely cause is reported) or the
peer vanished; 2 usage error, bad signaling input or wrong token; 130 interrupted (Ctrl-C);
143 stopped by SIGTERM (peer connections closed, allocations released).";

const NAT_EXAMPLES: &str = "Examples:
  iceprobe nat stun:stun.example.org                 # RFC 5780 server (two IPs): mapping + filtering
  iceprobe nat stun:stun1.example.org stun:stun2.example.net   # plain STUN servers: compare mappings
  iceprobe nat --lifetime 5m stun:stun.example.org   # also search the idle mapping lifetime

Replies are validated: a server that answers CHANGE-REQUEST from the wrong address makes the
result \"inconclusive\", never a false \"endpoint-independent\". IPv4 and IPv6 are examined
separately and never mixed.

Exit codes: 0 discovery completed; 1 could not determine (no usable server, UDP blocked and no
TCP); 2 usage or configuration error; 130 interrupted (Ctrl-C); 143 stopped by SIGTERM.";

const SERVE_EXAMPLES: &str = "Examples:
  iceprobe serve --listen 127.0.0.1:9478 --config /etc/iceprobe/serve.json
  curl 'http://127.0.0.1:9478/probe?target=turns:turn.example.org&module=turn'

The module file names probes and their credentials (never in the scrape URL):
  {\"modules\": {\"turn\": {\"username\": \"probe\", \"credential_env\": \"TURN_PASSWORD\",
                         \"all_transports\": true, \"timeout\": \"8s\"}}}
See docs/prometheus.md for the scrape config and alert rules.

Exit codes: 0 stopped by Ctrl-C or SIGTERM (probes in flight are cancelled and still release
their allocations); 2 usage or configuration error, or the address cannot be listened on.";

const GATHER_EXAMPLES: &str = "Examples:
  iceprobe gather stun:stun.example.org
  iceprobe gather turn:turn.example.org turns:turn.example.org -u alice --credential-file pw.txt
  iceprobe gather --config rtc-config.json --relay-only --format json
  ICEPROBE_TURN_SECRET=s3cret iceprobe gather turn:turn.example.org?transport=tcp

Exit codes: 0 every server gave what it should (STUN URL → srflx, TURN URL → relay);
1 some server failed; 2 usage or configuration error; 130 interrupted (Ctrl-C); 143 stopped by
SIGTERM (allocations still released).";

const DEMO_EXIT_CODES: &str =
    "Exit codes: 0 every relay (UDP, TCP, TLS) came up; 1 something failed;
2 usage error; 130 interrupted (Ctrl-C); 143 stopped by SIGTERM.";

/// Where the servers come from, and their credentials. Shared by every probing subcommand.
#[derive(Debug, Args, Clone, Default)]
pub struct ServerArgs {
    /// Server URLs: stun:, stuns:, turn:, turns: (RFC 7064/7065), e.g. turn:host:3478?transport=tcp;
    /// turns:host?transport=udp is TURN over DTLS (RFC 7350), which only check probes.
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,
    /// Read servers from a browser RTCConfiguration JSON file ({"iceServers": [...]}).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Fetch RTCConfiguration-shaped JSON from a provider's HTTP(S) endpoint. Also
    /// ICEPROBE_ICE_SERVERS_URL, which keeps an API key in the URL out of the process list.
    #[arg(
        long,
        value_name = "URL",
        env = "ICEPROBE_ICE_SERVERS_URL",
        hide_env_values = true
    )]
    pub ice_servers_url: Option<String>,
    /// TURN username (applies to TURN URLs without their own).
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// TURN credential. Prefer ICEPROBE_CREDENTIAL or --credential-file: argv is visible to other users.
    #[arg(long, value_name = "PASSWORD", value_parser = Secret::parse_arg)]
    pub credential: Option<Secret>,
    /// Read the TURN credential from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    pub credential_file: Option<PathBuf>,
    /// Mint coturn REST-API credentials (use-auth-secret) from this shared secret. Also ICEPROBE_TURN_SECRET.
    #[arg(long, value_name = "SECRET", value_parser = Secret::parse_arg)]
    pub turn_secret: Option<Secret>,
    /// Read the REST shared secret from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    pub turn_secret_file: Option<PathBuf>,
    /// Lifetime of minted REST credentials.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    pub turn_ttl: Duration,
}

/// TLS verification flags.
#[derive(Debug, Args, Clone, Default)]
pub struct TlsArgs {
    /// Trust only the CA certificates in this PEM file (for private CAs).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Verify the certificate against NAME and send it as SNI (for IP-addressed turns: URLs).
    #[arg(long, value_name = "NAME")]
    pub tls_name: Option<String>,
    /// Do not verify TLS certificates (reported in the output).
    #[arg(long)]
    pub insecure: bool,
}

/// Output flags.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Output format: table (live lines, then a summary), json (one report), ndjson (one event per line).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// CI flags: assertions, JUnit, quiet. Shared by gather, check and nat.
#[derive(Debug, Args, Clone, Default)]
pub struct CiArgs {
    /// Assert on the result; repeatable. Exit 1 when one does not hold, e.g. relay:tls, udp:ok,
    /// tls:cert-valid-days>=14, rtt<150ms, nat:mapping=endpoint-independent (grammar: README, "CI usage").
    #[arg(long = "expect", value_name = "EXPR")]
    pub expect: Vec<String>,
    /// Also write a JUnit XML report to FILE (one testcase per server x transport x stage, and per --expect).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print only the one-line verdict, and the assertions that do not hold.
    #[arg(short = 'q', long, conflicts_with = "format")]
    pub quiet: bool,
}

/// `iceprobe gather`.
#[derive(Debug, Args, Clone)]
pub struct GatherArgs {
    /// Servers and credentials.
    #[command(flatten)]
    pub servers: ServerArgs,
    /// ICE transport policy "relay": gather relay candidates only.
    #[arg(long)]
    pub relay_only: bool,
    /// Address families.
    #[command(flatten)]
    pub family: FamilyArgs,
    /// Deadline for the whole run.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Initial STUN retransmission timeout over UDP (RFC 5389 §7.2.1).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub rto: Duration,
    /// Also report loopback addresses as host candidates.
    #[arg(long)]
    pub include_loopback: bool,
    /// Also report link-local addresses (fe80::/10, 169.254/16) as host candidates.
    #[arg(long)]
    pub link_local: bool,
    /// TLS verification.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
    /// CI: --expect, --junit, --quiet.
    #[command(flatten)]
    pub ci: CiArgs,
}

/// `-4` / `-6`.
#[derive(Debug, Args, Clone, Default)]
pub struct FamilyArgs {
    /// IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// IPv6 only (with check: also asks TURN for an IPv6 relay, REQUESTED-ADDRESS-FAMILY).
    #[arg(short = '6')]
    pub ipv6: bool,
}

/// `iceprobe check`.
#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    /// Servers and credentials.
    #[command(flatten)]
    pub servers: ServerArgs,
    /// Probe UDP 3478, TCP 3478 and TLS 5349 on every host, whatever the URLs say (not DTLS,
    /// which browsers do not use: add turns:HOST?transport=udp for it).
    #[arg(long)]
    pub all_transports: bool,
    /// Look up SRV records (_turn._udp, _turns._tcp, ...; RFC 5928, RFC 7064) and probe every target.
    #[arg(long)]
    pub srv: bool,
    /// Address families.
    #[command(flatten)]
    pub family: FamilyArgs,
    /// Deadline for the whole check.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Initial STUN retransmission timeout over UDP (RFC 5389 §7.2.1).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub rto: Duration,
    /// Rows probed at once; more rows run in waves (a TURN row holds two allocations on its
    /// server). For a fleet, at least the number of rows: UDP rows share a few sockets.
    #[arg(long, value_name = "N", default_value_t = crate::check::config::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// Repeat the check every DURATION until Ctrl-C or SIGTERM (output: one NDJSON stream).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub every: Option<Duration>,
    /// TLS verification.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
    /// CI: --expect, --junit, --quiet.
    #[command(flatten)]
    pub ci: CiArgs,
}

/// `iceprobe nat`.
#[derive(Debug, Args, Clone)]
pub struct NatArgs {
    /// Servers (stun: or turn: URLs; reached over UDP at host:port).
    #[command(flatten)]
    pub servers: ServerArgs,
    /// Address families.
    #[command(flatten)]
    pub family: FamilyArgs,
    /// Deadline for the tests (the lifetime search has its own budget on top).
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Initial retransmission timeout.
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = humantime::parse_duration)]
    pub rto: Duration,
    /// How long one test waits for its answer; a missing answer is itself a result.
    #[arg(long, value_name = "DURATION", default_value = "1500ms", value_parser = humantime::parse_duration)]
    pub test_timeout: Duration,
    /// Search the idle mapping lifetime within this budget (takes minutes; off by default).
    #[arg(long, value_name = "BUDGET", num_args = 0..=1, default_missing_value = "5m", value_parser = humantime::parse_duration)]
    pub lifetime: Option<Duration>,
    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
    /// CI: --expect, --junit, --quiet.
    #[command(flatten)]
    pub ci: CiArgs,
}

/// `iceprobe serve`.
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9478")]
    pub listen: std::net::SocketAddr,
    /// Module file (JSON): probes and credentials by name. Without it, one `default` module
    /// with no credentials.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Probes run at once; more scrapes wait (never past their own deadline).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_concurrent: usize,
}

/// `iceprobe connect`.
#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// Servers and credentials (optional: without, only host candidates).
    #[command(flatten)]
    pub servers: ServerArgs,
    /// ICE transport policy of side a (two-host mode: of this process).
    #[arg(long = "policy-a", alias = "policy", value_enum, default_value_t = PolicyArg::All)]
    pub policy_a: PolicyArg,
    /// ICE transport policy of side b (loopback only).
    #[arg(long = "policy-b", value_enum, default_value_t = PolicyArg::All)]
    pub policy_b: PolicyArg,
    /// Local address for side a's sockets (two-host mode: this process's). Default: every
    /// non-loopback interface.
    #[arg(long = "bind-a", alias = "bind", value_name = "IP")]
    pub bind_a: Option<std::net::IpAddr>,
    /// Local address for side b's sockets (loopback only).
    #[arg(long = "bind-b", value_name = "IP")]
    pub bind_b: Option<std::net::IpAddr>,
    /// Answer over HTTP signaling on ADDR:PORT; prints the URL (with a random token) to give
    /// the other host.
    #[arg(long, value_name = "ADDR:PORT", conflicts_with_all = ["peer", "signal"])]
    pub listen: Option<std::net::SocketAddr>,
    /// Offer to the host running --listen, at the URL it printed (http://HOST:PORT/TOKEN).
    /// Also ICEPROBE_PEER, which keeps the token out of the process list.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "signal",
        env = "ICEPROBE_PEER",
        hide_env_values = true,
        value_parser = Secret::parse_arg
    )]
    pub peer: Option<Secret>,
    /// The session token, when --peer's URL does not carry it.
    #[arg(long, value_name = "TOKEN", requires = "peer", value_parser = Secret::parse_arg)]
    pub token: Option<Secret>,
    /// Copy-paste signaling: print this side's blob on stderr, read the peer's from stdin.
    #[arg(long, value_enum, value_name = "HOW")]
    pub signal: Option<SignalKind>,
    /// With --signal stdio: answer (paste the offer first) instead of offering.
    #[arg(long, requires = "signal")]
    pub answer: bool,
    /// Data channel echo messages per side.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub count: u32,
    /// After the echo, send bulk data over a reliable channel for this long and report bytes
    /// per second (the offering side sends; both report their view).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub throughput: Option<Duration>,
    /// Deadline for the whole run (signaling, gathering, checks, echo, throughput).
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How `--signal` exchanges descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignalKind {
    /// Copy-paste on stdin / stderr.
    Stdio,
}

/// `iceprobe demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Deadline for the gather.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `--policy`: the ICE transport policy (W3C `RTCIceTransportPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyArg {
    /// Every candidate type.
    All,
    /// Relay candidates only.
    Relay,
}

impl std::fmt::Display for PolicyArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PolicyArg::All => "all",
            PolicyArg::Relay => "relay",
        })
    }
}

impl From<PolicyArg> for crate::model::connect::Policy {
    fn from(p: PolicyArg) -> Self {
        match p {
            PolicyArg::All => crate::model::connect::Policy::All,
            PolicyArg::Relay => crate::model::connect::Policy::Relay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// A `{:?}` of the parsed arguments (a log line, a panic message) never shows a secret.
    #[test]
    fn parsed_arguments_never_debug_print_a_secret() {
        let cases: &[&[&str]] = &[
            &["check", "turn:h", "-u", "u", "--credential", "hunter2-cred"],
            &[
                "gather",
                "turn:h",
                "-u",
                "u",
                "--turn-secret",
                "hunter2-rest",
            ],
            &["nat", "stun:h", "--credential", "hunter2-nat"],
            &[
                "connect",
                "--peer",
                "http://h:1/hunter2-url",
                "--token",
                "hunter2-tok",
            ],
        ];
        for args in cases {
            let cli = Cli::try_parse_from(std::iter::once("iceprobe").chain(args.iter().copied()))
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let shown = format!("{cli:?}");
            assert!(
                !shown.contains("hunter2"),
                "{args:?} printed a secret: {shown}"
            );
            assert!(shown.contains("[redacted]"), "{args:?}: {shown}");
        }
    }
}
