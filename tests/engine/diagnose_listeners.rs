//! Diagnosis of listening ports: `syn_flood` and `accept_queue_overflow`, their
//! thresholds and hysteresis, and that neither is mistaken for the other.

use crate::common;

use common::script::{Extra, Script, host, listener, of_rule, rules, sock};
use sockscope::diagnose::{Severity, Subject};
use sockscope::model::{SocketRecord, TcpState};

/// A listener on port 80 (backlog 128) and `n` half-open connections to it from
/// `n` distinct sources.
fn half_open(n: u32) -> Vec<SocketRecord> {
    let mut v = vec![listener("0.0.0.0:80", 0, 128, 100)];
    v.extend((0..n).map(|i| {
        sock(
            TcpState::SynRecv,
            "10.0.0.1:80",
            &format!("{}:40000", host(1000 + i)),
            None,
        )
    }));
    v
}

fn web() -> Extra {
    Extra {
        processes: vec![(100, "nginx", Some(50), Some(1024))],
        ..Extra::default()
    }
}

const PORT80: Subject = Subject::LocalPort { port: 80 };

#[test]
fn syn_recv_over_half_the_backlog_raises_after_two_and_clears_after_three() {
    let mut s = Script::new();
    let x = web();
    assert!(
        s.tick(half_open(100), &x).is_empty(),
        "not after one snapshot"
    );
    let f = s.tick(half_open(100), &x);
    assert_eq!(of_rule(&f, "syn_flood"), vec![(PORT80, Severity::Warning)]);
    assert_eq!(
        rules(&f),
        vec!["syn_flood"],
        "a SYN flood is not an accept-queue overflow"
    );
    let ev = &f[0].evidence;
    assert_eq!(ev["syn_recv"], 100);
    assert_eq!(ev["distinct_sources"], 100);
    assert_eq!(ev["backlog"], 128);
    assert_eq!(ev["tcp_max_syn_backlog"], 1024);
    let since = f[0].since;
    // Two quiet snapshots keep it, the third clears it.
    for _ in 0..2 {
        let f = s.tick(half_open(2), &x);
        assert_eq!(of_rule(&f, "syn_flood"), vec![(PORT80, Severity::Warning)]);
        assert_eq!(f[0].since, since, "since is when it was first raised");
    }
    // A flood lingers 30 s after its signals last held (a slow flood's come
    // in bursts), then clears.
    for _ in 2..29 {
        assert!(!s.tick(half_open(2), &x).is_empty(), "lingers");
    }
    assert!(s.tick(half_open(2), &x).is_empty());
}

#[test]
fn below_the_ratio_or_the_floor_is_quiet() {
    let mut s = Script::new();
    for _ in 0..5 {
        assert!(
            s.tick(half_open(50), &web()).is_empty(),
            "50 of 128 is below half"
        );
    }
    let mut small = Script::new();
    for _ in 0..5 {
        let mut v = vec![listener("0.0.0.0:80", 0, 8, 100)];
        v.extend(half_open(10).into_iter().skip(1));
        assert!(
            small.tick(v, &web()).is_empty(),
            "10 is below the floor of 16"
        );
    }
}

#[test]
fn a_nearly_full_half_open_queue_is_critical_and_comes_down_without_flapping() {
    let mut s = Script::new();
    let x = web();
    s.tick(half_open(120), &x);
    let f = s.tick(half_open(120), &x);
    assert_eq!(of_rule(&f, "syn_flood"), vec![(PORT80, Severity::Critical)]);
    // Back to a warning level: stays critical for two, drops on the third.
    for _ in 0..2 {
        let f = s.tick(half_open(80), &x);
        assert_eq!(of_rule(&f, "syn_flood"), vec![(PORT80, Severity::Critical)]);
    }
    let f = s.tick(half_open(80), &x);
    assert_eq!(of_rule(&f, "syn_flood"), vec![(PORT80, Severity::Warning)]);
}

fn cookies(sent: u64, recv: u64, drop: u64) -> Extra {
    Extra {
        tcp_ext: vec![
            ("SyncookiesSent", sent),
            ("SyncookiesRecv", recv),
            ("TCPReqQFullDrop", drop),
            ("ListenDrops", drop),
        ],
        ..web()
    }
}

