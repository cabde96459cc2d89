//! Reading the kernel: the socket tables (netlink sock_diag, or /proc/net/tcp{,6}
//! when netlink is refused), the owning processes, the TCP counters and sysctls,
//! and host facts. These modules fill the plain types of `model/`; trouble that
//! does not stop collection comes back as data (counts and notes) for
//! `Sample.health`. `sampler` puts them together into one `Sample` per tick.

pub mod cadence;
pub mod counters;
pub mod events;
pub mod fds;
pub mod host;
pub mod kill;
pub mod netlink;
pub mod netns;
pub mod owners;
pub mod process;
pub mod procnet;
pub mod sampler;
pub mod spawn;
