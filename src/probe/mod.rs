//! The probing layer, shared by `gather`, `check` and the commands to come (`connect`, `load`,
//! `audit`): opening a link to a server ([`link`]), the time a run may take and the share of it
//! kept for releases ([`budget`]), the TURN session's release ([`session`]), one mapping of
//! every way a probe can end badly to a [`Failure`](crate::model::Failure) with its phase
//! ([`failure`]), and the plain-language causes behind them ([`explain`]). Two commands that
//! meet the same event report it the same way because they call the same function here.

pub mod budget;
pub mod explain;
pub mod failure;
pub mod link;
pub mod session;

pub use budget::Budget;
