//! Decoding tests over hand-built kernel replies; the live dump is tested in
//! `tests/live/netlink_live.rs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

/// A netlink message: the 16-byte header, then `payload`, padded to 4 bytes.
fn nl_message(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(16 + payload.len()).expect("small message");
    let mut m = Vec::new();
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(payload);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    m
}

/// A netlink attribute, padded to 4 bytes.
fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
    let len = u16::try_from(4 + value.len()).expect("small attribute");
    let mut a = Vec::new();
    a.extend_from_slice(&len.to_ne_bytes());
    a.extend_from_slice(&kind.to_ne_bytes());
    a.extend_from_slice(value);
    while a.len() % 4 != 0 {
        a.push(0);
    }
    a
}

struct Diag {
    family: u8,
    state: u8,
    timer: u8,
    retrans: u8,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    cookie: [u32; 2],
    expires: u32,
    rq: u32,
    wq: u32,
    uid: u32,
    inode: u32,
}

fn addr16(ip: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b = v6.octets(),
    }
    b
}

/// The bytes of a `struct inet_diag_msg`.
fn inet_diag_msg(d: &Diag) -> Vec<u8> {
    let mut m = vec![d.family, d.state, d.timer, d.retrans];
    m.extend_from_slice(&d.sport.to_be_bytes());
    m.extend_from_slice(&d.dport.to_be_bytes());
    m.extend_from_slice(&addr16(d.src));
    m.extend_from_slice(&addr16(d.dst));
    m.extend_from_slice(&0u32.to_ne_bytes()); // interface
    m.extend_from_slice(&d.cookie[0].to_ne_bytes());
    m.extend_from_slice(&d.cookie[1].to_ne_bytes());
    for v in [d.expires, d.rq, d.wq, d.uid, d.inode] {
        m.extend_from_slice(&v.to_ne_bytes());
    }
    assert_eq!(m.len(), INET_DIAG_MSG_LEN);
    m
}

fn established_v6_mapped() -> Diag {
    Diag {
        family: AF_INET6,
        state: 1,
        timer: 2,
        retrans: 3,
        src: IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
        sport: 8080,
        dst: IpAddr::V6(Ipv4Addr::new(127, 0, 0, 2).to_ipv6_mapped()),
        dport: 40000,
        cookie: [0x0000_0005, 0x0000_0001],
        expires: 7000,
        rq: 10,
        wq: 20,
        uid: 1000,
        inode: 4242,
    }
}

/// A `struct tcp_info` of `len` bytes with every field we read set to a
/// recognisable value.
fn tcp_info_bytes(len: usize) -> Vec<u8> {
    let mut b = vec![0u8; 232];
    b[0] = 1; // state
    b[TI_RETRANSMITS] = 2;
    b[TI_PROBES] = 3;
    b[TI_BACKOFF] = 4;
    let mut put = |off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    put(TI_RTO, 204_000);
    put(TI_UNACKED, 5);
    put(TI_LAST_DATA_SENT, 100);
    put(TI_LAST_DATA_RECV, 200);
    put(TI_LAST_ACK_RECV, 300);
    put(TI_RTT, 1234);
    put(TI_RTTVAR, 567);
    put(TI_TOTAL_RETRANS, 9);
    let mut put64 = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    put64(TI_BYTES_ACKED, 1 << 33);
    put64(TI_BYTES_RECEIVED, 77);
    put64(TI_BYTES_RETRANS, 4096);
    put64(TI_DELIVERY_RATE, 125_000_000);
    put64(TI_BUSY_TIME, 1_000_000);
    put64(TI_RWND_LIMITED, 250_000);
    put64(TI_SNDBUF_LIMITED, 100_000);
    b.truncate(len);
    b
}

