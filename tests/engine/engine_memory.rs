//! The engine's memory per tracked connection at scale: DESIGN's goal is at most
//! 400 bytes per tracked socket plus the history bound. 20k live connections with
//! 1% churn per tick, until the recently-closed list is full too.

use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use sockscope::model::{Engine, EngineConfig, Sample, SocketRecord, TcpState};

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
