//! Diagnosis of the rarer troubles: `fin_wait2_stuck`, `last_ack_pileup`,
//! `fin_wait1_pileup`, `dead_peer`, `orphan_pressure` and `new_listener`.

use crate::common;

use std::time::Duration;

use common::script::{Extra, Script, host, listener, of_rule, rules, sock, stock_sysctls};
use sockscope::diagnose::{Severity, Subject, Thresholds};
use sockscope::model::{SocketRecord, Sockstat, Sysctls, TcpInfoLite, TcpState};

fn remote(ip: &str) -> Subject {
    Subject::Remote {
        addr: ip.parse().expect("ip"),
        port: None,
    }
}

/// `n` sockets in `state` from 10.0.0.1 to 10.6.6.6, held by `pid` (or orphaned).
fn closing(state: TcpState, n: u32, pid: Option<u32>) -> Vec<SocketRecord> {
    (0..n)
        .map(|i| {
            sock(
                state,
                &format!("10.0.0.1:{}", 47000 + i),
                "10.6.6.6:8000",
                pid,
            )
        })
        .collect()
}

#[test]
fn owned_fin_wait2_older_than_fin_timeout_is_stuck() {
    let mut s = Script::new();
    let x = Extra {
        processes: vec![(600, "halfclose", None, None)],
        ..Extra::default()
    };
    let v = || closing(TcpState::FinWait2, 15, Some(600));
    assert!(s.feed(Duration::ZERO, v(), &x).is_empty());
    assert!(
        s.feed(Duration::from_secs(59), v(), &x).is_empty(),
        "younger than tcp_fin_timeout"
    );
    assert!(
        s.feed(Duration::from_secs(2), v(), &x).is_empty(),
        "held once"
    );
    let f = s.tick(v(), &x);
    assert_eq!(
        of_rule(&f, "fin_wait2_stuck"),
        vec![(remote("10.6.6.6"), Severity::Warning)]
    );
    assert_eq!(f[0].evidence["pids"], serde_json::json!([600]));
    assert_eq!(f[0].evidence["half_closed_held"], 15);
    assert_eq!(f[0].evidence["orphaned_unreaped"], 0);
    assert!(
        f[0].message.contains("halfclose (pid 600)"),
        "{}",
        f[0].message
    );
    assert!(
        f[0].next_step.contains("state fin-wait-2 dst 10.6.6.6"),
        "{}",
        f[0].next_step
    );
}

#[test]
fn orphaned_fin_wait2_the_kernel_reaps_raise_nothing_however_old() {
    use sockscope::model::{Timer, TimerKind};
    // 500 orphans (inode 0), in FIN_WAIT2 for 61 s (held half-closed a while
    // before the close), each with the timer that reaps it.
    let orphans = || {
        closing(TcpState::FinWait2, 500, None)
            .into_iter()
            .map(|mut s| {
                s.timer = Some(Timer {
                    kind: TimerKind::TimeWait,
                    expires_ms: 20_000,
                    retransmits: 0,
                });
                s
            })
            .collect::<Vec<_>>()
    };
    let mut s = Script::new();
    s.feed(Duration::ZERO, orphans(), &Extra::default());
    s.feed(Duration::from_secs(61), orphans(), &Extra::default());
    for _ in 0..4 {
        let f = s.tick(orphans(), &Extra::default());
        assert!(of_rule(&f, "fin_wait2_stuck").is_empty(), "{f:?}");
    }
    // Orphans past the timeout with no timer at all: a warning, never critical.
    let untimed = || closing(TcpState::FinWait2, 500, None);
    let mut s = Script::new();
    s.feed(Duration::ZERO, untimed(), &Extra::default());
    s.feed(Duration::from_secs(61), untimed(), &Extra::default());
    let f = s.tick(untimed(), &Extra::default());
    assert_eq!(
        of_rule(&f, "fin_wait2_stuck"),
        vec![(remote("10.6.6.6"), Severity::Warning)]
    );
}

#[test]
fn old_last_ack_to_one_remote_is_a_pileup() {
    let mut s = Script::new();
    let x = Extra {
        sockstat: Sockstat {
            orphan: 25,
            ..Sockstat::default()
        },
        ..Extra::default()
    };
    let v = || closing(TcpState::LastAck, 25, None);
    assert!(s.feed(Duration::ZERO, v(), &x).is_empty());
    assert!(
        s.feed(Duration::from_secs(2), v(), &x).is_empty(),
        "young LAST_ACK is normal"
    );
    assert!(s.feed(Duration::from_secs(3), v(), &x).is_empty());
    let f = s.tick(v(), &x);
    assert_eq!(
        of_rule(&f, "last_ack_pileup"),
        vec![(remote("10.6.6.6"), Severity::Warning)]
    );
    assert_eq!(f[0].evidence["orphaned"], 25);
    assert_eq!(f[0].evidence["orphans"], 25);
    // Fewer than the floor: quiet.
    let mut s = Script::new();
    for _ in 0..6 {
        assert!(s.tick(closing(TcpState::LastAck, 5, None), &x).is_empty());
    }
}

