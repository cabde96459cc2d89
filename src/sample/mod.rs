//! Reading the kernel: the socket tables (netlink sock_diag, or /proc/net/tcp{,6}
//! when netlink is refused), the TCP counters and sysctls, and host facts. These
//! modules fill the plain types of `model/` and keep no history of their own;
//! trouble that does not stop collection comes back as data (counts and notes)
//! for `Sample.health`.

pub mod counters;
pub mod host;
pub mod netlink;
pub mod procnet;
