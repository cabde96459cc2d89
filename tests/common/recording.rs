//! Samples for the recording tests: one with every part filled in, a way to
//! compare two (a `Sample` has no `PartialEq`), and writing and reading a
//! whole recording.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sockscope::model::{DestroyEvent, Destroyed, EventFeed, Stamp};
use sockscope::model::{
    Health, HostInfo, KernelCounters, NetnsId, NetnsInfo, NetnsKind, OwnerScanStats, Ownership,
    ProcessInfo, Sample, SocketSource, Sockstat, TcpInfoLite, TcpState, Timer, TimerKind,
};
use sockscope::record::{Limits, Reader, Recorder};

use super::script::{base, host, listener, sock, stock_sysctls};

/// A sample with every part filled in, different for each `i`: sockets of each
/// ownership, IPv6, timers and tcp_info, processes, users, counters, host facts
/// and health, namespaces (the IPv6 socket is in `blue`, and a container's is
/// found but not sampled), taken at a time with nanoseconds.
pub fn rich(i: u32, conns: u32) -> Sample {
    let mut sockets = vec![listener("0.0.0.0:8080", i % 5, 128, 100)];
    for c in 0..conns {
        let state = TcpState::ALL[((c + i / 7) % 11) as usize];
        let pid = match c % 4 {
            0 | 1 => Some(100 + c % 2),
            _ => None,
        };
        let mut s = sock(
            state,
            "10.0.0.1:8080",
            &format!("{}:{}", host(c), 1024 + c),
            pid,
        );
        if c % 4 == 3 {
            s.owner = if c % 8 == 3 {
                Ownership::Hidden
            } else {
                Ownership::Unknown
            };
        }
        s.uid = [0, 33, 1000][(c % 3) as usize];
        s.recv_q = c * i % 300;
        s.timer = (c % 3 == 0).then_some(Timer {
            kind: [
                TimerKind::Retransmit,
                TimerKind::Keepalive,
                TimerKind::TimeWait,
            ][(c % 9 / 3) as usize],
            expires_ms: 1000 + i * 10,
            retransmits: (c % 4) as u8,
        });
        s.tcp_info = (c % 2 == 0).then_some(TcpInfoLite {
            rtt_us: 40 + c,
            last_data_sent_ms: i * 1000 + c,
            total_retrans: c % 5,
            bytes_acked: u64::from(c * 1000 + i),
            bytes_received: u64::from(c * 7000 + i * 3),
            bytes_retrans: u64::from(c % 3),
            delivery_rate: 1 << 20,
            busy_time_us: u64::from(i) * 10_000,
            rwnd_limited_us: u64::from(i) * 100,
            sndbuf_limited_us: 5,
            ..TcpInfoLite::default()
        });
        s.shutdown = (c % 5 == 0).then_some((c % 3) as u8);
        sockets.push(s);
    }
    let mut v6 = sock(
        TcpState::Established,
        "[::1]:443",
        "[2001:db8::7]:50000",
        Some(101),
    );
    v6.tcp_info = Some(TcpInfoLite::default());
    v6.netns = NetnsId(1);
    sockets.push(v6);
    let processes = [(100, "nginx"), (101, "java")]
        .into_iter()
        .map(|(pid, name)| {
            let p = ProcessInfo {
                pid,
                name: name.into(),
                cmdline: format!("{name} -c /etc/{name}.conf"),
                exe: (pid == 100).then(|| format!("/usr/sbin/{name}")),
                uid: 33,
                user: "www-data".into(),
                start_time: 4242 + u64::from(pid),
                fd_count: Some(u64::from(conns + i)),
                fd_limit: (pid == 101).then_some(1024),
            };
            (pid, Arc::new(p))
        })
        .collect();
    Sample {
        taken_at: base() + Duration::new(u64::from(i), i * 1_000_003 + 7),
        sockets,
        processes,
        users: BTreeMap::from([
            (0, "root".into()),
            (33, "www-data".into()),
            (1000, "1000".into()),
        ]),
        counters: KernelCounters {
            tcp: BTreeMap::from([
                ("ActiveOpens".into(), i64::from(i) * 3),
                ("MaxConn".into(), -1),
            ]),
            tcp_ext: BTreeMap::from([("ListenOverflows".into(), u64::from(i / 10))]),
            sockstat: Sockstat {
                inuse: u64::from(conns),
                tw: 3,
                ..Sockstat::default()
            },
            sysctls: stock_sysctls(),
        },
        host: HostInfo {
            hostname: "web-1".into(),
            kernel: "6.18.44".into(),
            os: "Linux".into(),
            uptime_secs: 1000 + u64::from(i),
            load_avg: [0.64, 0.39 + f64::from(i) / 100.0, 0.24],
            cpus: 2,
            memory_total_bytes: 25_276_502_016,
            memory_used_bytes: 463_810_560,
        },
        health: Health {
            source: if i % 2 == 1 {
                SocketSource::ProcNet {
                    reason: "netlink refused".into(),
                }
            } else {
                SocketSource::Netlink
            },
            malformed_lines: u64::from(i % 3),
            privileged: i.is_multiple_of(2),
            netns_own_only: false,
            cost: sockscope::model::SampleCost {
                total_us: 1500 + u64::from(i),
                sockets_us: 700,
                owners_us: 600,
                cpu_us: i.is_multiple_of(2).then_some(900),
            },
            owners: OwnerScanStats {
                full_scan: i == 0,
                fds_read: 90 + u64::from(i),
                first_error: (i % 4 == 1).then_some(24),
                ..OwnerScanStats::default()
            },
            notes: if i.is_multiple_of(3) {
                vec![format!("note {i}")]
            } else {
                vec![]
            },
            ..Health::default()
        },
        namespaces: namespaces(i),
        destroyed: destroyed(i),
    }
}

