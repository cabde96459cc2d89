//! The fallback socket source: `/proc/net/tcp` and `/proc/net/tcp6`, for when
//! netlink `sock_diag` is refused (some containers, seccomp profiles).
//!
//! Hand-written rather than procfs's parser because that one gives up on the
//! whole table at the first line it cannot read and drops the timer columns; here a
//! bad line is skipped and counted, and everything the format carries is kept.
//! What the format does not carry stays empty: no cookie, no tcp_info, no
//! shutdown bits, and a listener's backlog (its `tx_queue` is always 0).
//!
//! The line format (from `get_tcp4_sock` / `get_tcp6_sock` in the kernel):
//!
//! ```text
//!   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ...
//!    0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 ...
//! ```
//!
//! - addresses are the raw `__be32` words printed as host-order hex (`%08X`), so on
//!   a little-endian machine 127.0.0.1 reads `0100007F`; IPv6 is four such words;
//!   ports are plain hex;
//! - `tr` is the pending timer (0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT,
//!   4 zero-window probe), `tm->when` its expiry in USER_HZ clock ticks, in hex;
//! - `retrnsmt` counts retransmissions, and `timeout` (despite its name) counts
//!   keepalive / zero-window probes sent, which is what netlink reports as
//!   `idiag_retrans` for those two timers;
//! - TIME_WAIT and SYN_RECV mini-sockets print 12 columns, full sockets 17; the
//!   first 10 (through `inode`) are all we need.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use crate::model::{SocketRecord, TcpState, Timer, TimerKind, unmap};

/// Milliseconds per clock tick of `tm->when`. The kernel prints it with
/// `jiffies_delta_to_clock_t`, i.e. in USER_HZ, which is 100 on every Linux
/// architecture that sockscope runs on.
const MS_PER_USER_HZ_TICK: u64 = 10;

/// Appends a record for each socket line of one `/proc/net/tcp{,6}` table to `out`
/// and returns how many lines could not be parsed and were skipped. The header
/// line and blank lines are not counted.
pub fn parse_table(text: &str, out: &mut Vec<SocketRecord>) -> u64 {
    parse_table_bytes(text.as_bytes(), out)
}

/// [`parse_table`] over the table's bytes as read: a line that is not UTF-8 is
/// one more malformed line, skipped and counted, not the end of the table.
pub fn parse_table_bytes(bytes: &[u8], out: &mut Vec<SocketRecord>) -> u64 {
    let mut malformed = 0;
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let Ok(line) = std::str::from_utf8(line) else {
            malformed += 1;
            continue;
        };
        let trimmed = line.trim();
        if trimmed.is_empty() || (i == 0 && trimmed.starts_with("sl")) {
            continue;
        }
        match parse_line(trimmed) {
            Some(rec) => out.push(rec),
            None => malformed += 1,
        }
    }
    malformed
}

/// Reads `tcp` and `tcp6` under `proc_net_dir` (normally `/proc/net`), appending
/// to `out`; returns the count of malformed lines skipped. A missing `tcp6` means
/// IPv6 is disabled and is not an error. On error `out` is left as it was.
pub fn read_tables(proc_net_dir: &Path, out: &mut Vec<SocketRecord>) -> Result<u64, io::Error> {
    let start = out.len();
    let tcp = std::fs::read(proc_net_dir.join("tcp"))?;
    let mut malformed = parse_table_bytes(&tcp, out);
    drop(tcp);
    match std::fs::read(proc_net_dir.join("tcp6")) {
        Ok(tcp6) => malformed += parse_table_bytes(&tcp6, out),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            out.truncate(start);
            return Err(e);
        }
    }
    Ok(malformed)
}

/// One socket line, or `None` if any of the first ten columns is unreadable or
/// the state is not a TCP state.
fn parse_line(line: &str) -> Option<SocketRecord> {
    let mut cols = line.split_ascii_whitespace();
    let _slot = cols.next()?.strip_suffix(':')?;
    let local = parse_endpoint(cols.next()?)?;
    let remote = parse_endpoint(cols.next()?)?;
    if local.is_ipv4() != remote.is_ipv4() {
        return None;
    }
    let state = TcpState::from_kernel(u8::try_from(hex(cols.next()?)?).ok()?)?;
    let (tx_queue, rx_queue) = cols.next()?.split_once(':')?;
    let (timer_kind, when) = cols.next()?.split_once(':')?;
    let retrnsmt = hex(cols.next()?)?;
    let uid: u32 = cols.next()?.parse().ok()?;
    let probes: i64 = cols.next()?.parse().ok()?;
    let inode: u64 = cols.next()?.parse().ok()?;

    let mut rec = SocketRecord::new(state, unmap(local), unmap(remote));
    rec.send_q = u32::try_from(hex(tx_queue)?).ok()?;
    rec.recv_q = u32::try_from(hex(rx_queue)?).ok()?;
    rec.uid = uid;
    rec.inode = inode;
    let expires_ms = hex(when)?.saturating_mul(MS_PER_USER_HZ_TICK);
    let saturate_u8 = |n: u64| u8::try_from(n).unwrap_or(u8::MAX);
    let probes = saturate_u8(u64::try_from(probes).unwrap_or(0));
    // An unknown timer kind (none exists today) leaves the socket without a timer
    // rather than losing the whole line.
    let kind_and_count = match hex(timer_kind)? {
        1 => Some((TimerKind::Retransmit, saturate_u8(retrnsmt))),
        2 => Some((TimerKind::Keepalive, probes)),
        3 => Some((TimerKind::TimeWait, saturate_u8(retrnsmt))),
        4 => Some((TimerKind::Probe, probes)),
        _ => None,
    };
    rec.timer = kind_and_count.map(|(kind, retransmits)| Timer {
        kind,
        expires_ms: u32::try_from(expires_ms).unwrap_or(u32::MAX),
        retransmits,
    });
    Some(rec)
}

