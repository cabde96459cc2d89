//! Diagnosis of connections: `close_wait_leak`, `time_wait_exhaustion` and
//! `syn_sent_storm`, their thresholds and hysteresis, and their pitfalls (a
//! server's TIME_WAIT is quiet, young CLOSE_WAIT is quiet, a scan is told apart
//! from an unreachable upstream).

use crate::common;

use std::time::Duration;

use common::script::{Extra, Script, host, listener, of_rule, rules, sock};
use sockscope::diagnose::{Severity, Subject, Thresholds, usable_ephemeral};
use sockscope::model::{SocketRecord, Sysctls, TcpState};

fn app(fd_count: u64) -> Extra {
    Extra {
        processes: vec![(300, "leaky", Some(fd_count), Some(1024))],
        ..Extra::default()
    }
}

/// A server on 9000 (pid 300) holding `n` CLOSE_WAIT connections.
fn close_waits(n: u32) -> Vec<SocketRecord> {
    let mut v = vec![listener("0.0.0.0:9000", 0, 128, 300)];
    v.extend((0..n).map(|i| {
        let mut s = sock(
            TcpState::CloseWait,
            "10.0.0.1:9000",
            &format!("{}:5000", host(i)),
            Some(300),
        );
        s.recv_q = 1;
        s
    }));
    v
}

const LEAKY: fn() -> Subject = || Subject::Process {
    pid: 300,
    name: "leaky".into(),
};

#[test]
fn old_close_wait_raises_once_old_enough_and_held_twice() {
    let mut s = Script::new();
    let x = app(100);
    // Young CLOSE_WAIT: quiet, however long the script waits below the age.
    assert!(s.feed(Duration::ZERO, close_waits(30), &x).is_empty());
    assert!(
        s.feed(Duration::from_secs(30), close_waits(30), &x)
            .is_empty()
    );
    assert!(
        s.feed(Duration::from_secs(29), close_waits(30), &x)
            .is_empty()
    );
    // 60 s old: the condition holds once, then twice.
    assert!(
        s.feed(Duration::from_secs(1), close_waits(30), &x)
            .is_empty()
    );
    let f = s.tick(close_waits(30), &x);
    assert_eq!(
        of_rule(&f, "close_wait_leak"),
        vec![(LEAKY(), Severity::Warning)]
    );
    let ev = &f[0].evidence;
    assert_eq!(ev["close_wait"], 30);
    assert_eq!(ev["oldest_secs"], 61.0);
    assert_eq!(ev["fd_count"], 100);
    assert_eq!(ev["fd_limit"], 1024);
    assert_eq!(ev["with_unread_data"], 30);
    assert_eq!(ev["top_local_ports"][0]["port"], 9000);
    let Subject::Process { pid, .. } = LEAKY() else {
        panic!("the leak is a process's");
    };
    assert!(
        f[0].next_step.contains(&format!("/proc/{pid}/fd")) && !f[0].next_step.contains("PID"),
        "the next step names the process: {}",
        f[0].next_step
    );
    // Closed at last: cleared after three.
    for i in 0..3 {
        let f = s.tick(close_waits(0), &x);
        assert_eq!(f.is_empty(), i == 2, "{i}");
    }
}

#[test]
fn close_wait_near_the_descriptor_limit_is_critical() {
    let mut s = Script::new();
    s.feed(Duration::ZERO, close_waits(30), &app(1000));
    s.feed(Duration::from_secs(60), close_waits(30), &app(1000));
    let f = s.tick(close_waits(30), &app(1000));
    assert_eq!(
        of_rule(&f, "close_wait_leak"),
        vec![(LEAKY(), Severity::Critical)]
    );
    assert!(
        f[0].message.contains("1000 of its 1024"),
        "{}",
        f[0].message
    );
}

#[test]
fn a_few_or_a_young_close_wait_is_quiet_but_very_many_are_not() {
    let mut s = Script::new();
    for _ in 0..4 {
        assert!(
            s.feed(Duration::from_secs(60), close_waits(10), &app(50))
                .is_empty()
        );
    }
    let mut s = Script::new();
    // Past the age floor (10 s), long before the minute.
    assert!(
        s.tick(close_waits(600), &app(700)).is_empty(),
        "below the floor"
    );
    s.feed(Duration::from_secs(10), close_waits(600), &app(700));
    let f = s.tick(close_waits(600), &app(700));
    assert_eq!(
        of_rule(&f, "close_wait_leak"),
        vec![(LEAKY(), Severity::Warning)]
    );
}