/// The destroy events of [`rich`]: `i % 3` connections to 8080 destroyed
/// after the previous sample, one in `blue`, and the feed's state.
pub fn destroyed(i: u32) -> Destroyed {
    let at = base() + Duration::new(u64::from(i), i * 1_000_003 + 7);
    let events = (0..i % 3)
        .map(|k| {
            let mut s = sock(
                TcpState::Close,
                "10.0.0.1:8080",
                &format!("{}:{}", host(500 + k), 2000 + k),
                None,
            );
            s.tcp_info = Some(TcpInfoLite {
                bytes_acked: 1,
                bytes_received: u64::from(100 + k),
                last_ack_recv_ms: 3,
                ..TcpInfoLite::default()
            });
            if k == 1 {
                s.netns = NetnsId(1);
            }
            DestroyEvent {
                at: Stamp::from(at - Duration::from_millis(u64::from(10 + k))),
                socket: s,
            }
        })
        .collect();
    Destroyed {
        events,
        feed: EventFeed {
            active: true,
            unavailable: None,
            subscribers: 2,
            received: u64::from(i % 3),
            overflows: u64::from(i % 4 / 3),
        },
        ..Destroyed::default()
    }
}

/// The namespaces of [`rich`]: the host's, an `ip netns` one with counters of
/// its own, and a container's that was not entered.
pub fn namespaces(i: u32) -> Vec<NetnsInfo> {
    vec![
        NetnsInfo {
            id: NetnsId::OWN,
            inode: 4_026_531_840,
            label: "host".into(),
            kind: NetnsKind::Host,
            processes: 90 + i,
            sampled: true,
            ..NetnsInfo::default()
        },
        NetnsInfo {
            id: NetnsId(1),
            inode: 4_026_532_301,
            label: "blue".into(),
            kind: NetnsKind::Named,
            comm: Some("java".into()),
            processes: 1,
            sampled: true,
            counters: Some(KernelCounters {
                tcp: BTreeMap::from([("ActiveOpens".into(), i64::from(i))]),
                tcp_ext: BTreeMap::from([("ListenDrops".into(), u64::from(i / 2))]),
                sockstat: Sockstat {
                    inuse: 1,
                    ..Sockstat::default()
                },
                sysctls: stock_sysctls(),
            }),
            ..NetnsInfo::default()
        },
        NetnsInfo {
            id: NetnsId(2),
            inode: 4_026_532_999,
            label: "3f2a9c1e04b7".into(),
            kind: NetnsKind::Container,
            container: Some("3f2a9c1e04b7".into()),
            runtime: Some("docker".into()),
            pod: None,
            hostname: Some("web-\x1b[31m".into()),
            comm: Some("nginx".into()),
            processes: 4,
            sampled: false,
            counters: None,
        },
    ]
}

/// What a version-1 recording (no namespaces, nor what version 3 added)
/// holds of `sample`: every socket in the own namespace, and no namespace
/// described.
pub fn without_namespaces(sample: Sample) -> Sample {
    let mut sample = without_events(sample);
    for s in &mut sample.sockets {
        s.netns = NetnsId::OWN;
    }
    sample.namespaces.clear();
    sample
}

/// What a version-2 recording (no byte counters, cost or destroy events)
/// holds of `sample`.
pub fn without_events(mut sample: Sample) -> Sample {
    for s in &mut sample.sockets {
        if let Some(t) = s.tcp_info.as_mut() {
            *t = TcpInfoLite {
                bytes_acked: 0,
                bytes_received: 0,
                bytes_retrans: 0,
                delivery_rate: 0,
                busy_time_us: 0,
                rwnd_limited_us: 0,
                sndbuf_limited_us: 0,
                ..*t
            };
        }
    }
    sample.health.cost = sockscope::model::SampleCost::default();
    sample.destroyed = Destroyed::default();
    sample
}

/// `Sample` has no `PartialEq` (it holds `Arc`s); compare through its parts.
pub fn assert_same(a: &Sample, b: &Sample, what: &str) {
    assert_eq!(a.taken_at, b.taken_at, "{what}: taken_at");
    assert_eq!(a.sockets, b.sockets, "{what}: sockets");
    assert_eq!(a.processes, b.processes, "{what}: processes");
    assert_eq!(a.users, b.users, "{what}: users");
    assert_eq!(a.counters, b.counters, "{what}: counters");
    assert_eq!(a.host, b.host, "{what}: host");
    assert_eq!(a.health, b.health, "{what}: health");
    assert_eq!(a.namespaces, b.namespaces, "{what}: namespaces");
    assert_eq!(a.destroyed, b.destroyed, "{what}: destroy events");
}

pub fn write_all(path: &Path, samples: &[Sample], limits: Limits) -> Vec<u64> {
    let mut rec = Recorder::create(path, limits).expect("create recording");
    let sizes = samples
        .iter()
        .map(|s| rec.append(s).expect("append"))
        .collect();
    rec.sync().expect("sync");
    sizes
}

pub fn read_all(reader: &mut Reader) -> Vec<Sample> {
    reader
        .samples()
        .map(|r| r.unwrap_or_else(|d| panic!("unexpected damage: {d}")))
        .collect()
}
