//! Command-line arguments (clap derive) and their validation into run configurations.
//!
//! Raw flags are turned into validated, immutable configs here; every error names the flag or
//! input to fix and maps to exit code 2.

pub mod args;
pub mod config;
pub mod generate;

pub use args::{Cli, Command};
pub use config::{
    check_settings, ci_config, connect_config, gather_config, nat_config, CiConfig, UsageError,
};
