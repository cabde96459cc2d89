//! Parsing tests over fixture text copied from a real kernel, a fake proc root
//! under `tests/fixtures/proc`, and one look at the real `/proc`.

use std::path::PathBuf;

use super::*;

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc")
}

#[test]
fn reads_a_complete_fake_proc_root_without_notes() {
    let (c, notes) = read_counters(&fixture_root());
    assert_eq!(notes, Vec::<String>::new());

    assert_eq!(c.tcp.get("MaxConn"), Some(&-1));
    assert_eq!(c.tcp.get("ActiveOpens"), Some(&50));
    assert_eq!(c.tcp.get("OutRsts"), Some(&39));
    assert_eq!(c.tcp.len(), 15);

    assert_eq!(c.tcp_ext.get("SyncookiesSent"), Some(&5));
    assert_eq!(c.tcp_ext.get("TW"), Some(&123));
    assert_eq!(c.tcp_ext.get("ListenOverflows"), Some(&17));
    assert_eq!(c.tcp_ext.get("ListenDrops"), Some(&19));
    assert!(
        !c.tcp_ext.contains_key("MPCapableSYNRX"),
        "MPTcpExt: is another section"
    );

    assert_eq!(
        c.sockstat,
        Sockstat {
            inuse: 1,
            orphan: 0,
            tw: 3,
            alloc: 1,
            mem: 217,
            sockets_used: 11,
        }
    );

    let s = &c.sysctls;
    assert_eq!(s.somaxconn, Some(4096));
    assert_eq!(s.tcp_max_syn_backlog, Some(2048));
    assert_eq!(s.tcp_syncookies, Some(1));
    assert_eq!(s.tcp_synack_retries, Some(5));
    assert_eq!(s.tcp_syn_retries, Some(6));
    assert_eq!(s.tcp_abort_on_overflow, Some(0));
    assert_eq!(s.tcp_fin_timeout, Some(60));
    assert_eq!(s.tcp_max_orphans, Some(131_072));
    assert_eq!(s.tcp_orphan_retries, Some(0));
    assert_eq!(s.tcp_max_tw_buckets, Some(131_072));
    assert_eq!(s.tcp_tw_reuse, Some(2));
    assert_eq!(s.ip_local_port_range, Some((32768, 60999)));
    assert_eq!(s.ip_local_reserved_ports, [(8080, 8080), (9000, 9010)]);
    assert_eq!(s.tcp_keepalive_time, Some(7200));
    assert_eq!(s.tcp_keepalive_intvl, Some(75));
    assert_eq!(s.tcp_keepalive_probes, Some(9));
    assert_eq!(s.tcp_retries2, Some(15));
    assert_eq!(s.tcp_mem, Some([287_898, 383_867, 575_796]));
}

#[test]
fn an_empty_proc_root_gives_defaults_and_a_note_per_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (c, notes) = read_counters(dir.path());
    assert_eq!(c, KernelCounters::default());
    // snmp, netstat, sockstat, and one for the sysctls (not one per sysctl)
    assert_eq!(notes.len(), 3 + 1, "{notes:#?}");
    assert!(notes.iter().any(|n| n.contains("no sysctls")));
    assert!(notes.iter().any(|n| n.contains("snmp")));
}

#[test]
fn a_sysctl_this_namespace_does_not_have_is_no_note() {
    // Inside a network namespace, tcp_mem and tcp_max_orphans do not exist:
    // that is how the kernel is, not trouble to report at every sample.
    let dir = tempfile::tempdir().expect("temp dir");
    let ipv4 = dir.path().join("sys/net/ipv4");
    std::fs::create_dir_all(&ipv4).expect("mkdir");
    std::fs::write(ipv4.join("tcp_syncookies"), "2\n").expect("write");
    let (c, notes) = read_counters(dir.path());
    assert_eq!(c.sysctls.tcp_syncookies, Some(2));
    assert_eq!(c.sysctls.tcp_mem, None);
    assert!(notes.iter().all(|n| !n.contains("sysctl")), "{notes:#?}");
}

#[test]
fn kept_open_files_are_read_again_from_the_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = dir.path().join("net");
    let sys = dir.path().join("sys/net");
    std::fs::create_dir_all(sys.join("ipv4")).expect("mkdir");
    std::fs::create_dir_all(&net).expect("mkdir");
    std::fs::write(sys.join("ipv4/tcp_syncookies"), "1\n").expect("write");
    std::fs::write(
        net.join("sockstat"),
        "sockets: used 5\nTCP: inuse 1 orphan 0 tw 2 alloc 3 mem 4\n",
    )
    .expect("write");
    let files = CounterFiles::open(&net, &sys);
    let (c, _) = files.read();
    assert_eq!((c.sysctls.tcp_syncookies, c.sockstat.tw), (Some(1), 2));
    std::fs::write(sys.join("ipv4/tcp_syncookies"), "0\n").expect("write");
    let (c, notes) = files.read();
    assert_eq!(c.sysctls.tcp_syncookies, Some(0));
    assert_eq!(c.sysctls.tcp_mem, None);
    assert!(notes.iter().all(|n| !n.contains("sysctl")), "{notes:#?}");
    let host = Sysctls {
        tcp_mem: Some([1, 2, 3]),
        ..Sysctls::default()
    };
    let mut inside = c.sysctls.clone();
    copy_host_wide(&host, &mut inside);
    assert_eq!(inside.tcp_mem, Some([1, 2, 3]));
}

