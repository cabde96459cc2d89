//! Closing one socket with `SOCK_DESTROY`, as `ss -K` does: an
//! `inet_diag_req_v2` naming the socket by its exact 4-tuple and cookie, sent
//! on a sock_diag socket of the socket's own network namespace. The kernel
//! aborts it (`tcp_abort`: the peer gets a RST, the owner ECONNABORTED).
//!
//! The kernel's answer is an `NLMSG_ERROR` acknowledgement: 0, or
//! EPERM (no CAP_NET_ADMIN over the namespace), EOPNOTSUPP (a kernel built
//! without `CONFIG_INET_DIAG_DESTROY`), ENOENT (no such socket any more) or
//! ESTALE (the 4-tuple is now another socket: the cookie differs).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use netlink_packet_core::{
    ErrorBuffer, NLM_F_ACK, NLM_F_REQUEST, NLMSG_ALIGNTO, NLMSG_ERROR, NetlinkBuffer,
    NetlinkHeader, NetlinkMessage,
};
use netlink_packet_sock_diag::{
    SockDiagDestroy, SockDiagMessage,
    constants::{AF_INET, AF_INET6, IPPROTO_TCP},
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
};

use super::NetlinkDumper;

/// Datagrams read while waiting for the acknowledgement (stale replies of an
/// abandoned dump come first): past this the answer is taken as lost.
const MAX_READS: usize = 64;

/// The socket id of `local`/`remote` with `cookie` (0: none, which the kernel
/// does not check), in the family of `local`.
fn socket_id(local: SocketAddr, remote: SocketAddr, cookie: u64) -> (u8, SocketId) {
    let family = if local.is_ipv4() { AF_INET } else { AF_INET6 };
    let v6 = |a: IpAddr| match a {
        IpAddr::V4(v4) if family == AF_INET6 => IpAddr::V6(v4.to_ipv6_mapped()),
        other => other,
    };
    let mut raw = [0u8; 8];
    // The inverse of `super::cookie`: two host-order u32, low word first;
    // "no cookie" is all ones (INET_DIAG_NOCOOKIE).
    if cookie == 0 {
        raw = [0xff; 8];
    } else {
        let lo = u32::try_from(cookie & 0xffff_ffff).unwrap_or(u32::MAX);
        let hi = u32::try_from(cookie >> 32).unwrap_or(u32::MAX);
        raw[..4].copy_from_slice(&lo.to_ne_bytes());
        raw[4..].copy_from_slice(&hi.to_ne_bytes());
    }
    (
        family,
        SocketId {
            source_port: local.port(),
            destination_port: remote.port(),
            source_address: v6(local.ip()),
            destination_address: v6(remote.ip()),
            interface_id: 0,
            cookie: raw,
        },
    )
}

impl NetlinkDumper {
    /// Asks the kernel to close the TCP socket `local` -> `remote` whose
    /// cookie is `cookie`; the kernel's refusal as an error of its errno.
    pub fn destroy(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        cookie: u64,
    ) -> io::Result<()> {
        let (family, socket_id) = socket_id(local, remote, cookie);
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagDestroy::new(SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::all(),
                socket_id,
            }))
            .into(),
        );
        self.send_packet(&mut packet)?;
        for _ in 0..MAX_READS {
            let n = self.recv()?;
            if n == 0 || n > self.buf.len() {
                return Err(io::Error::other("malformed sock_diag reply"));
            }
            if let Some(answer) = ack_of(&self.buf[..n], seq) {
                return answer;
            }
        }
        Err(io::Error::other(
            "no answer from the kernel to the SOCK_DESTROY request",
        ))
    }

    /// Whether this kernel can close sockets: a destroy of a socket that
    /// cannot exist (port 0) is refused with EOPNOTSUPP before any lookup
    /// when `CONFIG_INET_DIAG_DESTROY` is off, and answered ENOENT when on.
    pub fn destroy_supported(&mut self) -> io::Result<bool> {
        let none = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        match self.destroy(none, none, 0) {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error()) => {
                Ok(false)
            }
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOENT.raw_os_error()) => Ok(true),
            Ok(()) => Ok(true),
            Err(e) => Err(e),
        }
    }
}

/// The acknowledgement of request `seq` in a datagram, if it holds one.
fn ack_of(data: &[u8], seq: u32) -> Option<io::Result<()>> {
    let mut offset = 0;
    while offset < data.len() {
        let Ok(msg) = NetlinkBuffer::new_checked(&data[offset..]) else {
            return Some(Err(io::Error::other("malformed sock_diag reply")));
        };
        let len = msg.length() as usize;
        offset += len.max(1).next_multiple_of(usize::from(NLMSG_ALIGNTO));
        if msg.sequence_number() != seq || msg.message_type() != NLMSG_ERROR {
            continue;
        }
        let Ok(err) = ErrorBuffer::new_checked(msg.payload()) else {
            return Some(Err(io::Error::other("malformed sock_diag acknowledgement")));
        };
        return Some(match err.code() {
            None => Ok(()),
            Some(code) => Err(io::Error::from_raw_os_error(code.get().saturating_abs())),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_goes_back_as_the_dump_gave_it() {
        let local: SocketAddr = "10.0.0.1:80".parse().expect("addr");
        let remote: SocketAddr = "10.0.0.2:5555".parse().expect("addr");
        let cookie = 0x0000_0012_0000_3456;
        let (family, id) = socket_id(local, remote, cookie);
        assert_eq!(family, AF_INET);
        assert_eq!(super::super::cookie(&id.cookie), cookie);
        assert_eq!(id.source_port, 80);
        assert_eq!(id.destination_port, 5555);
        let (_, none) = socket_id(local, remote, 0);
        assert_eq!(none.cookie, [0xff; 8]);
    }

    #[test]
    fn an_ipv6_socket_keeps_its_family_and_addresses() {
        let local: SocketAddr = "[::1]:80".parse().expect("addr");
        let remote: SocketAddr = "[::1]:5555".parse().expect("addr");
        let (family, id) = socket_id(local, remote, 7);
        assert_eq!(family, AF_INET6);
        assert_eq!(id.source_address, local.ip());
        assert_eq!(id.destination_address, remote.ip());
    }
}
