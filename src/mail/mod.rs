//! Messages: composing them ([`compose`]), reading ready-made ones
//! ([`raw`]) and decoding them into files ([`extract`]).

pub mod compose;
pub mod extract;
pub mod raw;
