//! Reading the kernel: the socket tables, their owners, the counters and host facts.
//! Everything here fills the plain types of `model/`.

pub mod owners;
pub mod process;
