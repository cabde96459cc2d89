//! Live checks of the socket sources against real sockets on loopback: the netlink
//! dump must see what we just opened, with the same inodes as our descriptors, and
//! the /proc/net/tcp fallback must agree with it.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;

use sockscope::model::{SocketRecord, TcpState};
use sockscope::sample::netlink::{NetlinkDumper, NetlinkError};
use sockscope::sample::procnet;

/// The socket inode behind one of our descriptors (`socket:[INODE]`).
fn inode_of(fd: &impl AsRawFd) -> u64 {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("fd link");
    let text = link.to_str().expect("UTF-8 link");
    text.strip_prefix("socket:[")
        .and_then(|rest| rest.strip_suffix(']'))
        .expect("a socket link")
        .parse()
        .expect("numeric inode")
}

/// One dump, retried if the kernel says the tables changed under it.
fn dump(dumper: &mut NetlinkDumper) -> Vec<SocketRecord> {
    let mut out = Vec::new();
    for _ in 0..3 {
        match dumper.dump_tcp(&mut out) {
            Ok(stats) => {
                assert_eq!(stats.records, out.len() as u64);
                assert_eq!(stats.malformed, 0);
                return out;
            }
            Err(NetlinkError::Interrupted { .. }) => continue,
            Err(e) => panic!("dump failed: {e}"),
        }
    }
    panic!("dump interrupted three times");
}

fn find(
    recs: &[SocketRecord],
    state: TcpState,
    local: SocketAddr,
    remote: SocketAddr,
) -> &SocketRecord {
    let mut found = recs
        .iter()
        .filter(|r| r.state == state && r.local == local && r.remote == remote);
    let rec = found
        .next()
        .unwrap_or_else(|| panic!("no {state} socket {local} -> {remote} in the dump"));
    assert!(
        found.next().is_none(),
        "{state} {local} -> {remote} listed twice"
    );
    rec
}

/// A listener, a client connected to it and the accepted server side, with a few
/// bytes exchanged both ways so that both ends have taken RTT samples.
struct Pair {
    listener: TcpListener,
    client: TcpStream,
    server: TcpStream,
}

impl Pair {
    fn open(listener: TcpListener, connect_to: SocketAddr) -> Pair {
        let mut client = TcpStream::connect(connect_to).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        let mut byte = [0u8; 1];
        for _ in 0..3 {
            client.write_all(b"x").expect("client write");
            server.read_exact(&mut byte).expect("server read");
            server.write_all(b"y").expect("server write");
            client.read_exact(&mut byte).expect("client read");
        }
        Pair {
            listener,
            client,
            server,
        }
    }

    fn client_addr(&self) -> SocketAddr {
        self.client.local_addr().expect("client addr")
    }

    /// Checks that the dump shows all three sockets with their inodes, distinct
    /// nonzero cookies, and tcp_info on the established ends. Returns the
    /// records: listener, client, server.
    fn check<'a>(
        &self,
        recs: &'a [SocketRecord],
        listen_addr: SocketAddr,
    ) -> [&'a SocketRecord; 3] {
        let any: SocketAddr = if listen_addr.is_ipv4() {
            "0.0.0.0:0".parse().expect("addr")
        } else {
            "[::]:0".parse().expect("addr")
        };
        let server_addr = self.server.local_addr().expect("server addr");
        let lis = find(recs, TcpState::Listen, listen_addr, any);
        assert_eq!(lis.inode, inode_of(&self.listener));
        assert!(lis.send_q > 0, "a listener's send_q is its backlog");
        let cli = find(recs, TcpState::Established, self.client_addr(), server_addr);
        assert_eq!(cli.inode, inode_of(&self.client));
        let srv = find(recs, TcpState::Established, server_addr, self.client_addr());
        assert_eq!(srv.inode, inode_of(&self.server));

        for rec in [lis, cli, srv] {
            assert_ne!(rec.cookie, 0, "{rec:?}");
        }
        assert!(lis.cookie != cli.cookie && cli.cookie != srv.cookie && lis.cookie != srv.cookie);
        for rec in [cli, srv] {
            let info = rec.tcp_info.expect("tcp_info for an established socket");
            assert!(info.rtt_us > 0, "rtt of {rec:?}");
            assert_eq!(rec.shutdown, Some(0));
        }
        [lis, cli, srv]
    }
}

