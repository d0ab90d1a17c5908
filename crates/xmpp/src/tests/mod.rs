//! Tests named after the specification sections they check, one file per behaviour; the
//! machine is driven in virtual time through the same calls a driver makes.

mod common;
mod garbage;
mod interop;
mod limits;
mod pipelining;
mod rfc6120;
mod rfc7395;
mod sasl;
mod sm;
mod wire;
