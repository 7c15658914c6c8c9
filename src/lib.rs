//! iceprobe: a trickle-ICE tester and WebRTC connectivity doctor.
//!
//! Data flows `cli → config → plan → net driver ⇄ proto (sans-IO) → events → report → renderers`;
//! see `STYLE.md` in the shared folder and `CONTRIBUTING.md`.

pub mod app;
pub mod candidate;
pub mod check;
pub mod cli;
pub mod connect;
pub mod demo;
pub mod expect;
pub mod gather;
pub mod ice_url;
pub mod ip_class;
pub mod model;
pub mod nat;
pub mod net;
pub mod probe;
pub mod progress;
pub mod proto;
pub mod render;
pub mod secret;
pub mod serve;
pub mod servers;