/// A client (pid 400) with `tw` TIME_WAIT and `est` ESTABLISHED connections from
/// 10.0.0.1 to 10.5.5.5:5432.
fn client(tw: u32, est: u32) -> Vec<SocketRecord> {
    (0..tw + est)
        .map(|i| {
            let (state, pid) = if i < tw {
                (TcpState::TimeWait, None)
            } else {
                (TcpState::Established, Some(400))
            };
            sock(
                state,
                &format!("10.0.0.1:{}", 40000 + i),
                "10.5.5.5:5432",
                pid,
            )
        })
        .collect()
}

fn narrow(lo: u16, hi: u16) -> Extra {
    Extra {
        processes: vec![(400, "client", None, None)],
        sysctls: Some(Sysctls {
            ip_local_port_range: Some((lo, hi)),
            ip_local_reserved_ports: vec![(lo, lo + 99)],
            ..common::script::stock_sysctls()
        }),
        ..Extra::default()
    }
}

#[test]
fn usable_ports_are_the_range_minus_the_reserved_ones_inside_it() {
    let x = narrow(40000, 40999);
    let sys = x.sysctls.expect("set");
    assert_eq!(usable_ephemeral(&sys), 900);
    assert_eq!(
        usable_ephemeral(&Sysctls::default()),
        28232,
        "the kernel default"
    );
}

#[test]
fn client_connections_to_one_destination_near_the_range_raise_exhaustion() {
    let mut s = Script::new();
    let x = narrow(40000, 40999);
    // 400 of 900: quiet.
    for _ in 0..3 {
        assert!(s.tick(client(350, 50), &x).is_empty());
    }
    // 500 of 900: a warning after two.
    assert!(s.tick(client(450, 50), &x).is_empty());
    let f = s.tick(client(450, 50), &x);
    let dest = Subject::Remote {
        addr: "10.5.5.5".parse().expect("ip"),
        port: Some(5432),
    };
    assert_eq!(
        of_rule(&f, "time_wait_exhaustion"),
        vec![(dest.clone(), Severity::Warning)]
    );
    let ev = &f[0].evidence;
    assert_eq!(ev["time_wait"], 450);
    assert_eq!(ev["established"], 50);
    assert_eq!(ev["usable_ephemeral_ports"], 900);
    assert_eq!(ev["local_ip"], "10.0.0.1");
    // 850 of 900: critical after two.
    s.tick(client(800, 50), &x);
    let f = s.tick(client(800, 50), &x);
    assert_eq!(
        of_rule(&f, "time_wait_exhaustion"),
        vec![(dest, Severity::Critical)]
    );
}

#[test]
fn time_wait_on_a_servers_listening_port_is_quiet() {
    // 20000 TIME_WAIT on port 80, from few clients, with a stock range: the
    // server closed first, which is harmless.
    let mut s = Script::new();
    let x = Extra {
        processes: vec![(100, "nginx", Some(50), Some(1024))],
        tcp_ext: vec![("TW", 0)],
        ..Extra::default()
    };
    let mut v = vec![listener("0.0.0.0:80", 0, 4096, 100)];
    v.extend((0..20_000u32).map(|i| {
        sock(
            TcpState::TimeWait,
            "10.0.0.1:80",
            &format!("10.7.7.{}:{}", 1 + i % 2, 30000 + i / 2),
            None,
        )
    }));
    for _ in 0..4 {
        let f = s.tick(v.clone(), &x);
        assert!(f.is_empty(), "{:?}", rules(&f));
    }
}

/// `n` SYN_SENT from pid 500 to `targets(i)`.
fn syn_sent(n: u32, target: impl Fn(u32) -> String) -> Vec<SocketRecord> {
    (0..n)
        .map(|i| {
            sock(
                TcpState::SynSent,
                &format!("10.0.0.1:{}", 45000 + i),
                &target(i),
                Some(500),
            )
        })
        .collect()
}

fn worker() -> Extra {
    Extra {
        processes: vec![(500, "worker", None, None)],
        tcp: vec![("AttemptFails", 0), ("ActiveOpens", 0)],
        tcp_ext: vec![("TCPSynRetrans", 0)],
        ..Extra::default()
    }
}

const WORKER: fn() -> Subject = || Subject::Process {
    pid: 500,
    name: "worker".into(),
};