#[test]
fn old_fin_wait1_to_one_remote_is_a_pileup_after_hysteresis() {
    let mut s = Script::new();
    let x = Extra {
        sysctls: Some(Sysctls {
            tcp_orphan_retries: Some(0),
            ..stock_sysctls()
        }),
        ..Extra::default()
    };
    let v = || closing(TcpState::FinWait1, 60, None);
    assert!(s.feed(Duration::ZERO, v(), &x).is_empty());
    assert!(
        s.feed(Duration::from_secs(3), v(), &x).is_empty(),
        "young FIN_WAIT1 is a close in progress"
    );
    assert!(
        s.feed(Duration::from_secs(3), v(), &x).is_empty(),
        "held once"
    );
    let f = s.tick(v(), &x);
    assert_eq!(
        of_rule(&f, "fin_wait1_pileup"),
        vec![(remote("10.6.6.6"), Severity::Warning)]
    );
    assert_eq!(f[0].evidence["fin_wait1"], 60);
    assert_eq!(f[0].evidence["orphaned"], 60);
    assert_eq!(f[0].evidence["tcp_orphan_retries"], 0);
    // Below the floor, however old: quiet.
    let mut s = Script::new();
    for _ in 0..4 {
        let f = s.feed(
            Duration::from_secs(10),
            closing(TcpState::FinWait1, 40, None),
            &x,
        );
        assert!(f.is_empty(), "{f:?}");
    }
}

#[test]
fn fin_wait1_spread_over_many_remotes_is_a_host_wide_pileup() {
    // A restart drops every client at once: 10 each to 60 remotes, none at the floor.
    let spread = || -> Vec<SocketRecord> {
        (0..600u32)
            .map(|i| {
                sock(
                    TcpState::FinWait1,
                    &format!("10.0.0.1:{}", 20000 + i),
                    &format!("10.7.0.{}:443", i % 60),
                    None,
                )
            })
            .collect()
    };
    let mut s = Script::new();
    let x = Extra::default();
    assert!(s.feed(Duration::ZERO, spread(), &x).is_empty());
    assert!(s.feed(Duration::from_secs(6), spread(), &x).is_empty());
    let f = s.tick(spread(), &x);
    assert_eq!(
        of_rule(&f, "fin_wait1_pileup"),
        vec![(Subject::Host, Severity::Critical)]
    );
    assert_eq!(f[0].evidence["remotes"], 60);
    assert_eq!(f[0].evidence["fin_wait1"], 600);
}

fn established(info: TcpInfoLite) -> Vec<SocketRecord> {
    let mut a = sock(
        TcpState::Established,
        "10.0.0.1:48000",
        "10.6.6.7:22",
        Some(1),
    );
    a.tcp_info = Some(info);
    vec![a]
}

#[test]
fn an_established_connection_retransmitting_into_silence_is_a_dead_peer() {
    // A push-only stream: the peer never sent data (last_data_recv is the
    // connection's age), and it has ACKed nothing for as long as the backoff
    // has lasted.
    let dead = |silent_ms: u32| TcpInfoLite {
        unacked: 3,
        backoff: 5,
        last_data_recv_ms: 600_000,
        last_ack_recv_ms: silent_ms,
        ..TcpInfoLite::default()
    };
    let mut s = Script::new();
    let mut silent = 2_000;
    assert!(
        s.tick(established(dead(silent)), &Extra::default())
            .is_empty()
    );
    // Backed off in every sample, but not yet for the window (60 s).
    for _ in 0..59 {
        silent += 1_000;
        let f = s.tick(established(dead(silent)), &Extra::default());
        assert!(of_rule(&f, "dead_peer").is_empty(), "at {silent} ms: {f:?}");
    }
    silent += 1_000;
    let f = s.tick(established(dead(silent)), &Extra::default());
    assert_eq!(
        of_rule(&f, "dead_peer"),
        vec![(remote("10.6.6.7"), Severity::Warning)]
    );
    assert_eq!(f[0].evidence["max_backoff"], 5);
    assert_eq!(f[0].evidence["idle_secs"], 62, "from the last ACK: {f:?}");
    assert!(
        f[0].next_step.contains("dst 10.6.6.7 sport = :48000"),
        "{}",
        f[0].next_step
    );
    // Idle but with nothing in flight (a quiet session) is not dead.
    let quiet = TcpInfoLite {
        last_data_recv_ms: 3_600_000,
        last_ack_recv_ms: 3_600_000,
        ..TcpInfoLite::default()
    };
    let mut s = Script::new();
    for _ in 0..70 {
        assert!(s.tick(established(quiet), &Extra::default()).is_empty());
    }
}

