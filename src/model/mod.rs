//! Plain data types shared by every part of sockscope (the socket record, the TCP
//! state, a `Sample` of the kernel's tables) and the engine that turns samples
//! into snapshots (connection table, history, aggregates, series). `sample/`
//! fills the plain types, everything else reads them. This module does no I/O,
//! reads no clock and imports neither `sample/` nor `ui/`.

mod aggregate;
mod conn;
mod deltas;
mod destroy;
mod ending;
mod engine;
mod event;
mod history;
mod lean;
mod netns;
mod order;
mod sample;
mod series;
mod snapshot;
mod socket;
mod state;
mod store;
mod table;

pub use aggregate::{
    Aggregates, Churn, ChurnMap, Listener, Listening, NetnsAggregate, PortAggregate, PortChurn,
    ProcessAggregate, Rates, RemoteAggregate,
};
pub use conn::{
    Bytes, ClosedConn, ConnView, Connection, ProcName, Rate, Stamp, Transition, Transitions,
};
pub use deltas::{CounterDelta, CounterDeltas, GAUGES};
pub use destroy::{
    ConnEnd, DestroyEvent, DestroyTick, Destroyed, EventFeed, EventTotals, FailedConnects,
    LIFETIME_BOUNDS, Lifetimes,
};
pub use engine::{Engine, EngineConfig, MemoryEstimate};
pub use event::{Event, EventKind};
pub use history::LogView;
pub use netns::{NetnsId, NetnsInfo, NetnsKind};
pub use order::{AddrKey, IpKey, addr_key, ip_key};
pub use sample::{
    Carried, Coverage, Health, HostInfo, KernelCounters, OwnerScanStats, ProcessInfo, Sample,
    SampleCost, SocketSource, Sockstat, Sysctls,
};
pub use series::{OwnerKey, PortPoint, Ring, Series, SmallCounts, TickPoint};
pub use snapshot::{HistoryStats, Snapshot};
pub use socket::{Ownership, SocketRecord, TcpInfoLite, Timer, TimerKind, unmap};
pub use state::{STATES, StateCounts, TcpState};
