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
    /// SyncookiesSent per second (over the snapshot's interval) at or above which
    /// cookies count as a flood (and TCPReqQFullDrop per second, SYNs dropped), when
    /// they also outnumber SyncookiesRecv by `cookie_ratio` (few cookies come back
    /// from spoofed sources; under legitimate load most do).
    pub cookies_sent_min: u64,
    pub cookie_ratio: f64,
    /// How long, in seconds, a raised SYN flood stays after its signals last
    /// held: a slow flood's counters tick in bursts (half-open entries expire
    /// together, the queue refills, cookies pause), and a flood that pauses
    /// for a few seconds is still the same flood.
    pub syn_flood_linger_secs: u64,

    /// Accept-queue depth as a share of the listener's backlog that counts as full
    /// (the application is not accepting fast enough).
    pub accept_queue_ratio: f64,

    /// CLOSE_WAIT per process (or per port, when the owner is unknown) from which a
    /// leak is suspected, counting only those at least `close_wait_floor_secs`
    /// old (an application takes a moment to notice that its peer closed) ...
    pub close_wait_min: u64,
    pub close_wait_floor_secs: u64,
    /// ... when the oldest of them has been in CLOSE_WAIT this many seconds (the
    /// kernel never times CLOSE_WAIT out: only the application closes it) ...
    pub close_wait_age_secs: u64,
    /// ... or whatever their age when there are this many ...
    pub close_wait_many: u64,
    /// ... or when the process's CLOSE_WAIT count grew by at least this much
    /// and has not gone down since, over a run of at least
    /// `close_wait_growth_ticks` samples (from the engine's per-process series,
    /// kept for the busiest processes): a leak that stopped growing stays
    /// reported while its sockets are held.
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
    /// still unacknowledged and its retransmissions stay backed off at least
    /// `dead_peer_backoff` times (no ACK comes back) in every sample over this
    /// window, in seconds.
    pub dead_peer_idle_secs: u64,
    pub dead_peer_backoff: u8,

    /// Seconds an ESTABLISHED connection must keep Send-Q above zero behind a
    /// zero window (the persist timer probing), in every sample, before its
    /// peer counts as not reading.
    pub zero_window_secs: u64,
    /// Seconds a process's ESTABLISHED sockets must keep Recv-Q above zero, in
    /// every sample, before it counts as not reading them.
    pub unread_secs: u64,
    /// Percent of the bytes a remote host acknowledged that its connections
    /// retransmitted, from which its path counts as lossy (5× is critical).
    pub lossy_retrans_pct: u64,
    /// Bytes its connections must have sent before the share means anything.
    pub lossy_min_bytes: u64,
    /// Seconds the share must stay above the threshold, in every sample.
    pub lossy_window_secs: u64,

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
    ///
    /// Values out of their range ([`Thresholds::validate`]) are refused too,
    /// naming the key.
    pub fn from_toml(text: &str) -> Result<Thresholds, toml::de::Error> {
        let t: Thresholds = toml::from_str(text)?;
        t.validate()
            .map_err(<toml::de::Error as serde::de::Error>::custom)?;
        Ok(t)
    }

    /// Checks every value against its range: shares of a limit are finite and
    /// within 0..=1, other ratios finite and within 0..=1e6, snapshot counts
    /// within 1..=10,000, socket counts at most 100 million, ages at most 30
    /// days. The error names the first key out of range, its value and the range.
    pub fn validate(&self) -> Result<(), String> {
        const COUNT_MAX: u64 = 100_000_000;
        const SECS_MAX: u64 = 30 * 24 * 3600;
        const TICKS: std::ops::RangeInclusive<u64> = 1..=10_000;
        let share = |key: &str, v: f64| -> Result<(), String> {
            if v.is_finite() && (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{key} = {v}: must be a share between 0 and 1"))
            }
        };
        let ratio = |key: &str, v: f64, max: f64| -> Result<(), String> {
            if v.is_finite() && (0.0..=max).contains(&v) {
                Ok(())
            } else {
                Err(format!("{key} = {v}: must be a number between 0 and {max}"))
            }
        };
        let count = |key: &str, v: u64| -> Result<(), String> {
            if v <= COUNT_MAX {
                Ok(())
            } else {
                Err(format!("{key} = {v}: must be at most {COUNT_MAX}"))
            }
        };
        let secs = |key: &str, v: u64| -> Result<(), String> {
            if v <= SECS_MAX {
                Ok(())
            } else {
                Err(format!(
                    "{key} = {v}: must be at most {SECS_MAX} seconds (30 days)"
                ))
            }
        };
        let ticks = |key: &str, v: u64| -> Result<(), String> {
            if TICKS.contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "{key} = {v}: must be between {} and {} snapshots",
                    TICKS.start(),
                    TICKS.end()
                ))
            }
        };
        ticks("raise_after", u64::from(self.raise_after))?;
        ticks("clear_after", u64::from(self.clear_after))?;
        count("syn_recv_min", self.syn_recv_min)?;
        share("syn_recv_warn_ratio", self.syn_recv_warn_ratio)?;
        share("syn_recv_crit_ratio", self.syn_recv_crit_ratio)?;
        count("cookies_sent_min", self.cookies_sent_min)?;
        ratio("cookie_ratio", self.cookie_ratio, 1e6)?;
        secs("syn_flood_linger_secs", self.syn_flood_linger_secs)?;
        share("accept_queue_ratio", self.accept_queue_ratio)?;
        count("close_wait_min", self.close_wait_min)?;
        secs("close_wait_floor_secs", self.close_wait_floor_secs)?;
        secs("close_wait_age_secs", self.close_wait_age_secs)?;
        count("close_wait_many", self.close_wait_many)?;
        count("close_wait_growth", self.close_wait_growth)?;
        ticks(
            "close_wait_growth_ticks",
            u64::try_from(self.close_wait_growth_ticks).unwrap_or(u64::MAX),
        )?;
        share("fd_crit_ratio", self.fd_crit_ratio)?;
        share("ephemeral_warn_ratio", self.ephemeral_warn_ratio)?;
        share("ephemeral_crit_ratio", self.ephemeral_crit_ratio)?;
        count("ephemeral_min", self.ephemeral_min)?;
        count("syn_sent_min", self.syn_sent_min)?;
        count("syn_sent_crit", self.syn_sent_crit)?;
        count("scan_ports_min", self.scan_ports_min)?;
        count("fin_wait2_min", self.fin_wait2_min)?;
        count("fin_wait2_crit", self.fin_wait2_crit)?;
        count("last_ack_min", self.last_ack_min)?;
        secs("last_ack_age_secs", self.last_ack_age_secs)?;
        count("last_ack_crit", self.last_ack_crit)?;
        count("fin_wait1_min", self.fin_wait1_min)?;
        secs("fin_wait1_age_secs", self.fin_wait1_age_secs)?;
        count("fin_wait1_crit", self.fin_wait1_crit)?;
        secs("dead_peer_idle_secs", self.dead_peer_idle_secs)?;
        secs("zero_window_secs", self.zero_window_secs)?;
        secs("unread_secs", self.unread_secs)?;
        secs("lossy_window_secs", self.lossy_window_secs)?;
        if !(1..=20).contains(&self.lossy_retrans_pct) {
            return Err(format!(
                "lossy_retrans_pct = {}: between 1 and 20 (percent)",
                self.lossy_retrans_pct
            ));
        }
        if self.dead_peer_backoff > 15 {
            return Err(format!(
                "dead_peer_backoff = {}: must be at most 15 (the kernel's retries)",
                self.dead_peer_backoff
            ));
        }
        // Orphans are bounded by tcp_max_orphans, but TCP memory can go past
        // its pressure level: a little room above 1.
        ratio("orphan_warn_ratio", self.orphan_warn_ratio, 4.0)?;
        ratio("orphan_crit_ratio", self.orphan_crit_ratio, 4.0)?;
        if self.new_listener_allow.len() > 65_536 {
            return Err("new_listener_allow: more ports than there are".into());
        }
        secs("new_listener_secs", self.new_listener_secs)?;
        Ok(())
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
            syn_flood_linger_secs: 30,
            accept_queue_ratio: 0.9,
            close_wait_min: 20,
            close_wait_floor_secs: 10,
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
            zero_window_secs: 30,
            unread_secs: 30,
            lossy_retrans_pct: 2,
            lossy_min_bytes: 1 << 20,
            lossy_window_secs: 30,
            orphan_warn_ratio: 0.5,
            orphan_crit_ratio: 0.9,
            new_listener_allow: Vec::new(),
            new_listener_secs: 3600,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_in_range() {
        Thresholds::default().validate().expect("defaults");
    }

    #[test]
    fn out_of_range_values_are_refused_by_key() {
        for (toml, key) in [
            ("syn_recv_warn_ratio = nan\n", "syn_recv_warn_ratio"),
            ("fd_crit_ratio = inf\n", "fd_crit_ratio"),
            ("accept_queue_ratio = -0.5\n", "accept_queue_ratio"),
            ("ephemeral_crit_ratio = 1.5\n", "ephemeral_crit_ratio"),
            ("cookie_ratio = -inf\n", "cookie_ratio"),
            ("orphan_crit_ratio = 1e9\n", "orphan_crit_ratio"),
            ("raise_after = 0\n", "raise_after"),
            ("clear_after = 4294967295\n", "clear_after"),
            (
                "close_wait_growth_ticks = 1000000\n",
                "close_wait_growth_ticks",
            ),
            ("close_wait_min = 18446744073709551615\n", "close_wait_min"),
            ("dead_peer_idle_secs = 9999999999\n", "dead_peer_idle_secs"),
            ("dead_peer_backoff = 200\n", "dead_peer_backoff"),
        ] {
            let e = Thresholds::from_toml(toml).expect_err(toml).to_string();
            assert!(e.contains(key), "{toml}: {e}");
        }
    }

    #[test]
    fn edges_of_the_ranges_are_accepted() {
        let t = Thresholds::from_toml(
            "syn_recv_warn_ratio = 1\nfd_crit_ratio = 0.0\nraise_after = 1\n\
             close_wait_min = 100000000\nnew_listener_secs = 2592000\n",
        )
        .expect("in range");
        assert_eq!(t.raise_after, 1);
    }
}
