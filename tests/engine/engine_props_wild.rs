//! The engine under input the tidy properties do not generate: samples from
//! netlink and from the /proc fallback (no cookies) mixed at random, cookies that
//! change under the same endpoints, endpoints reused by different cookies,
//! duplicate records, inodes appearing and vanishing, and sample times that stand
//! still or go backwards. Whatever comes, the engine must not panic, its view must
//! match the sample socket for socket, and its memory must stay within bounds.

use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use sockscope::model::{Engine, EngineConfig, Sample, SocketRecord, StateCounts, TcpState};

/// One socket of a sample: a cookie (0 = read from /proc), which of a few
/// endpoint pairs, a state, and an inode.
type Rec = (u64, u8, TcpState, u64);

/// One sample: its time offset in seconds (may go backwards) and its records.
type Step = (i64, Vec<Rec>);

fn arb_rec() -> impl Strategy<Value = Rec> {
    (
        prop_oneof![Just(0u64), 1u64..8],
        0u8..6,
        prop::sample::select(TcpState::ALL.to_vec()),
        prop_oneof![Just(0u64), 1u64..10],
    )
}

fn arb_steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((-2i64..4, prop::collection::vec(arb_rec(), 0..10)), 1..30)
}

fn endpoints(pair: u8) -> (SocketAddr, SocketAddr) {
    let port = 1000 + u16::from(pair % 3);
    let peer = 80 + u16::from(pair / 3);
    (
        SocketAddr::from(([10, 0, 0, 1], port)),
        SocketAddr::from(([10, 0, 0, 2], peer)),
    )
}

fn sample(secs: i64, recs: &[Rec]) -> Sample {
    let at = UNIX_EPOCH + Duration::from_secs(1_000_000u64.saturating_add_signed(secs));
    let sockets = recs
        .iter()
        .map(|&(cookie, pair, state, inode)| {
            let (local, remote) = endpoints(pair);
            let mut s = SocketRecord::new(state, local, remote);
            s.cookie = cookie;
            s.inode = inode;
            s
        })
        .collect();
    Sample::of_sockets(at, sockets)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_is_survived_and_mirrored(
        steps in arb_steps(),
        history_bytes in 0usize..4000,
        max_closed in 0usize..5,
    ) {
        let config = EngineConfig {
            history_bytes,
            max_closed,
            series_len: 4,
            top_n: 2,
            ..EngineConfig::default()
        };
        let mut engine = Engine::new(config);
        let mut clock = 0i64;
        for (offset, recs) in &steps {
            clock += offset;
            let s = sample(clock, recs);
            let want = StateCounts::tally(s.sockets.iter().map(|r| r.state));
            let n = s.sockets.len();
            let snap = engine.ingest(s);
            prop_assert_eq!(snap.conns.len(), n, "one view per socket");
            prop_assert_eq!(snap.aggregates.counts, want);
            let mem = engine.memory_estimate();
            prop_assert!(mem.history() <= history_bytes.max(1) + 4096, "history {} over {}", mem.history(), history_bytes);
            prop_assert!(engine.tracked() <= n + max_closed + n, "tracked {} with {} live", engine.tracked(), n);
        }
    }
}