/// `0100007F:1F90` or a 32-digit IPv6 address and a port.
fn parse_endpoint(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    if port.len() != 4 {
        return None;
    }
    let port = u16::try_from(hex(port)?).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut octets = [0u8; 16];
            for (i, chunk) in octets.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Eight hex digits printed from a network-order word read in host order: the
/// word's bytes in memory order are the address bytes.
fn word(text: &str) -> Option<[u8; 4]> {
    Some(u32::try_from(hex(text)?).ok()?.to_ne_bytes())
}

/// Strict hex: 1 to 16 hex digits, nothing else (no sign, no `0x`).
fn hex(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_listener_line_as_the_kernel_prints_it() {
        let line = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000003 00:00000000 \
                    00000000  1000        0 123456 1 000000008730d07c 100 0 0 10 0";
        let rec = parse_line(line.trim()).expect("parses");
        assert_eq!(rec.state, TcpState::Listen);
        assert_eq!(rec.local, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(rec.remote, "0.0.0.0:0".parse().expect("addr"));
        assert_eq!((rec.recv_q, rec.send_q), (3, 0));
        assert_eq!((rec.uid, rec.inode, rec.cookie), (1000, 123_456, 0));
        assert_eq!(rec.timer, None);
    }

    #[test]
    fn keepalive_probes_come_from_the_timeout_column() {
        let line = "1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 02:000001F4 \
                    00000000     0        2 77 1 0000000000000000 20 4 30 10 -1";
        let rec = parse_line(line).expect("parses");
        assert_eq!(
            rec.timer,
            Some(Timer {
                kind: TimerKind::Keepalive,
                expires_ms: 5000,
                retransmits: 2,
            })
        );
    }

    /// The fixtures are written as a little-endian kernel prints them.
    #[cfg(target_endian = "little")]
    mod fixtures {
        use super::*;
        use crate::model::StateCounts;
        use std::path::PathBuf;

        fn dir(name: &str) -> PathBuf {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/procnet")
                .join(name)
        }

        fn find<'a>(recs: &'a [SocketRecord], local: &str, remote: &str) -> &'a SocketRecord {
            let local: SocketAddr = local.parse().expect("addr");
            let remote: SocketAddr = remote.parse().expect("addr");
            recs.iter()
                .find(|r| r.local == local && r.remote == remote)
                .unwrap_or_else(|| panic!("no socket {local} -> {remote}"))
        }

        #[expect(
            clippy::unnecessary_wraps,
            reason = "the fixtures' expected values are Options"
        )]
        fn timer(kind: TimerKind, expires_ms: u32, retransmits: u8) -> Option<Timer> {
            Some(Timer {
                kind,
                expires_ms,
                retransmits,
            })
        }

        #[test]
        fn ipv4_table_has_every_state_and_its_timers() {
            let text = std::fs::read_to_string(dir("tcp")).expect("fixture");
            let mut recs = Vec::new();
            assert_eq!(parse_table(&text, &mut recs), 0);
            assert_eq!(recs.len(), 13);
            let counts = StateCounts::tally(recs.iter().map(|r| r.state));
            for st in TcpState::ALL {
                assert!(counts.get(st) > 0, "no {st}");
            }

            let lis = find(&recs, "127.0.0.1:8080", "0.0.0.0:0");
            assert_eq!(
                (lis.state, lis.recv_q, lis.send_q),
                (TcpState::Listen, 3, 0)
            );
            assert_eq!((lis.uid, lis.inode, lis.timer), (1000, 30001, None));

            let est = find(&recs, "127.0.0.1:8080", "127.0.0.1:40000");
            assert_eq!(est.state, TcpState::Established);
            assert_eq!(est.timer, timer(TimerKind::Keepalive, 1_150_000, 0));

            let syn_sent = find(&recs, "127.0.0.1:41000", "127.0.0.5:9000");
            assert_eq!(syn_sent.state, TcpState::SynSent);
            assert_eq!(syn_sent.timer, timer(TimerKind::Retransmit, 1000, 2));

            let syn_recv = find(&recs, "127.0.0.1:8080", "127.0.0.5:42000");
            assert_eq!((syn_recv.state, syn_recv.inode), (TcpState::SynRecv, 0));
            assert_eq!(syn_recv.timer, timer(TimerKind::Retransmit, 900, 1));

            // An orphaned FIN_WAIT2 turned into a timewait mini-socket: state 05,
            // timer 3.
            let fw2 = find(&recs, "127.0.0.1:44000", "127.0.0.9:80");
            assert_eq!(fw2.state, TcpState::FinWait2);
            assert_eq!(fw2.timer, timer(TimerKind::TimeWait, 30_000, 0));

            let tw = find(&recs, "127.0.0.1:8080", "127.0.0.1:45000");
            assert_eq!((tw.state, tw.inode, tw.uid), (TcpState::TimeWait, 0, 0));
            assert_eq!(tw.timer, timer(TimerKind::TimeWait, 60_000, 0));

            let close_wait = find(&recs, "127.0.0.1:8080", "127.0.0.1:47000");
            assert_eq!(
                (close_wait.state, close_wait.recv_q),
                (TcpState::CloseWait, 16)
            );

            let last_ack = find(&recs, "127.0.0.1:48000", "127.0.0.9:80");
            assert_eq!(last_ack.state, TcpState::LastAck);
            assert_eq!(last_ack.timer, timer(TimerKind::Retransmit, 500, 3));

            let probe = find(&recs, "127.0.0.1:50000", "127.0.0.9:80");
            assert_eq!(probe.send_q, 0x2000);
            assert_eq!(probe.timer, timer(TimerKind::Probe, 2000, 1));

            assert!(recs.iter().all(|r| r.cookie == 0 && r.tcp_info.is_none()));
        }

        #[test]
        fn ipv6_table_unmaps_v4_mapped_addresses() {
            let text = std::fs::read_to_string(dir("tcp6")).expect("fixture");
            let mut recs = Vec::new();
            assert_eq!(parse_table(&text, &mut recs), 0);
            assert_eq!(recs.len(), 5);
            assert_eq!(find(&recs, "[::]:443", "[::]:0").state, TcpState::Listen);
            assert_eq!(find(&recs, "[::1]:8443", "[::]:0").recv_q, 1);
            let mapped = find(&recs, "127.0.0.1:443", "127.0.0.1:50000");
            assert_eq!((mapped.state, mapped.inode), (TcpState::Established, 40003));
            let est = find(&recs, "[::1]:8443", "[::1]:51000");
            assert_eq!((est.send_q, est.recv_q), (0x20, 0x40));
            assert_eq!(est.timer, timer(TimerKind::Retransmit, 250, 1));
            let tw = find(&recs, "[2001:db8::1]:443", "[2001:db8::2]:52000");
            assert_eq!(tw.timer, timer(TimerKind::TimeWait, 20_000, 0));
        }

        #[test]
        fn bad_lines_are_counted_and_good_lines_around_them_kept() {
            let text = std::fs::read_to_string(dir("garbage/tcp")).expect("fixture");
            let mut recs = Vec::new();
            // truncated, bad hex, state 00, state 0C, too few columns, bad queue
            assert_eq!(parse_table(&text, &mut recs), 6);
            let inodes: Vec<u64> = recs.iter().map(|r| r.inode).collect();
            assert_eq!(inodes, [50001, 50002, 0]);
            assert_eq!(recs[2].state, TcpState::TimeWait);
        }

        #[test]
        fn a_line_that_is_not_utf8_is_skipped_and_counted() {
            // Lines 1 and 3 hold bytes that are not UTF-8; 2 and 4 are good.
            let mut recs = Vec::new();
            assert_eq!(read_tables(&dir("nonutf8"), &mut recs).expect("reads"), 2);
            let inodes: Vec<u64> = recs.iter().map(|r| r.inode).collect();
            assert_eq!(inodes, [30002, 30001]);
            let mut recs = Vec::new();
            assert_eq!(parse_table_bytes(b"\xff\n\n\x80 junk\n", &mut recs), 2);
            assert!(recs.is_empty());
        }

        #[test]
        fn read_tables_reads_both_files_and_tolerates_a_missing_tcp6() {
            let mut recs = Vec::new();
            assert_eq!(read_tables(&dir(""), &mut recs).expect("reads"), 0);
            assert_eq!(recs.len(), 18);

            let mut recs = Vec::new();
            assert_eq!(read_tables(&dir("garbage"), &mut recs).expect("no tcp6"), 6);
            assert_eq!(recs.len(), 3);

            let mut recs = Vec::new();
            assert!(read_tables(&dir("missing"), &mut recs).is_err());
            assert!(recs.is_empty());
        }
    }

    #[test]
    fn hex_is_strict() {
        assert_eq!(hex("0A"), Some(10));
        assert_eq!(hex("+A"), None);
        assert_eq!(hex(""), None);
        assert_eq!(hex("0x0A"), None);
        assert_eq!(hex("11112222333344445"), None);
    }

    #[test]
    fn endpoints_need_matching_families_and_four_digit_ports() {
        assert_eq!(parse_endpoint("0100007F:50"), None);
        assert_eq!(parse_endpoint("0100007:0050"), None);
        let v6 = parse_endpoint("00000000000000000000000001000000:0050").expect("v6");
        assert_eq!(v6, "[::1]:80".parse().expect("addr"));
    }
}