#[test]
fn syncookie_counters_alone_raise_syn_flood_on_the_host() {
    // Cookies hide the SYN_RECV entries: the listener shows almost none.
    let mut s = Script::new();
    assert!(s.tick(half_open(3), &cookies(0, 0, 0)).is_empty());
    assert!(
        s.tick(half_open(3), &cookies(500, 1, 0)).is_empty(),
        "one delta is not enough"
    );
    let f = s.tick(half_open(3), &cookies(1000, 2, 0));
    assert_eq!(
        of_rule(&f, "syn_flood"),
        vec![(Subject::Host, Severity::Warning)]
    );
    assert_eq!(f[0].evidence["SyncookiesSent"], 500);
    assert_eq!(f[0].evidence["tcp_syncookies"], 1);
    // SYNs dropped on a full queue: critical once it held twice.
    s.tick(half_open(3), &cookies(1500, 3, 20));
    let f = s.tick(half_open(3), &cookies(2000, 4, 40));
    assert_eq!(
        of_rule(&f, "syn_flood"),
        vec![(Subject::Host, Severity::Critical)]
    );
    // Counters stop: cleared after three quiet snapshots, once 30 s passed
    // since the signals last held.
    for _ in 0..2 {
        assert!(!s.tick(half_open(3), &cookies(2000, 4, 40)).is_empty());
    }
    assert!(
        !s.feed(
            std::time::Duration::from_secs(27),
            half_open(3),
            &cookies(2000, 4, 40)
        )
        .is_empty(),
        "lingers"
    );
    assert!(s.tick(half_open(3), &cookies(2000, 4, 40)).is_empty());
}

#[test]
fn cookies_that_come_back_are_legitimate_load_and_a_backlog_too_small() {
    let mut s = Script::new();
    for i in 0..6 {
        let f = s.tick(half_open(3), &cookies(100 * i, 95 * i, 0));
        // Deltas from the second sample: held twice by the third.
        let want = if i >= 2 {
            vec!["syn_backlog_too_small"]
        } else {
            vec![]
        };
        assert_eq!(rules(&f), want, "{i}: not a flood");
    }
    // The counters stop: the finding keeps its last evidence until it clears.
    let f = s.tick(half_open(3), &cookies(500, 475, 0));
    assert_eq!(f[0].subject, Subject::Host);
    assert_eq!(f[0].evidence["SyncookiesSent"], 100);
    assert_eq!(f[0].evidence["SyncookiesRecv"], 95);
}

#[test]
fn cookies_are_pinned_on_the_port_whose_half_open_queue_is_high() {
    let mut s = Script::new();
    s.tick(half_open(40), &cookies(0, 0, 0));
    s.tick(half_open(40), &cookies(500, 0, 0));
    let f = s.tick(half_open(40), &cookies(1000, 0, 0));
    assert_eq!(of_rule(&f, "syn_flood"), vec![(PORT80, Severity::Warning)]);
}

/// A listener on 8080 whose accept queue holds `queue` established connections
/// (backlog 128), and ListenOverflows at `overflows`.
fn backed_up(queue: u32, overflows: u64) -> (Vec<SocketRecord>, Extra) {
    let mut v = vec![listener("0.0.0.0:8080", queue, 128, 200)];
    v.extend((0..queue).map(|i| {
        sock(
            TcpState::Established,
            "10.0.0.1:8080",
            &format!("10.9.0.1:{}", 20000 + i),
            None,
        )
    }));
    let x = Extra {
        processes: vec![(200, "slowapp", Some(20), Some(1024))],
        tcp_ext: vec![("ListenOverflows", overflows), ("ListenDrops", overflows)],
        ..Extra::default()
    };
    (v, x)
}

#[test]
fn a_full_accept_queue_is_an_overflow_not_a_syn_flood() {
    let mut s = Script::new();
    let (v, x) = backed_up(129, 0);
    assert!(s.tick(v, &x).is_empty());
    let (v, x) = backed_up(129, 40);
    let f = s.tick(v, &x);
    assert_eq!(
        of_rule(&f, "accept_queue_overflow"),
        vec![(Subject::LocalPort { port: 8080 }, Severity::Warning)],
        "the first delta comes with the second sample; critical needs two"
    );
    let (v, x) = backed_up(129, 80);
    let f = s.tick(v, &x);
    assert_eq!(
        of_rule(&f, "accept_queue_overflow"),
        vec![(Subject::LocalPort { port: 8080 }, Severity::Critical)]
    );
    assert_eq!(rules(&f), vec!["accept_queue_overflow"], "not a SYN flood");
    assert!(f[0].message.contains("not a SYN flood"), "{}", f[0].message);
    assert_eq!(f[0].evidence["accept_queue"], 129);
    assert_eq!(f[0].evidence["backlog"], 128);
    assert_eq!(f[0].evidence["ListenOverflows"], 40);
    // The application catches up: cleared after three.
    for i in 0..3 {
        let (v, x) = backed_up(3, 80);
        let f = s.tick(v, &x);
        assert_eq!(f.is_empty(), i == 2, "{i}: {:?}", rules(&f));
    }
}