#[test]
fn a_bad_sysctl_is_noted_and_the_rest_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ipv4 = dir.path().join("sys/net/ipv4");
    std::fs::create_dir_all(&ipv4).expect("mkdir");
    std::fs::write(ipv4.join("tcp_fin_timeout"), "60\n").expect("write");
    std::fs::write(ipv4.join("tcp_tw_reuse"), "two\n").expect("write");
    std::fs::write(ipv4.join("ip_local_port_range"), "60999\t32768\n").expect("write");
    let (c, notes) = read_counters(dir.path());
    assert_eq!(c.sysctls.tcp_fin_timeout, Some(60));
    assert_eq!(c.sysctls.tcp_tw_reuse, None);
    assert_eq!(c.sysctls.ip_local_port_range, None);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("tcp_tw_reuse") && n.contains("\"two\""))
    );
    assert!(notes.iter().any(|n| n.contains("ip_local_port_range")));
}

#[test]
fn section_pairs_survive_bad_values_and_length_mismatch() {
    let text = "Ip: Forwarding DefaultTTL\nIp: 2 64\n\
                Tcp: RtoAlgorithm MaxConn ActiveOpens PassiveOpens\n\
                Tcp: 1 -1 x 7 99\n";
    let mut notes = Vec::new();
    let tcp: BTreeMap<String, i64> = parse_section(text, "Tcp", "snmp", &mut notes);
    assert_eq!(tcp.get("MaxConn"), Some(&-1));
    assert_eq!(tcp.get("PassiveOpens"), Some(&7));
    assert!(!tcp.contains_key("ActiveOpens"));
    assert_eq!(notes.len(), 2, "{notes:?}");

    // Unsigned sections refuse a negative value.
    let mut notes = Vec::new();
    let ext: BTreeMap<String, u64> = parse_section(text, "Tcp", "netstat", &mut notes);
    assert!(!ext.contains_key("MaxConn"));

    let mut notes = Vec::new();
    let none: BTreeMap<String, u64> = parse_section(text, "TcpExt", "netstat", &mut notes);
    assert!(none.is_empty());
    assert_eq!(notes, ["netstat: no TcpExt: header and value lines"]);
}

#[test]
fn sockstat_notes_missing_fields() {
    let mut notes = Vec::new();
    let s = parse_sockstat("sockets: used 9\nTCP: inuse 4 orphan 1 tw 2\n", &mut notes);
    assert_eq!((s.sockets_used, s.inuse, s.orphan, s.tw), (9, 4, 1, 2));
    assert_eq!(notes.len(), 2, "alloc and mem: {notes:?}");
}

#[test]
fn sysctl_value_formats() {
    assert_eq!(parse_port_range("32768\t60999\n"), Ok((32768, 60999)));
    assert!(parse_port_range("32768\n").is_err());
    assert!(parse_port_range("1 2 3\n").is_err());
    assert!(parse_port_range("1 70000\n").is_err());
    assert_eq!(parse_reserved_ports("\n"), Ok(vec![]));
    assert_eq!(
        parse_reserved_ports("22,8080,9000-9010\n"),
        Ok(vec![(22, 22), (8080, 8080), (9000, 9010)])
    );
    assert!(parse_reserved_ports("9010-9000").is_err());
    assert!(parse_reserved_ports("80,").is_err());
    assert_eq!(parse_tcp_mem("1\t2\t3\n"), Ok([1, 2, 3]));
    assert!(parse_tcp_mem("1\t2\n").is_err());
    assert!(parse_tcp_mem("1 2 3 4").is_err());
    assert_eq!(parse_u64(" 4096\n"), Ok(4096));
    assert!(parse_u64("-1").is_err());
}

#[test]
fn the_real_proc_has_the_counters_the_diagnoses_need() {
    let (c, notes) = read_counters(Path::new("/proc"));
    println!("notes on this machine: {notes:#?}");
    assert!(c.tcp.contains_key("ActiveOpens"), "{:?}", c.tcp.keys());
    assert!(c.tcp_ext.contains_key("ListenOverflows"));
    assert!(c.sysctls.somaxconn.is_some());
    assert!(c.sysctls.ip_local_port_range.is_some());
    assert!(c.sockstat.sockets_used > 0);
}
