//! Load generator of real WebRTC publishers and subscribers (str0m: ICE, DTLS-SRTP, RTCP) for
//! the conference unit and, in `bench/conference`, Janus's videoroom. Test and bench only: no
//! production code path uses it.

pub mod iris;
pub mod janus;
pub mod media;
pub mod peer;
pub mod run;

pub use iris::IrisTarget;
pub use run::{run, Load, Report, Target};