#[test]
fn a_queue_below_its_backlog_is_quiet() {
    let mut s = Script::new();
    for _ in 0..5 {
        let (v, x) = backed_up(60, 0);
        assert!(s.tick(v, &x).is_empty());
    }
}

#[test]
fn listen_overflows_without_a_full_listener_are_pinned_on_the_host() {
    let mut s = Script::new();
    for (i, n) in [0, 10, 20, 30].into_iter().enumerate() {
        let (v, x) = backed_up(2, n);
        let f = s.tick(v, &x);
        let want = if i >= 2 {
            vec![(Subject::Host, Severity::Warning)]
        } else {
            vec![]
        };
        assert_eq!(of_rule(&f, "accept_queue_overflow"), want, "{i}");
    }
}

#[test]
fn the_json_snapshot_carries_the_findings() {
    let mut s = Script::new();
    s.tick(half_open(100), &web());
    let findings = s.tick(half_open(100), &web());
    let snap = s.last.as_ref().expect("a snapshot");
    let filter = sockscope::filter::Filter::parse("").expect("empty filter");
    let all: Vec<usize> = (0..snap.sample.sockets.len()).collect();
    let mut out = Vec::new();
    sockscope::export::write_json(&mut out, snap, &all, &filter, &findings, false)
        .expect("write json");
    let doc: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    assert_eq!(doc["version"], 1);
    let f = &doc["findings"][0];
    assert_eq!(f["rule"], "syn_flood");
    assert_eq!(f["severity"], "warning");
    assert_eq!(
        f["subject"],
        serde_json::json!({"kind": "local_port", "port": 80})
    );
    assert_eq!(f["evidence"]["syn_recv"], 100);
    assert_eq!(f["evidence"]["tcp_max_syn_backlog"], 1024);
    assert_eq!(f["since"], "2023-11-14T22:13:22.000Z");
    assert!(f["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(f["next_step"].as_str().is_some_and(|m| !m.is_empty()));
}

#[test]
fn with_syncookies_off_the_flood_says_syns_are_dropped_and_to_turn_cookies_on() {
    let off = |drop: u64| Extra {
        sysctls: Some(sockscope::model::Sysctls {
            tcp_syncookies: Some(0),
            ..common::script::stock_sysctls()
        }),
        ..cookies(0, 0, drop)
    };
    let mut s = Script::new();
    s.tick(half_open(120), &off(0));
    s.tick(half_open(120), &off(83));
    let f = s.tick(half_open(120), &off(166));
    assert_eq!(of_rule(&f, "syn_flood"), vec![(PORT80, Severity::Critical)]);
    let msg = &f[0].message;
    assert!(!msg.contains("cookies are being sent"), "{msg}");
    assert!(msg.contains("83 SYNs were dropped"), "{msg}");
    assert!(
        f[0].next_step.starts_with("turn SYN cookies on"),
        "{}",
        f[0].next_step
    );
    assert_eq!(f[0].evidence["tcp_syncookies"], 0);
    assert_eq!(f[0].evidence["SyncookiesSent"], 0);

    // No port shows it (few SYN_RECV): on the host, said the same way.
    let mut s = Script::new();
    s.tick(half_open(3), &off(0));
    s.tick(half_open(3), &off(83));
    let f = s.tick(half_open(3), &off(166));
    assert_eq!(
        of_rule(&f, "syn_flood"),
        vec![(Subject::Host, Severity::Critical)]
    );
    assert!(
        f[0].message
            .starts_with("83 SYNs dropped on a full half-open queue and no SYN cookie sent"),
        "{}",
        f[0].message
    );
    assert!(f[0].next_step.starts_with("turn SYN cookies on"));

    // With cookies on and being sent, the message says so and the next step
    // does not ask to turn them on.
    let mut s = Script::new();
    s.tick(half_open(120), &cookies(0, 0, 0));
    s.tick(half_open(120), &cookies(500, 1, 0));
    let f = s.tick(half_open(120), &cookies(1000, 2, 0));
    let msg = &f[0].message;
    assert!(msg.contains("cookies are being sent"), "{msg}");
    assert!(!f[0].next_step.starts_with("turn SYN cookies on"));
}

#[test]
fn one_source_is_one_source() {
    let mut v = vec![listener("0.0.0.0:80", 0, 16, 100)];
    v.extend((0..16).map(|i| {
        sock(
            TcpState::SynRecv,
            "10.0.0.1:80",
            &format!("10.0.9.9:{}", 40000 + i),
            None,
        )
    }));
    let mut s = Script::new();
    s.tick(v.clone(), &web());
    let f = s.tick(v, &web());
    assert_eq!(of_rule(&f, "syn_flood"), vec![(PORT80, Severity::Critical)]);
    assert!(f[0].message.contains("from 1 source:"), "{}", f[0].message);
}
