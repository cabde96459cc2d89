//! The engine's memory per tracked connection at scale: DESIGN's goal is at most
//! 400 bytes per tracked socket plus the history bound. 20k live connections with
//! 1% churn per tick, until the recently-closed list is full too.

use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use sockscope::model::{
    ConnView, Engine, EngineConfig, Ownership, Sample, SocketRecord, TcpInfoLite, TcpState,
};

fn conn(n: u64) -> SocketRecord {
    let port = 1024 + u16::try_from(n % 60_000).expect("port");
    let host = u8::try_from(n / 60_000 % 250).expect("host");
    let mut s = SocketRecord::new(
        TcpState::Established,
        SocketAddr::from(([10, 0, 0, 1], 443)),
        SocketAddr::from(([10, 1, host, 1], port)),
    );
    s.cookie = n + 1;
    s.inode = n + 1;
    s
}

#[test]
fn tracked_connections_cost_at_most_400_bytes_each() {
    const LIVE: u64 = 20_000;
    let config = EngineConfig {
        max_closed: 5_000,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config);
    let mut sockets: Vec<SocketRecord> = (0..LIVE).map(conn).collect();
    let mut next = LIVE;
    // 1% churn per tick; after 30 ticks 6,000 have closed, filling the list.
    for tick in 0..30u64 {
        for i in 0..(LIVE / 100) {
            let at = usize::try_from((tick * 7919 + i * 104_729) % LIVE).expect("index");
            sockets[at] = conn(next);
            next += 1;
        }
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + tick);
        engine.ingest(Sample::of_sockets(at, sockets.clone()));
    }
    let mem = engine.memory_estimate();
    let tracked = engine.tracked();
    assert!(tracked >= 24_000, "live and closed both tracked: {tracked}");
    let per_conn = (mem.table + mem.closed) / tracked;
    assert!(
        per_conn <= 400,
        "{per_conn} bytes per tracked connection ({mem:?})"
    );
    assert!(
        mem.history() <= EngineConfig::default().history_bytes,
        "{mem:?}"
    );
}

/// A socket of the synthetic population: ESTABLISHED with tcp_info, as most of
/// a busy server's are (the largest record the sample holds).
fn established(n: u64) -> SocketRecord {
    let mut s = conn(n);
    s.tcp_info = Some(TcpInfoLite {
        rtt_us: 120,
        bytes_acked: n,
        bytes_received: 2 * n,
        ..TcpInfoLite::default()
    });
    s.owner = Ownership::Known {
        pid: 100,
        fd: u32::try_from(n % 1_000_000).expect("fd"),
    };
    s
}

/// The whole path a sample takes, at 100k sockets: the sample's records,
/// the snapshot's views and the engine's table, with the previous snapshot
/// still held by its reader while the next is made (as the screen and serve
/// hold theirs). Bounds the bytes per socket of what is alive at that peak,
/// so that a fatter record, a copy of the table per snapshot or a vector
/// grown by doubling shows up here.
#[test]
fn sample_and_snapshot_path_costs_a_bounded_amount_per_socket() {
    const LIVE: u64 = 100_000;
    // The records' layout, the largest part of the budget.
    assert!(
        size_of::<SocketRecord>() <= 224,
        "SocketRecord is {} bytes",
        size_of::<SocketRecord>()
    );
    assert!(
        size_of::<ConnView>() <= 80,
        "ConnView is {} bytes",
        size_of::<ConnView>()
    );
    let mut engine = Engine::new(EngineConfig::default());
    let mut next = LIVE;
    let mut sockets: Vec<SocketRecord> = (0..LIVE).map(established).collect();
    let mut held: Option<std::sync::Arc<sockscope::model::Snapshot>> = None;
    let mut worst = 0;
    for tick in 0..6u64 {
        for i in 0..(LIVE / 100) {
            let at = usize::try_from((tick * 7919 + i * 104_729) % LIVE).expect("index");
            sockets[at] = established(next);
            next += 1;
        }
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + tick);
        let mut sample = sockets.clone();
        sample.shrink_to_fit();
        let snap = engine.ingest(Sample::of_sockets(at, sample));
        let table = engine.memory_estimate().table;
        let previous = held.replace(std::sync::Arc::clone(&snap));
        let alive = table + snap.socket_bytes() + previous.as_ref().map_or(0, |p| p.socket_bytes());
        worst = worst.max(alive);
    }
    let n = usize::try_from(LIVE).expect("count");
    let per_socket = worst / n;
    assert!(
        per_socket <= 860,
        "{per_socket} bytes per socket at the peak (table, two snapshots' records and views)"
    );
    let last = held.expect("a snapshot");
    let steady = (engine.memory_estimate().table + last.socket_bytes()) / n;
    assert!(
        steady <= 540,
        "{steady} bytes per socket held between samples"
    );
}