#[test]
fn dump_sees_ipv4_listener_and_pair_and_agrees_with_proc_net_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("addr");
    let pair = Pair::open(listener, addr);

    let mut dumper = NetlinkDumper::new().expect("netlink socket");
    let recs = dump(&mut dumper);
    let [lis, cli, srv] = pair.check(&recs, addr);

    // The dumper is reused: a second dump sees the same sockets, same cookies.
    let again = dump(&mut dumper);
    let [lis2, cli2, srv2] = pair.check(&again, addr);
    assert_eq!(
        (lis.cookie, cli.cookie, srv.cookie),
        (lis2.cookie, cli2.cookie, srv2.cookie)
    );

    // The /proc fallback lists the same sockets with the same inodes.
    let mut proc_recs = Vec::new();
    procnet::read_tables(Path::new("/proc/net"), &mut proc_recs).expect("read /proc/net/tcp");
    for rec in [lis, cli, srv] {
        let p = find(&proc_recs, rec.state, rec.local, rec.remote);
        assert_eq!(p.inode, rec.inode, "{rec:?}");
        assert_eq!(p.uid, rec.uid);
        assert_eq!(p.cookie, 0);
    }
}

#[test]
fn dump_sees_ipv6_loopback() {
    let listener = match TcpListener::bind("[::1]:0") {
        Ok(l) => l,
        Err(e) => return common::skip(format!("no IPv6 loopback ({e})")),
    };
    let addr = listener.local_addr().expect("addr");
    let pair = Pair::open(listener, addr);
    let mut dumper = NetlinkDumper::new().expect("netlink socket");
    let recs = dump(&mut dumper);
    let [lis, ..] = pair.check(&recs, addr);

    let mut proc_recs = Vec::new();
    procnet::read_tables(Path::new("/proc/net"), &mut proc_recs).expect("read /proc/net/tcp6");
    assert_eq!(
        find(&proc_recs, TcpState::Listen, lis.local, lis.remote).inode,
        lis.inode
    );
}

/// IPv4 traffic on an IPv6 socket: the kernel reports it in the AF_INET6 dump with
/// v4-mapped addresses, which must come out as plain IPv4. The listener is bound
/// to the v4-mapped loopback address so that it listens on loopback only.
#[test]
fn v4_mapped_sockets_show_as_ipv4() {
    let listener = match TcpListener::bind("[::ffff:127.0.0.1]:0") {
        Ok(l) => l,
        Err(e) => {
            return common::skip(format!(
                "cannot bind an IPv6 socket to a v4-mapped address ({e})"
            ));
        }
    };
    let port = listener.local_addr().expect("addr").port();
    let v4: SocketAddr = SocketAddr::new([127, 0, 0, 1].into(), port);
    let pair = Pair::open(listener, v4);
    let mut dumper = NetlinkDumper::new().expect("netlink socket");
    let recs = dump(&mut dumper);

    let server_addr = pair.server.local_addr().expect("server addr");
    assert!(server_addr.is_ipv6(), "the accepted socket is an IPv6 one");
    let srv = find(&recs, TcpState::Established, v4, pair.client_addr());
    assert_eq!(srv.inode, inode_of(&pair.server));
    let lis = recs
        .iter()
        .find(|r| r.state == TcpState::Listen && r.local == v4)
        .expect("the mapped listener, shown as IPv4");
    assert_eq!(lis.inode, inode_of(&pair.listener));
    assert!(
        !recs
            .iter()
            .any(|r| r.local.ip().to_string().starts_with("::ffff:")),
        "no v4-mapped address is left"
    );
}
