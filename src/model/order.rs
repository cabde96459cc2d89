//! The one order of addresses, for every table, export and aggregate that sorts
//! by them: IPv4 before IPv6, then by the address's value, then by port. The
//! keys are plain integers, so that sorting 100k sockets stays cheap.

use std::net::{IpAddr, SocketAddr};

/// An address as a key that sorts IPv4 before IPv6, then by value.
pub type IpKey = (u8, u128);

/// A socket address as a key: [`IpKey`], then the port.
pub type AddrKey = (IpKey, u16);

/// The sort key of an address.
pub fn ip_key(ip: IpAddr) -> IpKey {
    match ip {
        IpAddr::V4(v4) => (4, u128::from(v4.to_bits())),
        IpAddr::V6(v6) => (6, v6.to_bits()),
    }
}

/// The sort key of a socket address.
pub fn addr_key(addr: SocketAddr) -> AddrKey {
    (ip_key(addr.ip()), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> AddrKey {
        addr_key(text.parse().expect("address"))
    }

    #[test]
    fn ipv6_addresses_differing_in_the_high_bits_sort_apart() {
        // Near the top of the IPv6 space, where adding an offset saturates.
        let a = key("[ffff:ffff:ffff:ffff:ffff:ffff:fffe:1]:80");
        let b = key("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:1]:80");
        let c = key("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80");
        assert!(a < b && b < c, "{a:?} {b:?} {c:?}");
        assert!(key("[2001:db8::2]:443") < key("[2001:db8::3]:80"));
        assert!(key("[fe80::1]:1") > key("[2001:db8::1]:1"));
    }

    #[test]
    fn ipv4_before_ipv6_then_address_then_port() {
        assert!(key("255.255.255.255:65535") < key("[::]:0"));
        assert!(key("10.0.0.1:9") < key("10.0.0.2:1"));
        assert!(key("10.0.0.1:1") < key("10.0.0.1:2"));
        assert!(key("[::1]:1") < key("[::1]:2"));
        let mut addrs = [
            "[::1]:80",
            "127.0.0.1:443",
            "0.0.0.0:22",
            "[2001:db8::1]:80",
            "127.0.0.1:80",
        ];
        addrs.sort_by_key(|a| key(a));
        assert_eq!(
            addrs,
            [
                "0.0.0.0:22",
                "127.0.0.1:80",
                "127.0.0.1:443",
                "[::1]:80",
                "[2001:db8::1]:80",
            ]
        );
    }
}
