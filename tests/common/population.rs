//! The known population of the live tests: who holds what, and the counts it makes.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use sockscope::model::TcpState;

use super::lab::LabProcess;

/// The population: a server S and a client C.
/// - L1 (backlog 128): 5 held ESTABLISHED pairs; 3 pairs the client closed and the
///   server never will (3 CLOSE_WAIT at S, 3 orphaned FIN_WAIT2 at C); 2 pairs the
///   server closed first (2 TIME_WAIT at S once C closes too).
/// - L3 (backlog 4), never accepting: 3 connections waiting in its accept queue
///   (3 ESTABLISHED owned by nobody at S's end, 3 held by C).
pub struct Population {
    pub server: LabProcess,
    pub client: LabProcess,
    pub l1: u16,
    pub l3: u16,
}

/// Builds the population; the caller closes the client's "tw" group to turn the
/// server's two closed connections into TIME_WAIT.
pub fn build_population() -> Population {
    let mut server = LabProcess::spawn();
    let mut client = LabProcess::spawn();
    let l1 = server.listen("127.0.0.1:0", 128);
    let l3 = server.listen("127.0.0.1:0", 4);
    let to = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));

    client.connect(to(l1), 5, "held");
    server.accept(l1, 5, "held");

    client.connect(to(l1), 3, "cw");
    server.accept(l1, 3, "cw");
    client.close("cw");

    client.connect(to(l1), 2, "tw");
    server.accept(l1, 2, "tw");
    server.close("tw");

    client.connect(to(l3), 3, "queued");
    Population {
        server,
        client,
        l1,
        l3,
    }
}

/// The per-state counts of the sockets on L1 and L3 once settled.
pub fn expected_counts() -> BTreeMap<TcpState, u64> {
    BTreeMap::from([
        (TcpState::Listen, 2),
        (TcpState::Established, 5 + 5 + 3 + 3),
        (TcpState::CloseWait, 3),
        (TcpState::FinWait2, 3),
        (TcpState::TimeWait, 2),
    ])
}
