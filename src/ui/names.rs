//! `d`: names instead of numbers: service names of ports (the services file)
//! and, on the second press, reverse DNS of addresses. Off by default.
//!
//! Reverse DNS never blocks a frame: a frame only reads the cache and notes
//! the addresses it showed without a name; the screen's loop hands those to
//! the resolver threads (a bounded queue; what does not fit is asked again at
//! a later frame), whose answers come back as messages. The cache is bounded,
//! a lookup unanswered after [`TIMEOUT_TICKS`] counts as no name, and names
//! (which whoever runs the DNS zone chooses) are kept printable and short.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::filter::services;

/// Addresses whose lookup is remembered.
pub const CACHE_MAX: usize = 4096;
/// A lookup not answered in this many ticks (a quarter second each) is taken
/// as no name.
pub const TIMEOUT_TICKS: u32 = 20;
/// Addresses one frame asks for at most.
const WANTED_MAX: usize = 256;
/// The longest name kept (a DNS name is at most 253 characters).
const NAME_MAX: usize = 253;

/// What `d` shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NameMode {
    #[default]
    Off,
    /// Ports by their service names.
    Services,
    /// And addresses by their reverse DNS names.
    Dns,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Lookup {
    /// Asked for this many ticks ago.
    Pending(u32),
    Found(String),
    /// No name, or no answer in time.
    None,
}

/// The names state of the screen.
#[derive(Clone, Debug, Default)]
pub struct Names {
    pub mode: NameMode,
    cache: HashMap<IpAddr, Lookup>,
    wanted: Vec<IpAddr>,
}

