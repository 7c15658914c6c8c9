//! The report model: the only thing renderers see. Versioned JSON contract (`schema_version`);
//! the NDJSON stream uses one envelope `{"type": ..., "data": ...}` per line.

pub mod check;
pub mod ci;
pub mod connect;
pub mod junit;
pub mod model;
pub mod nat;
pub mod render;
pub mod render_check;
pub mod render_connect;
pub mod render_nat;
pub use model::*;
