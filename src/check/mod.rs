//! `iceprobe check`: the TURN/STUN deployment doctor — every server × address × transport,
//! stage by stage.

pub mod plan;
pub mod probe;
pub mod run;
mod side;
mod stages;
pub mod verdict;
