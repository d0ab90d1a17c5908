//! Reachability probes for an Iris deployment, run from a client's network (`iris netcheck`).
//!
//! Each probe is a small unit ([`probe`]) that opens its own connections — directly or through
//! an HTTP/1.1 proxy with CONNECT ([`connect`]) — and reports what happened. TURN is spoken by
//! [`turn_client`] on top of the sans-IO `iris-stun` codec; [`measure`] bounces packets
//! between two allocations to estimate RTT, jitter, loss and bitrate; [`verdict`] turns the
//! results into "which deployment profiles work here and what to open otherwise" (pure, no
//! I/O); [`report`] renders it for people or as JSON. Every network step has a deadline.

#![forbid(unsafe_code)]

pub mod connect;
pub mod http;
pub mod measure;
pub mod probe;
pub mod report;
pub mod turn_client;
pub mod verdict;

pub use probe::{run, Options, Progress};
pub use report::Report;
pub use verdict::{Verdict, VerdictCode};
