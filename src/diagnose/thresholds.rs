//! The diagnosis thresholds, with defaults meant for a busy but healthy server:
//! each can be overridden from a TOML file (`--thresholds`, every field optional;
//! `assets/thresholds.toml` lists them all with their defaults).

use serde::{Deserialize, Serialize};

/// When a rule's condition counts as holding, and how long it must hold.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Consecutive snapshots a condition must hold before it is reported (one odd
    /// sample is not a trouble).
    pub raise_after: u32,
    /// Consecutive snapshots a reported condition must be false before it is
    /// cleared (so it does not flap around its threshold). Also used for a
    /// severity to come down.
    pub clear_after: u32,

    /// SYN_RECV on a port below this never counts as a flood, whatever its backlog
    /// (a small backlog on a quiet port holds a few half-open connections).
    pub syn_recv_min: u64,
    /// SYN_RECV as a share of the port's half-open limit (its backlog capped by
    /// `tcp_max_syn_backlog`) for a warning ...
    pub syn_recv_warn_ratio: f64,
    /// ... and for critical: the kernel is about to drop or cookie new SYNs.
    pub syn_recv_crit_ratio: f64,
    /// SyncookiesSent per snapshot at or above which cookies count as a flood, when
    /// they also outnumber SyncookiesRecv by `cookie_ratio` (few cookies come back
    /// from spoofed sources; under legitimate load most do).
    pub cookies_sent_min: u64,
    pub cookie_ratio: f64,

    /// Accept-queue depth as a share of the listener's backlog that counts as full
    /// (the application is not accepting fast enough).
    pub accept_queue_ratio: f64,

    /// CLOSE_WAIT per process (or per port, when the owner is unknown) from which a
    /// leak is suspected ...
    pub close_wait_min: u64,
    /// ... when the oldest of them has been in CLOSE_WAIT this many seconds (the
    /// kernel never times CLOSE_WAIT out: only the application closes it) ...
    pub close_wait_age_secs: u64,
    /// ... or whatever their age when there are this many ...
    pub close_wait_many: u64,
    /// ... or when the process's CLOSE_WAIT count has not gone down over the last
    /// `close_wait_growth_ticks` samples and grew by at least this much (from the
    /// engine's per-process series, kept for the busiest processes).
    pub close_wait_growth: u64,
    pub close_wait_growth_ticks: usize,
    /// Open descriptors as a share of the process's limit that makes a leak critical.
    pub fd_crit_ratio: f64,

    /// Client connections to one destination (local ip, remote ip, remote port), as
    /// a share of the usable ephemeral ports, for a warning ...
    pub ephemeral_warn_ratio: f64,
    /// ... and for critical (connect() is about to fail with EADDRNOTAVAIL).
    pub ephemeral_crit_ratio: f64,
    /// Below this many connections to a destination nothing is reported, whatever
    /// the port range (a deliberately tiny range in a test is not exhaustion).
    pub ephemeral_min: u64,

    /// SYN_SENT per process (or per remote, when the owner is unknown) that counts
    /// as a storm ...
    pub syn_sent_min: u64,
    /// ... and critical from this many.
    pub syn_sent_crit: u64,
    /// Distinct remote ports among one process's SYN_SENT from which it looks like
    /// a scan rather than one unreachable upstream.
    pub scan_ports_min: u64,

    /// FIN_WAIT2 older than `tcp_fin_timeout` to one remote host from which they
    /// count as stuck (only sockets still owned by a process live that long) ...
    pub fin_wait2_min: u64,
    /// ... and critical from this many.
    pub fin_wait2_crit: u64,

    /// LAST_ACK to one remote host, at least `last_ack_age_secs` old, from which
    /// they count as a pileup (a healthy LAST_ACK lasts one round trip) ...
    pub last_ack_min: u64,
    pub last_ack_age_secs: u64,
    /// ... and critical from this many.
    pub last_ack_crit: u64,

    /// FIN_WAIT1 at least `fin_wait1_age_secs` old (our FIN still unacknowledged:
    /// a healthy one lasts a round trip), to one remote host or host-wide, from
    /// which they count as a pileup, as after a restart closed many connections
    /// to peers that vanished or stopped reading ...
    pub fin_wait1_min: u64,
    pub fin_wait1_age_secs: u64,
    /// ... and critical from this many.
    pub fin_wait1_crit: u64,

    /// An ESTABLISHED connection counts as a dead peer when it has sent data
    /// still unacknowledged, has backed off its retransmissions at least
    /// `dead_peer_backoff` times, and has received nothing for this long.
    pub dead_peer_idle_secs: u64,
    pub dead_peer_backoff: u8,

    /// Orphaned sockets (sockstat) as a share of `tcp_max_orphans`, and TCP memory
    /// (pages) as a share of the `tcp_mem` pressure level, for a warning ...
    pub orphan_warn_ratio: f64,
    /// ... and for critical.
    pub orphan_crit_ratio: f64,

    /// Ports that may start listening without a finding (e.g. a service's
    /// ephemeral debug port).
    pub new_listener_allow: Vec<u16>,
    /// How long a port that started listening stays reported, in seconds.
    pub new_listener_secs: u64,
}

impl Thresholds {
    /// Thresholds from a TOML document whose keys are this struct's fields: the
    /// missing ones keep their default, an unknown key or a wrong type is refused
    /// (a typo must not silently leave a default in force). The error's display
    /// names the line and column and quotes the offending line.
    pub fn from_toml(text: &str) -> Result<Thresholds, toml::de::Error> {
        toml::from_str(text)
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            raise_after: 2,
            clear_after: 3,
            syn_recv_min: 16,
            syn_recv_warn_ratio: 0.5,
            syn_recv_crit_ratio: 0.9,
            cookies_sent_min: 10,
            cookie_ratio: 4.0,
            accept_queue_ratio: 0.9,
            close_wait_min: 20,
            close_wait_age_secs: 60,
            close_wait_many: 500,
            close_wait_growth: 10,
            close_wait_growth_ticks: 5,
            fd_crit_ratio: 0.9,
            ephemeral_warn_ratio: 0.5,
            ephemeral_crit_ratio: 0.9,
            ephemeral_min: 100,
            syn_sent_min: 20,
            syn_sent_crit: 200,
            scan_ports_min: 10,
            fin_wait2_min: 10,
            fin_wait2_crit: 500,
            last_ack_min: 20,
            last_ack_age_secs: 5,
            last_ack_crit: 500,
            fin_wait1_min: 50,
            fin_wait1_age_secs: 5,
            fin_wait1_crit: 500,
            dead_peer_idle_secs: 60,
            dead_peer_backoff: 3,
            orphan_warn_ratio: 0.5,
            orphan_crit_ratio: 0.9,
            new_listener_allow: Vec::new(),
            new_listener_secs: 3600,
        }
    }
}