#[test]
fn tcp_info_reads_fixed_offsets() {
    let info = decode_tcp_info(&tcp_info_bytes(232)).expect("long enough");
    assert_eq!(
        info,
        TcpInfoLite {
            rtt_us: 1234,
            rttvar_us: 567,
            rto_us: 204_000,
            retransmits: 2,
            probes: 3,
            backoff: 4,
            unacked: 5,
            total_retrans: 9,
            last_data_sent_ms: 100,
            last_data_recv_ms: 200,
            last_ack_recv_ms: 300,
            bytes_acked: 1 << 33,
            bytes_received: 77,
            bytes_retrans: 4096,
            delivery_rate: 125_000_000,
            busy_time_us: 1_000_000,
            rwnd_limited_us: 250_000,
            sndbuf_limited_us: 100_000,
        }
    );
}

#[test]
fn tcp_info_from_an_older_shorter_struct_keeps_what_is_there() {
    // Ends right after tcpi_rttvar: total_retrans is missing.
    let info = decode_tcp_info(&tcp_info_bytes(TI_RTTVAR + 4)).expect("long enough");
    assert_eq!(info.rtt_us, 1234);
    assert_eq!(info.rttvar_us, 567);
    assert_eq!(info.total_retrans, 0);
    // Cut in the middle of tcpi_rtt: it reads as 0, not as garbage.
    let info = decode_tcp_info(&tcp_info_bytes(TI_RTT + 2)).expect("long enough");
    assert_eq!(info.rtt_us, 0);
    assert_eq!(info.last_ack_recv_ms, 300);
    assert_eq!(decode_tcp_info(&tcp_info_bytes(7)), None);
}

#[test]
fn cookie_matches_ss() {
    let mut raw = [0u8; 8];
    raw[..4].copy_from_slice(&0xdead_beef_u32.to_ne_bytes());
    raw[4..].copy_from_slice(&0x0000_0012_u32.to_ne_bytes());
    assert_eq!(cookie(&raw), 0x0000_0012_dead_beef);
}

#[test]
fn decodes_a_dump_with_attributes_stale_and_unknown_messages() {
    let seq = 7;
    let mut sock = inet_diag_msg(&established_v6_mapped());
    sock.extend(nla(INET_DIAG_INFO, &tcp_info_bytes(232)));
    sock.extend(nla(INET_DIAG_SHUTDOWN, &[2]));
    sock.extend(nla(99, &[1, 2, 3])); // an attribute we did not ask for

    let listen = inet_diag_msg(&Diag {
        family: AF_INET,
        state: 10,
        timer: 0,
        retrans: 0,
        src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        sport: 22,
        dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        dport: 0,
        cookie: [1, 0],
        expires: 0,
        rq: 0,
        wq: 128,
        uid: 0,
        inode: 99,
    });
    let time_wait = inet_diag_msg(&Diag {
        family: AF_INET6,
        state: 6,
        timer: 3,
        retrans: 0,
        src: IpAddr::V6(Ipv6Addr::LOCALHOST),
        sport: 443,
        dst: IpAddr::V6(Ipv6Addr::LOCALHOST),
        dport: 50000,
        cookie: [2, 0],
        expires: 59_000,
        rq: 0,
        wq: 0,
        uid: 0,
        inode: 0,
    });
    let mut unknown = established_v6_mapped();
    unknown.state = 12;

    let mut data = Vec::new();
    data.extend(nl_message(SOCK_DIAG_BY_FAMILY, 2, seq - 1, &listen)); // stale
    data.extend(nl_message(SOCK_DIAG_BY_FAMILY, 2, seq, &sock));
    data.extend(nl_message(SOCK_DIAG_BY_FAMILY, 2, seq, &listen));
    data.extend(nl_message(
        SOCK_DIAG_BY_FAMILY,
        2,
        seq,
        &inet_diag_msg(&unknown),
    ));
    data.extend(nl_message(SOCK_DIAG_BY_FAMILY, 2, seq, &time_wait));
    data.extend(nl_message(SOCK_DIAG_BY_FAMILY, 2, seq, &[AF_INET, 1, 0])); // short

    let mut out = Vec::new();
    let mut stats = DumpStats::default();
    let walk = walk_datagram(&data, seq, &mut out, &mut stats).expect("decodes");
    assert_eq!(walk, Walk::More { dump_intr: false });
    assert_eq!(
        stats,
        DumpStats {
            messages: 5,
            records: 3,
            skipped: 1,
            malformed: 1,
            stale: 1,
        }
    );

    let est = &out[0];
    assert_eq!(est.state, TcpState::Established);
    assert_eq!(est.local, "127.0.0.1:8080".parse().expect("addr"));
    assert_eq!(est.remote, "127.0.0.2:40000".parse().expect("addr"));
    assert_eq!(
        (est.recv_q, est.send_q, est.uid, est.inode),
        (10, 20, 1000, 4242)
    );
    assert_eq!(est.cookie, (1 << 32) | 5);
    assert_eq!(
        est.timer,
        Some(Timer {
            kind: TimerKind::Keepalive,
            expires_ms: 7000,
            retransmits: 3,
        })
    );
    assert_eq!(est.tcp_info.map(|t| t.rtt_us), Some(1234));
    assert_eq!(est.shutdown, Some(2));

    let lis = &out[1];
    assert_eq!(lis.state, TcpState::Listen);
    assert_eq!(lis.local, "0.0.0.0:22".parse().expect("addr"));
    assert_eq!((lis.recv_q, lis.send_q), (0, 128), "backlog in send_q");
    assert_eq!((lis.timer, lis.tcp_info, lis.shutdown), (None, None, None));

    let tw = &out[2];
    assert_eq!(tw.state, TcpState::TimeWait);
    assert_eq!(tw.local, "[::1]:443".parse().expect("addr"));
    assert_eq!(
        tw.timer,
        Some(Timer {
            kind: TimerKind::TimeWait,
            expires_ms: 59_000,
            retransmits: 0,
        })
    );
}

