//! The diagnosis stays quiet on a busy healthy host, and its hysteresis does not
//! flap on a value hovering around a threshold.

use crate::common;

use common::script::{Extra, Script, host, listener, of_rule, rules, sock};
use sockscope::diagnose::{Severity, Subject};
use sockscope::model::{SocketRecord, TcpState};

/// A web server (pid 100 on 443) under load and an app (pid 200) with a pool to a
/// database, at tick `t`: connections come and go between ticks.
fn busy(t: u32) -> Vec<SocketRecord> {
    let mut v = vec![
        listener("0.0.0.0:443", 3, 4096, 100),
        listener("[::]:443", 1, 4096, 100),
    ];
    // 2000 established clients, a tenth replaced each tick.
    for i in 0..2000 {
        let round = if i % 10 == (t % 10) { t } else { 0 };
        v.push(sock(
            TcpState::Established,
            "10.0.0.1:443",
            &format!("{}:{}", host(i % 500), 20000 + i + round * 3000),
            Some(100),
        ));
    }
    // The server closes first: thousands of TIME_WAIT on its port.
    for i in 0..6000 {
        v.push(sock(
            TcpState::TimeWait,
            "10.0.0.1:443",
            &format!("{}:{}", host(i % 500), 30000 + i + t * 7),
            None,
        ));
    }
    // A few half-open handshakes and a few closing.
    for i in 0..5 {
        v.push(sock(
            TcpState::SynRecv,
            "10.0.0.1:443",
            &format!("{}:{}", host(900 + i), 50000 + t),
            None,
        ));
        v.push(sock(
            TcpState::CloseWait,
            "10.0.0.1:443",
            &format!("{}:{}", host(950 + i), 51000 + t),
            Some(100),
        ));
    }
    // The app's pool to the database, and the TIME_WAIT of its recycled connections.
    for i in 0..100 {
        v.push(sock(
            TcpState::Established,
            &format!("10.0.0.1:{}", 41000 + i),
            "10.5.5.5:5432",
            Some(200),
        ));
    }
    for i in 0..300 {
        v.push(sock(
            TcpState::TimeWait,
            &format!("10.0.0.1:{}", 42000 + i + t * 10),
            "10.5.5.5:5432",
            None,
        ));
    }
    for i in 0..3 {
        v.push(sock(
            TcpState::SynSent,
            &format!("10.0.0.1:{}", 43000 + i + t),
            "10.5.5.5:5432",
            Some(200),
        ));
    }
    v
}

fn counters(t: u64) -> Extra {
    Extra {
        processes: vec![
            (100, "nginx", Some(2100), Some(65536)),
            (200, "app", Some(150), Some(1024)),
        ],
        tcp: vec![
            ("ActiveOpens", 50 * t as i64),
            ("PassiveOpens", 500 * t as i64),
            ("AttemptFails", 2 * t as i64),
            ("CurrEstab", 2100),
        ],
        tcp_ext: vec![
            ("SyncookiesSent", 0),
            ("SyncookiesRecv", 0),
            ("ListenOverflows", 0),
            ("ListenDrops", t / 3),
            ("TCPSynRetrans", 3 * t),
            ("TCPTimeWaitOverflow", 0),
        ],
        ..Extra::default()
    }
}

#[test]
fn a_busy_healthy_host_raises_nothing() {
    let mut s = Script::new();
    for t in 0..8 {
        let f = s.tick(busy(t), &counters(u64::from(t)));
        assert!(f.is_empty(), "tick {t}: {:?}", rules(&f));
    }
}

/// A listener on 80 (backlog 100) with `n` half-open connections.
fn half_open(n: u32) -> Vec<SocketRecord> {
    let mut v = vec![listener("0.0.0.0:80", 0, 100, 100)];
    v.extend((0..n).map(|i| {
        sock(
            TcpState::SynRecv,
            "10.0.0.1:80",
            &format!("{}:40000", host(i)),
            None,
        )
    }));
    v
}

#[test]
fn a_value_hovering_around_its_threshold_neither_raises_nor_clears() {
    let x = Extra::default();
    // Alternating above and below: never held twice in a row, never raised.
    let mut s = Script::new();
    for i in 0..10 {
        let f = s.tick(half_open(if i % 2 == 0 { 60 } else { 40 }), &x);
        assert!(f.is_empty(), "{i}");
    }
    // Once raised, alternating never holds false three times: it stays, with the
    // same `since`.
    let mut s = Script::new();
    s.tick(half_open(60), &x);
    let since = s.tick(half_open(60), &x)[0].since;
    for i in 0..10 {
        let f = s.tick(half_open(if i % 3 == 2 { 60 } else { 40 }), &x);
        assert_eq!(
            of_rule(&f, "syn_flood"),
            vec![(Subject::LocalPort { port: 80 }, Severity::Warning)],
            "{i}"
        );
        assert_eq!(f[0].since, since);
    }
    // Severity hovering around critical stays where it was raised.
    let mut s = Script::new();
    s.tick(half_open(60), &x);
    s.tick(half_open(60), &x);
    for i in 0..10 {
        let f = s.tick(half_open(if i % 2 == 0 { 95 } else { 60 }), &x);
        assert_eq!(f[0].severity, Severity::Warning, "{i}");
    }
}