#[test]
fn many_syn_sent_to_one_upstream_is_an_unreachable_upstream() {
    let mut s = Script::new();
    let down = |_| "10.8.8.8:443".to_string();
    assert!(s.tick(syn_sent(30, down), &worker()).is_empty());
    let f = s.tick(syn_sent(30, down), &worker());
    assert_eq!(
        of_rule(&f, "syn_sent_storm"),
        vec![(WORKER(), Severity::Warning)]
    );
    assert!(f[0].message.contains("not answering"), "{}", f[0].message);
    assert_eq!(f[0].evidence["top_remote"], "10.8.8.8:443");
    assert!(
        f[0].next_step.contains("`ss -tn dst 10.8.8.8:443`"),
        "the next step names the upstream: {}",
        f[0].next_step
    );
    assert_eq!(f[0].evidence["tcp_syn_retries"], 6);
    assert_eq!(f[0].evidence["distinct_remote_ports"], 1);
    for i in 0..3 {
        let f = s.tick(Vec::new(), &worker());
        assert_eq!(f.is_empty(), i == 2, "{i}");
    }
}

#[test]
fn many_syn_sent_to_many_ports_is_a_scan() {
    let mut s = Script::new();
    let scan = |i| format!("10.8.8.8:{}", 1 + i);
    s.tick(syn_sent(250, scan), &worker());
    let f = s.tick(syn_sent(250, scan), &worker());
    assert_eq!(
        of_rule(&f, "syn_sent_storm"),
        vec![(WORKER(), Severity::Critical)]
    );
    assert!(
        f[0].message.contains("probing many ports"),
        "{}",
        f[0].message
    );
    assert_eq!(f[0].evidence["distinct_remote_ports"], 250);
}

#[test]
fn a_few_syn_sent_is_quiet() {
    let mut s = Script::new();
    for _ in 0..4 {
        assert!(
            s.tick(syn_sent(10, |_| "10.8.8.8:443".into()), &worker())
                .is_empty()
        );
    }
}

#[test]
fn thresholds_are_overridable_and_default_the_rest() {
    let cfg: Thresholds =
        serde_json::from_str(r#"{"syn_sent_min": 5, "raise_after": 1}"#).expect("a partial config");
    assert_eq!(cfg.syn_sent_min, 5);
    assert_eq!(cfg.clear_after, Thresholds::default().clear_after);
    let mut s = Script::with(cfg);
    let f = s.tick(syn_sent(10, |_| "10.8.8.8:443".into()), &worker());
    assert_eq!(
        of_rule(&f, "syn_sent_storm"),
        vec![(WORKER(), Severity::Warning)]
    );
    assert!(serde_json::from_str::<Thresholds>(r#"{"no_such": 1}"#).is_err());
}

#[test]
fn young_close_wait_that_keeps_growing_raises_a_leak_held_while_the_count_stays() {
    let mut s = Script::new();
    let x = app(100);
    assert!(s.feed(Duration::ZERO, close_waits(20), &x).is_empty());
    assert!(
        s.feed(Duration::from_secs(10), close_waits(20), &x)
            .is_empty(),
        "past the floor, younger than a minute, not growing"
    );
    // 25, 30, 35: a run of growth is known once it spans five samples.
    for k in 1..=3 {
        let f = s.tick(close_waits(20 + 5 * k), &x);
        assert!(f.is_empty(), "{k}: {:?}", rules(&f));
    }
    assert!(s.tick(close_waits(40), &x).is_empty(), "held once");
    let f = s.tick(close_waits(45), &x);
    assert_eq!(
        of_rule(&f, "close_wait_leak"),
        vec![(LEAKY(), Severity::Warning)]
    );
    assert_eq!(f[0].evidence["growth"], 25);
    assert!(
        f[0].message.contains("up 25 without going down"),
        "{}",
        f[0].message
    );
    // The leak stops growing; its sockets stay held: so does the finding,
    // before any is a minute old.
    for i in 0..30 {
        let f = s.tick(close_waits(45), &x);
        assert_eq!(
            of_rule(&f, "close_wait_leak"),
            vec![(LEAKY(), Severity::Warning)],
            "{i} s after the growth stopped"
        );
    }
    // The count falls (the application closed some): the run of growth ends.
    for i in 0..3 {
        let f = s.tick(close_waits(30), &x);
        assert_eq!(f.is_empty(), i == 2, "{i}: {:?}", rules(&f));
    }
}

#[test]
fn a_server_that_closes_two_seconds_after_its_clients_is_no_leak() {
    let mut s = Script::new();
    let x = app(100);
    for n in [0, 30, 30, 30, 30, 0, 0, 0] {
        let f = s.feed(Duration::from_millis(500), close_waits(n), &x);
        assert!(f.is_empty(), "{n}: {:?}", rules(&f));
    }
}

#[test]
fn young_close_wait_that_comes_and_goes_is_quiet() {
    let mut s = Script::new();
    for k in 0..12 {
        let f = s.tick(close_waits(if k % 2 == 0 { 20 } else { 60 }), &app(100));
        assert!(f.is_empty(), "{k}: {:?}", rules(&f));
    }
}