#[test]
fn a_short_loss_burst_on_a_push_only_stream_is_no_dead_peer() {
    // The stream is ten minutes old and the peer only ACKs (last data received
    // ten minutes ago); 3 s of loss back the timer off, then the ACKs resume
    // and the backoff returns to 0.
    let burst = |ms: u32, backoff: u8| TcpInfoLite {
        unacked: if backoff > 0 { 40 } else { 2 },
        backoff,
        last_data_recv_ms: 600_000 + ms,
        last_ack_recv_ms: ms,
        ..TcpInfoLite::default()
    };
    let mut s = Script::new();
    for (ms, backoff) in [
        (200, 0),
        (1_200, 2),
        (2_200, 3),
        (3_200, 4),
        (300, 0),
        (100, 0),
    ] {
        let f = s.tick(established(burst(ms, backoff)), &Extra::default());
        assert!(of_rule(&f, "dead_peer").is_empty(), "{f:?}");
    }
    // A backoff that comes back is held anew: 30 s of it is not the window.
    for i in 0..30 {
        let f = s.tick(established(burst(1_000 * i, 4)), &Extra::default());
        assert!(of_rule(&f, "dead_peer").is_empty(), "{f:?}");
    }
}

fn pressure(orphan: u64, mem: u64) -> Extra {
    Extra {
        sockstat: Sockstat {
            orphan,
            mem,
            ..Sockstat::default()
        },
        sysctls: Some(Sysctls {
            tcp_max_orphans: Some(4096),
            tcp_mem: Some([10_000, 20_000, 30_000]),
            ..stock_sysctls()
        }),
        ..Extra::default()
    }
}

#[test]
fn orphans_near_their_limit_raise_orphan_pressure_on_the_host() {
    let mut s = Script::new();
    for _ in 0..3 {
        assert!(s.tick(Vec::new(), &pressure(1000, 5000)).is_empty());
    }
    s.tick(Vec::new(), &pressure(3000, 5000));
    let f = s.tick(Vec::new(), &pressure(3000, 5000));
    assert_eq!(
        of_rule(&f, "orphan_pressure"),
        vec![(Subject::Host, Severity::Warning)]
    );
    assert_eq!(f[0].evidence["orphans"], 3000);
    assert_eq!(f[0].evidence["tcp_max_orphans"], 4096);
    // Memory past the pressure level: critical.
    s.tick(Vec::new(), &pressure(3000, 19_000));
    let f = s.tick(Vec::new(), &pressure(3000, 19_000));
    assert_eq!(
        of_rule(&f, "orphan_pressure"),
        vec![(Subject::Host, Severity::Critical)]
    );
}

fn nc() -> Extra {
    Extra {
        processes: vec![(100, "nginx", None, None), (700, "nc", None, None)],
        ..Extra::default()
    }
}

#[test]
fn a_port_that_starts_listening_is_reported_with_its_process() {
    let mut s = Script::new();
    let old = || vec![listener("0.0.0.0:80", 0, 128, 100)];
    let both = || {
        let mut v = old();
        v.push(listener("0.0.0.0:4444", 0, 1, 700));
        v
    };
    assert!(
        s.tick(old(), &nc()).is_empty(),
        "listeners there at the start are quiet"
    );
    assert!(s.tick(both(), &nc()).is_empty());
    let f = s.tick(both(), &nc());
    assert_eq!(rules(&f), vec!["new_listener"]);
    assert_eq!(f[0].subject, Subject::LocalPort { port: 4444 });
    assert_eq!(f[0].evidence["pid"], 700);
    assert_eq!(f[0].evidence["process"], "nc");
    assert_eq!(f[0].evidence["exe"], "/usr/bin/nc");
    assert!(
        f[0].message.contains("nc (pid 700, /usr/bin/nc)"),
        "{}",
        f[0].message
    );
    // It stops listening: cleared after three.
    for i in 0..3 {
        assert_eq!(s.tick(old(), &nc()).is_empty(), i == 2, "{i}");
    }
    // Allowlisted: quiet.
    let mut s = Script::with(Thresholds {
        new_listener_allow: vec![4444],
        ..Thresholds::default()
    });
    s.tick(old(), &nc());
    for _ in 0..4 {
        assert!(s.tick(both(), &nc()).is_empty());
    }
}

#[test]
fn a_new_listener_is_reported_for_a_while_only() {
    let mut s = Script::with(Thresholds {
        new_listener_secs: 10,
        ..Thresholds::default()
    });
    let v = || vec![listener(&format!("{}:4444", host(0)), 0, 1, 700)];
    s.tick(Vec::new(), &nc());
    s.tick(v(), &nc());
    assert_eq!(rules(&s.tick(v(), &nc())), vec!["new_listener"]);
    s.feed(Duration::from_secs(20), v(), &nc());
    s.tick(v(), &nc());
    assert!(
        s.tick(v(), &nc()).is_empty(),
        "cleared once past the window"
    );
}
