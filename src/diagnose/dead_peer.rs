//! `dead_peer`: ESTABLISHED connections whose peer vanished without a FIN or RST
//! (crashed, unplugged, or a middlebox that forgot the flow).
//!
//! Seen in `tcp_info`: data sent and never acknowledged, retransmissions backed
//! off several times, nothing received for a long while. Such a connection stays
//! ESTABLISHED until `tcp_retries2` gives up (about 15 minutes by default), or
//! forever when nothing is sent and no keepalive is set. Needs netlink (the /proc
//! fallback has no `tcp_info`), and is judged per remote host.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::util::{Holders, ext_delta, opt, put};
use super::{Candidate, Evidence, NetnsView, Rule, Severity, Subject, Thresholds};
use crate::model::{TcpState, TimerKind};

pub struct DeadPeer;

#[derive(Default)]
struct Group {
    count: u64,
    unacked: u64,
    max_backoff: u8,
    idle_ms: u32,
    keepalive: u64,
    holders: Holders,
}

impl Rule for DeadPeer {
    fn id(&self) -> &'static str {
        "dead_peer"
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        super::RuleDoc {
            subject: "remote host",
            fires: format!(
                "ESTABLISHED with unacknowledged data, backoff ≥ {} and nothing received for {} s (needs netlink's tcp_info)",
                t.dead_peer_backoff, t.dead_peer_idle_secs
            ),
            critical: "never".into(),
        }
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let idle_ms = cfg.dead_peer_idle_secs.saturating_mul(1000);
        let mut groups: BTreeMap<IpAddr, Group> = BTreeMap::new();
        for (i, s) in ns.sockets() {
            let Some(info) = s.tcp_info else { continue };
            let dead = s.state == TcpState::Established
                && info.unacked > 0
                && info.backoff >= cfg.dead_peer_backoff
                && u64::from(info.last_data_recv_ms) >= idle_ms;
            if !dead {
                continue;
            }
            let g = groups.entry(s.remote.ip()).or_default();
            g.count += 1;
            g.unacked += u64::from(info.unacked);
            g.max_backoff = g.max_backoff.max(info.backoff);
            g.idle_ms = g.idle_ms.max(info.last_data_recv_ms);
            g.keepalive += u64::from(s.timer.is_some_and(|t| t.kind == TimerKind::Keepalive));
            g.holders.add(ns.snap, i, s);
        }
        let sys = ns.sysctls();
        groups
            .into_iter()
            .map(|(addr, g)| {
                let mut ev = Evidence::new();
                put(&mut ev, "connections", g.count);
                put(&mut ev, "unacked_segments", g.unacked);
                put(&mut ev, "max_backoff", g.max_backoff);
                put(&mut ev, "idle_secs", u64::from(g.idle_ms / 1000));
                put(&mut ev, "with_keepalive_timer", g.keepalive);
                g.holders.evidence(&mut ev);
                put(&mut ev, "tcp_retries2", opt(sys.tcp_retries2));
                put(&mut ev, "tcp_keepalive_time", opt(sys.tcp_keepalive_time));
                put(&mut ev, "TCPAbortOnTimeout", ext_delta(ns, "TCPAbortOnTimeout"));
                put(&mut ev, "TCPKeepAlive", ext_delta(ns, "TCPKeepAlive"));
                Candidate {
                    subject: Subject::Remote { addr, port: None },
                    severity: Severity::Warning,
                    evidence: ev,
                    message: format!(
                        "{} ESTABLISHED connections to {addr}{}{} retransmit unacknowledged data with backoff {} \
                         and have heard nothing for {} s: the peer is gone without closing",
                        g.count,
                        g.holders.words(),
                        ns.at(),
                        g.max_backoff,
                        g.idle_ms / 1000
                    ),
                    next_step: "check the peer host and any NAT or firewall between; enable TCP keepalive (or \
                                TCP_USER_TIMEOUT) in the application so dead peers are dropped sooner"
                        .into(),
                }
            })
            .collect()
    }
}