impl Names {
    /// `d`: off → services → services and DNS → off; the words for the
    /// status line.
    pub fn toggle(&mut self) -> &'static str {
        self.mode = match self.mode {
            NameMode::Off => NameMode::Services,
            NameMode::Services => NameMode::Dns,
            NameMode::Dns => NameMode::Off,
        };
        match self.mode {
            NameMode::Off => "names off: numeric addresses and ports",
            NameMode::Services => "service names of ports (press d again for reverse DNS)",
            NameMode::Dns => "service names and reverse DNS (looked up in the background)",
        }
    }

    /// An endpoint as the table shows it: `10.0.0.1:https`,
    /// `db.example.net:5432`; numbers when names are off.
    pub fn endpoint(&self, a: SocketAddr) -> String {
        if self.mode == NameMode::Off {
            return super::fmt::endpoint(a);
        }
        let host = self.host_of(a.ip());
        match (a.port(), services::global().name(a.port())) {
            (p, Some(name)) if p != 0 => format!("{host}:{name}"),
            (p, _) => format!("{host}:{p}"),
        }
    }

    /// An address alone (a port's top peers): its reverse DNS name when
    /// that is on and known, else the number.
    pub fn host(&self, ip: IpAddr) -> String {
        match self.cache.get(&ip) {
            Some(Lookup::Found(name)) if self.mode == NameMode::Dns => name.clone(),
            _ => ip.to_string(),
        }
    }

    fn host_of(&self, ip: IpAddr) -> String {
        match self.cache.get(&ip) {
            Some(Lookup::Found(name)) if self.mode == NameMode::Dns => name.clone(),
            _ => {
                let numeric = super::fmt::endpoint(SocketAddr::new(ip, 0));
                numeric.trim_end_matches(":0").to_owned()
            }
        }
    }

    /// A port alone (the ports table): `443 https` with names on and a
    /// service of that number, else the number.
    pub fn port(&self, port: u16) -> String {
        match services::global().name(port) {
            Some(name) if self.mode != NameMode::Off && port != 0 => format!("{port} {name}"),
            _ => port.to_string(),
        }
    }

    /// Notes that a frame showed `ip` (asked for if it has no answer yet).
    pub fn saw(&mut self, ip: IpAddr) {
        if self.mode != NameMode::Dns
            || ip.is_unspecified()
            || self.cache.contains_key(&ip)
            || self.wanted.len() >= WANTED_MAX
            || self.wanted.contains(&ip)
        {
            return;
        }
        self.wanted.push(ip);
    }

    /// The addresses to look up, now pending.
    pub fn take_wanted(&mut self) -> Vec<IpAddr> {
        let wanted = std::mem::take(&mut self.wanted);
        for ip in &wanted {
            self.insert(*ip, Lookup::Pending(0));
        }
        wanted
    }

    /// An address the resolver could not take now (its queue was full): asked
    /// again at a later frame.
    pub fn not_taken(&mut self, ip: IpAddr) {
        if self.cache.get(&ip) == Some(&Lookup::Pending(0)) {
            self.cache.remove(&ip);
        }
    }

    /// The resolver's answer for `ip`.
    pub fn resolved(&mut self, ip: IpAddr, name: Option<String>) {
        let name = name
            .map(|n| crate::escape::printable(n.trim_end_matches('.')).into_owned())
            .filter(|n| !n.is_empty() && n.len() <= NAME_MAX);
        self.insert(ip, name.map_or(Lookup::None, Lookup::Found));
    }

    /// A tick: lookups unanswered for too long count as no name.
    pub fn tick(&mut self) {
        for l in self.cache.values_mut() {
            if let Lookup::Pending(t) = l {
                *t += 1;
                if *t >= TIMEOUT_TICKS {
                    *l = Lookup::None;
                }
            }
        }
    }

    /// The name found for `ip`, if any.
    pub fn name_of(&self, ip: IpAddr) -> Option<&str> {
        match self.cache.get(&ip) {
            Some(Lookup::Found(n)) => Some(n),
            _ => None,
        }
    }

    fn insert(&mut self, ip: IpAddr, l: Lookup) {
        if self.cache.len() >= CACHE_MAX && !self.cache.contains_key(&ip) {
            // Forget the misses first, then everything: the screen asks again.
            self.cache.retain(|_, l| matches!(l, Lookup::Found(_)));
            if self.cache.len() >= CACHE_MAX {
                self.cache.clear();
            }
        }
        self.cache.insert(ip, l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn only_the_dns_mode_asks_and_answers_are_kept_printable() {
        let mut n = Names::default();
        n.saw(ip("10.0.0.1"));
        assert!(n.take_wanted().is_empty(), "off: nothing asked");
        n.toggle();
        n.saw(ip("10.0.0.1"));
        assert!(n.take_wanted().is_empty(), "services only: nothing asked");
        n.toggle();
        n.saw(ip("10.0.0.1"));
        n.saw(ip("10.0.0.1"));
        n.saw(ip("0.0.0.0"));
        assert_eq!(n.take_wanted(), vec![ip("10.0.0.1")]);
        n.saw(ip("10.0.0.1"));
        assert!(n.take_wanted().is_empty(), "pending: not asked twice");
        n.resolved(ip("10.0.0.1"), Some("evil\x1b[2J.example.".into()));
        assert_eq!(n.name_of(ip("10.0.0.1")), Some("evil\\x1b[2J.example"));
        assert!(
            n.endpoint("10.0.0.1:5000".parse().expect("addr"))
                .starts_with("evil\\x1b[2J.example:")
        );
    }

    #[test]
    fn an_address_alone_is_named_only_with_dns_on() {
        let mut n = Names::default();
        n.resolved(ip("10.0.0.3"), Some("peer.example".into()));
        assert_eq!(n.host(ip("10.0.0.3")), "10.0.0.3", "off");
        assert_eq!(n.port(443), "443", "off: the number");
        n.toggle();
        assert_eq!(n.host(ip("10.0.0.3")), "10.0.0.3", "services only");
        assert!(n.port(443).starts_with("443"), "{}", n.port(443));
        n.toggle();
        assert_eq!(n.host(ip("10.0.0.3")), "peer.example");
        assert_eq!(
            n.host(ip("2001:db8::1")),
            "2001:db8::1",
            "no name: the number"
        );
        assert_eq!(n.port(0), "0");
    }

    #[test]
    fn unanswered_lookups_time_out_and_the_cache_stays_bounded() {
        let mut n = Names {
            mode: NameMode::Dns,
            ..Names::default()
        };
        n.saw(ip("10.0.0.2"));
        n.take_wanted();
        for _ in 0..TIMEOUT_TICKS {
            n.tick();
        }
        assert_eq!(n.cache.get(&ip("10.0.0.2")), Some(&Lookup::None));
        for i in 0..(u32::try_from(CACHE_MAX).expect("small") + 10) {
            n.resolved(IpAddr::from(i.to_be_bytes()), Some(format!("h{i}")));
        }
        assert!(n.cache.len() <= CACHE_MAX);
    }
}