#[test]
fn done_error_and_dump_intr_end_the_walk() {
    let seq = 3;
    let mut out = Vec::new();
    let mut stats = DumpStats::default();

    let mut data = nl_message(SOCK_DIAG_BY_FAMILY, 2 | NLM_F_DUMP_INTR, seq, &{
        inet_diag_msg(&established_v6_mapped())
    });
    data.extend(nl_message(NLMSG_DONE, 2, seq, &0i32.to_ne_bytes()));
    let walk = walk_datagram(&data, seq, &mut out, &mut stats).expect("decodes");
    assert_eq!(
        walk,
        Walk::Done {
            dump_intr: true,
            errno: 0
        }
    );

    // NLMSG_ERROR: a negative errno, then the request's header.
    let mut err = (-13i32).to_ne_bytes().to_vec();
    err.extend_from_slice(&[0u8; 16]);
    let data = nl_message(NLMSG_ERROR, 0, seq, &err);
    let walk = walk_datagram(&data, seq, &mut out, &mut stats).expect("decodes");
    assert_eq!(
        walk,
        Walk::Done {
            dump_intr: false,
            errno: -13
        }
    );

    // A length field running past the datagram is an error, not a panic.
    let mut data = nl_message(NLMSG_DONE, 2, seq, &0i32.to_ne_bytes());
    data[0] = 200;
    assert!(walk_datagram(&data, seq, &mut out, &mut stats).is_err());
}

#[test]
fn map_timer_fills_what_the_crate_drops() {
    use netlink_packet_sock_diag::inet::Timer as Diag;
    use std::time::Duration;
    let t = map_timer(&Diag::Retransmit(Duration::from_millis(200), 4), 9, 9);
    assert_eq!(
        (t.kind, t.expires_ms, t.retransmits),
        (TimerKind::Retransmit, 200, 4)
    );
    let t = map_timer(&Diag::Probe(Duration::from_millis(300)), 2, 9);
    assert_eq!(
        (t.kind, t.expires_ms, t.retransmits),
        (TimerKind::Probe, 300, 2)
    );
    let t = map_timer(&Diag::TimeWait, 0, 45_000);
    assert_eq!((t.kind, t.expires_ms), (TimerKind::TimeWait, 45_000));
}
