//! Plain data types shared by every part of sockscope: the socket record, the TCP
//! state, a `Sample` of the kernel's tables. `sample/` fills them, everything else
//! reads them. This module does no I/O and imports neither `sample/` nor `ui/`.

mod sample;
mod socket;
mod state;

pub use sample::{
    Health, HostInfo, KernelCounters, OwnerScanStats, ProcessInfo, Sample, SocketSource, Sockstat,
    Sysctls,
};
pub use socket::{Ownership, SocketRecord, TcpInfoLite, Timer, TimerKind, unmap};
pub use state::{StateCounts, TcpState};
