//! Service names of TCP ports, from a services file (`/etc/services` by
//! default): `port:https` in the filter, and the screen's names (`n`).
//!
//! The file is read once, bounded (its first [`MAX_BYTES`], at most
//! [`MAX_ENTRIES`] names), and a line that does not parse is skipped, as
//! `getservbyname` does. For a port, the first name listed wins (as
//! `getservbyport` answers); a name or alias names the port of its line.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;
use std::sync::OnceLock;

/// The most of the file read.
pub const MAX_BYTES: u64 = 4 << 20;
/// The most names kept.
pub const MAX_ENTRIES: usize = 100_000;
/// A name longer than this is skipped (`/etc/services` names are short).
const MAX_NAME: usize = 64;

/// The default services file.
pub const DEFAULT_PATH: &str = "/etc/services";

/// TCP port names, both ways.
#[derive(Clone, Debug, Default)]
pub struct Services {
    by_port: HashMap<u16, Box<str>>,
    by_name: HashMap<Box<str>, u16>,
}

impl Services {
    /// The TCP entries of a services file's text.
    pub fn parse(text: &str) -> Services {
        let mut s = Services::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut words = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, "tcp")) = port_proto.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for n in std::iter::once(name).chain(words) {
                if s.by_name.len() >= MAX_ENTRIES {
                    return s;
                }
                if n.len() > MAX_NAME || !n.bytes().all(|b| b.is_ascii_graphic()) {
                    continue;
                }
                s.by_name.entry(n.into()).or_insert(port);
                s.by_port.entry(port).or_insert_with(|| n.into());
            }
        }
        s
    }

    /// Reads `path` (bounded); an unreadable file is an error naming it.
    pub fn load(path: &Path) -> Result<Services, String> {
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_BYTES).read_to_string(&mut text))
            .map_err(|e| {
                format!(
                    "services file {}: {e}",
                    crate::escape::printable(&path.to_string_lossy())
                )
            })?;
        Ok(Services::parse(&text))
    }

    /// The port named `name` (exact, then ASCII case-insensitive).
    pub fn port(&self, name: &str) -> Option<u16> {
        self.by_name.get(name).copied().or_else(|| {
            self.by_name
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, p)| *p)
        })
    }

    /// The name of `port`, if the file has one.
    pub fn name(&self, port: u16) -> Option<&str> {
        self.by_port.get(&port).map(AsRef::as_ref)
    }

    pub fn is_empty(&self) -> bool {
        self.by_port.is_empty()
    }
}

static GLOBAL: OnceLock<Result<Services, String>> = OnceLock::new();

/// Makes `path` the services file of this process (for the filter and the
/// screen), read now; only the first call counts. The error says why it could
/// not be read (names then match nothing).
pub fn install(path: &Path) -> Result<(), String> {
    match GLOBAL.get_or_init(|| Services::load(path)) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.clone()),
    }
}

/// The process's services: the installed file, else `/etc/services`; empty
/// when unreadable.
pub fn global() -> &'static Services {
    static EMPTY: OnceLock<Services> = OnceLock::new();
    GLOBAL
        .get_or_init(|| Services::load(Path::new(DEFAULT_PATH)))
        .as_ref()
        .unwrap_or_else(|_| EMPTY.get_or_init(Services::default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_names_both_ways_first_name_wins_and_junk_is_skipped() {
        let s = Services::parse(
            "# comment\nhttp 80/tcp www # web\nhttp 80/udp\nhttps\t443/tcp\nalt 80/tcp\n\
             bad 99999/tcp\nnoproto 7\nweird\x07 9/tcp\nhttp-alt 8080/tcp webcache\n",
        );
        assert_eq!(s.name(80), Some("http"));
        assert_eq!(s.port("www"), Some(80));
        assert_eq!(s.port("alt"), Some(80));
        assert_eq!(s.port("HTTPS"), Some(443));
        assert_eq!(s.port("http-alt"), Some(8080));
        assert_eq!(s.port("webcache"), Some(8080));
        assert_eq!(
            s.name(9),
            None,
            "a name with a control character is skipped"
        );
        assert_eq!(s.port("bad"), None);
        assert_eq!(s.port("noproto"), None);
    }
}
