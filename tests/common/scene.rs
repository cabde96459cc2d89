//! A fixed host for the screen's tests: a web server whose accept queue is full,
//! a SYN flood on 443, a Java service leaking CLOSE_WAIT, clients in TIME_WAIT,
//! and, in the last sample, one connection new and one just closed. Played
//! through the real engine and diagnoser, one second apart, from a fixed time,
//! so every render is the same.

use std::sync::Arc;
use std::time::Duration;

use sockscope::live::Update;
use sockscope::model::{HostInfo, SocketRecord, TcpState};

use super::script::{Extra, Script, host, listener, sock};

/// The samples the scene is made of.
pub const TICKS: usize = 8;

pub fn extra(privileged: bool) -> Extra {
    Extra {
        processes: vec![
            (100, "nginx", Some(230), Some(1024)),
            (200, "java", Some(900), Some(1024)),
            (300, "curl", Some(12), Some(1024)),
        ],
        tcp_ext: vec![("ListenOverflows", 0), ("SyncookiesSent", 0)],
        host: Some(HostInfo {
            hostname: "web-1".into(),
            kernel: "6.8.0".into(),
            os: "Debian 13".into(),
            uptime_secs: 86_400 * 3 + 3600,
            load_avg: [0.42, 0.35, 0.30],
            cpus: 8,
            memory_total_bytes: 16 << 30,
            memory_used_bytes: 5 << 30,
        }),
        privileged,
        ..Extra::default()
    }
}

/// The sockets of sample `t` (0-based).
pub fn sockets(t: usize) -> Vec<SocketRecord> {
    let mut v = vec![
        listener("0.0.0.0:80", 128, 128, 100),
        listener("0.0.0.0:443", 0, 128, 100),
        listener("[::]:8080", 0, 4096, 200),
    ];
    for i in 0..20u32 {
        v.push(sock(
            TcpState::Established,
            "10.0.0.1:80",
            &format!("{}:5{i:04}", host(i)),
            Some(100),
        ));
    }
    // A SYN flood on 443: 120 half-open from distinct sources (critical: over
    // 90% of the backlog).
    for i in 0..120u32 {
        v.push(sock(
            TcpState::SynRecv,
            "10.0.0.1:443",
            &format!("{}:40000", host(1000 + i)),
            None,
        ));
    }
    // java's CLOSE_WAIT grows by 10 a sample; their peers closed 15 s ago
    // (tcp_info), past the leak's age floor.
    for i in 0..(30 + 10 * t as u32) {
        let mut s = sock(
            TcpState::CloseWait,
            "[2001:db8::1]:8080",
            &format!("[2001:db8::2]:{}", 30000 + i),
            Some(200),
        );
        s.tcp_info = Some(sockscope::model::TcpInfoLite {
            last_data_recv_ms: 15_000,
            last_ack_recv_ms: 15_000,
            ..Default::default()
        });
        v.push(s);
    }
    for i in 0..5u32 {
        v.push(sock(
            TcpState::TimeWait,
            "10.0.0.1:41000",
            &format!("10.0.9.{i}:5432"),
            None,
        ));
    }
    // curl's connection is there until the last sample; a new one appears in it.
    if t + 1 < TICKS {
        v.push(sock(
            TcpState::Established,
            "10.0.0.1:45000",
            "93.184.216.34:443",
            Some(300),
        ));
    } else {
        let mut s = sock(
            TcpState::SynSent,
            "10.0.0.1:45001",
            "93.184.216.34:443",
            Some(300),
        );
        s.send_q = 1;
        v.push(s);
    }
    // One connection with tcp_info and a timer, for the detail view.
    let mut s = sock(
        TcpState::Established,
        "10.0.0.1:80",
        "198.51.100.7:61000",
        Some(100),
    );
    s.tcp_info = Some(sockscope::model::TcpInfoLite {
        rtt_us: 12_500,
        rttvar_us: 800,
        rto_us: 204_000,
        total_retrans: 3,
        ..Default::default()
    });
    s.recv_q = 17;
    v.push(s);
    v
}

/// The scene's updates, oldest first.
pub fn updates(privileged: bool) -> Vec<Update> {
    let mut script = Script::new();
    let x = extra(privileged);
    let mut out = Vec::new();
    for t in 0..TICKS {
        let findings = script.tick(sockets(t), &x);
        let snapshot = script.last.clone().expect("a snapshot after a tick");
        out.push(Update {
            snapshot,
            findings: Arc::from(findings),
            ingest_time: Duration::from_millis(3),
        });
    }
    out
}

/// The last update of the scene (with the history of the ones before).
pub fn last(privileged: bool) -> Update {
    updates(privileged).pop().expect("the scene has samples")
}
