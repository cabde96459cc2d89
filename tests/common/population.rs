//! The known population of the live tests: who holds what, and the counts it makes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use sockscope::model::TcpState;

use super::lab::LabProcess;

/// The population: a server S and a client C.
/// - L1 (backlog 128): 5 held ESTABLISHED pairs; 3 pairs the client closed and the
///   server never will (3 CLOSE_WAIT at S, 3 orphaned FIN_WAIT2 at C); 2 pairs the
///   server closed first (2 TIME_WAIT at S once C closes too).
/// - L3 (backlog 4), never accepting: 3 connections waiting in its accept queue
///   (3 ESTABLISHED owned by nobody at S's end, 3 held by C).
/// - L6 on [::1] (when the host has IPv6 loopback): 2 held ESTABLISHED pairs.
pub struct Population {
    pub server: LabProcess,
    pub client: LabProcess,
    pub l1: u16,
    pub l3: u16,
    pub l6: Option<u16>,
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

    let l6 = server.try_listen("[::1]:0", 128);
    match l6 {
        Some(p) => {
            client.connect(SocketAddr::from((Ipv6Addr::LOCALHOST, p)), 2, "v6");
            server.accept(p, 2, "v6");
        }
        None => eprintln!("note: no IPv6 loopback here; the population is IPv4 only"),
    }
    Population {
        server,
        client,
        l1,
        l3,
        l6,
    }
}

impl Population {
    /// The listeners' endpoints.
    pub fn listeners(&self) -> Vec<SocketAddr> {
        let mut v = vec![
            SocketAddr::from((Ipv4Addr::LOCALHOST, self.l1)),
            SocketAddr::from((Ipv4Addr::LOCALHOST, self.l3)),
        ];
        v.extend(self.l6.map(|p| SocketAddr::from((Ipv6Addr::LOCALHOST, p))));
        v
    }

    /// Whether a socket belongs to the population: one of its ends is a listener's
    /// endpoint. (A port number alone could match another test's connection from
    /// another loopback address whose ephemeral port happens to be the same.)
    pub fn is_ours(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        let l = self.listeners();
        l.contains(&local) || l.contains(&remote)
    }

    /// The same selection in the filter language.
    pub fn filter(&self) -> String {
        self.listeners()
            .iter()
            .map(|a| {
                let ip = match a.ip() {
                    IpAddr::V4(v4) => v4.to_string(),
                    IpAddr::V6(v6) => format!("[{v6}]"),
                };
                let p = a.port();
                format!("(laddr:{ip} lport:{p}) | (raddr:{ip} rport:{p})")
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// The pid that must own a socket of the population, or `None` for sockets no
    /// process holds (TIME_WAIT, orphaned FIN_WAIT2, connections in L3's queue).
    pub fn expected_owner(&self, state: TcpState, local: SocketAddr) -> Option<u32> {
        let at_server = self.listeners().contains(&local);
        let l3 = SocketAddr::from((Ipv4Addr::LOCALHOST, self.l3));
        match state {
            TcpState::TimeWait | TcpState::FinWait2 => None,
            TcpState::Established if local == l3 => None,
            _ if at_server => Some(self.server.pid),
            _ => Some(self.client.pid),
        }
    }

    /// The per-state counts of the population once settled.
    pub fn expected_counts(&self) -> BTreeMap<TcpState, u64> {
        let v6 = u64::from(self.l6.is_some());
        BTreeMap::from([
            (TcpState::Listen, 2 + v6),
            (TcpState::Established, 5 + 5 + 3 + 3 + 4 * v6),
            (TcpState::CloseWait, 3),
            (TcpState::FinWait2, 3),
            (TcpState::TimeWait, 2),
        ])
    }
}
