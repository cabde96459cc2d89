//! The kernel's TCP counters and the sysctls that give them meaning: the evidence
//! and denominators of the diagnoses (see docs/DIAGNOSIS.md).
//!
//! Collection never fails as a whole: a missing or unreadable file, an absent
//! sysctl (older kernel, container) or an odd value leaves that one value empty
//! and adds a note, and everything else is still read. Parsing is kept apart from
//! reading, as pure functions over the files' text, so fixtures can test it.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::Path;
use std::str::FromStr;

use crate::model::{KernelCounters, Sockstat, Sysctls};

/// Reads the counters and sysctls of the network namespace `proc_root` (normally
/// `/proc`) shows. Returns them with a note for everything missing or unreadable.
pub fn read_counters(proc_root: &Path) -> (KernelCounters, Vec<String>) {
    let mut notes = Vec::new();
    let mut counters = KernelCounters::default();

    let net = proc_root.join("net");
    if let Some(text) = read_text(&net.join("snmp"), &mut notes) {
        counters.tcp = parse_section(&text, "Tcp", "/proc/net/snmp", &mut notes);
    }
    if let Some(text) = read_text(&net.join("netstat"), &mut notes) {
        counters.tcp_ext = parse_section(&text, "TcpExt", "/proc/net/netstat", &mut notes);
    }
    if let Some(text) = read_text(&net.join("sockstat"), &mut notes) {
        counters.sockstat = parse_sockstat(&text, &mut notes);
    }
    counters.sysctls = read_sysctls(&proc_root.join("sys/net"), &mut notes);
    (counters, notes)
}

fn read_text(path: &Path, notes: &mut Vec<String>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) => {
            notes.push(format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}

/// Parses the `section:` header/value line pair of `/proc/net/snmp` or
/// `/proc/net/netstat` (`Tcp`, `TcpExt`, ...) into a name → value map. A value that
/// does not parse, or a header and value line of different lengths, is noted;
/// the names that do line up are kept. `source` names the file in notes.
pub fn parse_section<T: FromStr>(
    text: &str,
    section: &str,
    source: &str,
    notes: &mut Vec<String>,
) -> BTreeMap<String, T> {
    let mut map = BTreeMap::new();
    let mut lines = text
        .lines()
        .filter(|l| l.split_once(':').is_some_and(|(name, _)| name == section));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        notes.push(format!("{source}: no {section}: header and value lines"));
        return map;
    };
    let names = names.split_once(':').map_or("", |(_, rest)| rest);
    let values = values.split_once(':').map_or("", |(_, rest)| rest);
    for (name, value) in names
        .split_ascii_whitespace()
        .zip(values.split_ascii_whitespace())
    {
        match value.parse() {
            Ok(v) => {
                map.insert(name.to_owned(), v);
            }
            Err(_) => notes.push(format!("{source}: {section} {name}: bad value {value:?}")),
        }
    }
    let n_names = names.split_ascii_whitespace().count();
    let n_values = values.split_ascii_whitespace().count();
    if n_names != n_values {
        notes.push(format!(
            "{source}: {section}: {n_names} names but {n_values} values"
        ));
    }
    map
}

/// Parses `/proc/net/sockstat`: `sockets: used N` and the `TCP:` line. Missing
/// or bad fields stay 0 and are noted.
pub fn parse_sockstat(text: &str, notes: &mut Vec<String>) -> Sockstat {
    let mut s = Sockstat::default();
    let mut seen_sockets = false;
    let mut seen_tcp = [false; 5];
    for line in text.lines() {
        let Some((head, rest)) = line.split_once(':') else {
            continue;
        };
        let mut words = rest.split_ascii_whitespace();
        while let (Some(key), Some(value)) = (words.next(), words.next()) {
            let slot = match (head, key) {
                ("sockets", "used") => {
                    seen_sockets = true;
                    &mut s.sockets_used
                }
                ("TCP", key) => {
                    let Some(i) = ["inuse", "orphan", "tw", "alloc", "mem"]
                        .iter()
                        .position(|k| *k == key)
                    else {
                        continue;
                    };
                    seen_tcp[i] = true;
                    match i {
                        0 => &mut s.inuse,
                        1 => &mut s.orphan,
                        2 => &mut s.tw,
                        3 => &mut s.alloc,
                        _ => &mut s.mem,
                    }
                }
                _ => continue,
            };
            match value.parse() {
                Ok(v) => *slot = v,
                Err(_) => notes.push(format!(
                    "/proc/net/sockstat: {head} {key}: bad value {value:?}"
                )),
            }
        }
    }
    if !seen_sockets {
        notes.push("/proc/net/sockstat: no \"sockets: used\"".to_owned());
    }
    for (i, key) in ["inuse", "orphan", "tw", "alloc", "mem"].iter().enumerate() {
        if !seen_tcp[i] {
            notes.push(format!("/proc/net/sockstat: no TCP {key}"));
        }
    }
    s
}

/// A single-number sysctl.
pub fn parse_u64(text: &str) -> Result<u64, String> {
    let t = text.trim();
    t.parse().map_err(|_| format!("not a number: {t:?}"))
}

/// `ip_local_port_range`: two ports, tab-separated.
pub fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let mut words = text.split_ascii_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(lo), Some(hi), None) => {
            let lo = port(lo)?;
            let hi = port(hi)?;
            if lo > hi {
                return Err(format!("empty range {lo}-{hi}"));
            }
            Ok((lo, hi))
        }
        _ => Err(format!("expected two ports, got {:?}", text.trim())),
    }
}

/// `ip_local_reserved_ports`: comma-separated ports and `lo-hi` ranges, or empty.
pub fn parse_reserved_ports(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(Vec::new());
    }
    t.split(',')
        .map(|item| {
            let item = item.trim();
            let (lo, hi) = match item.split_once('-') {
                Some((lo, hi)) => (port(lo)?, port(hi)?),
                None => (port(item)?, port(item)?),
            };
            if lo > hi {
                return Err(format!("empty range {item:?}"));
            }
            Ok((lo, hi))
        })
        .collect()
}

/// `tcp_mem`: three page counts (low, pressure, high).
pub fn parse_tcp_mem(text: &str) -> Result<[u64; 3], String> {
    let mut out = [0u64; 3];
    let mut words = text.split_ascii_whitespace();
    for slot in &mut out {
        let w = words
            .next()
            .ok_or_else(|| format!("expected three numbers, got {:?}", text.trim()))?;
        *slot = parse_u64(w)?;
    }
    if words.next().is_some() {
        return Err(format!("expected three numbers, got {:?}", text.trim()));
    }
    Ok(out)
}

fn port(text: &str) -> Result<u16, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("not a port: {:?}", text.trim()))
}

/// The single-number sysctls under `net/ipv4`, and where each goes.
type Slot = fn(&mut Sysctls) -> &mut Option<u64>;
const IPV4_NUMBERS: [(&str, Slot); 14] = [
    ("tcp_max_syn_backlog", |s| &mut s.tcp_max_syn_backlog),
    ("tcp_syncookies", |s| &mut s.tcp_syncookies),
    ("tcp_synack_retries", |s| &mut s.tcp_synack_retries),
    ("tcp_syn_retries", |s| &mut s.tcp_syn_retries),
    ("tcp_abort_on_overflow", |s| &mut s.tcp_abort_on_overflow),
    ("tcp_fin_timeout", |s| &mut s.tcp_fin_timeout),
    ("tcp_max_orphans", |s| &mut s.tcp_max_orphans),
    ("tcp_orphan_retries", |s| &mut s.tcp_orphan_retries),
    ("tcp_max_tw_buckets", |s| &mut s.tcp_max_tw_buckets),
    ("tcp_tw_reuse", |s| &mut s.tcp_tw_reuse),
    ("tcp_keepalive_time", |s| &mut s.tcp_keepalive_time),
    ("tcp_keepalive_intvl", |s| &mut s.tcp_keepalive_intvl),
    ("tcp_keepalive_probes", |s| &mut s.tcp_keepalive_probes),
    ("tcp_retries2", |s| &mut s.tcp_retries2),
];

/// Every sysctl file read, as (directory under `net/`, name).
const SYSCTL_FILES: [(&str, &str); 18] = [
    ("core", "somaxconn"),
    ("ipv4", "tcp_max_syn_backlog"),
    ("ipv4", "tcp_syncookies"),
    ("ipv4", "tcp_synack_retries"),
    ("ipv4", "tcp_syn_retries"),
    ("ipv4", "tcp_abort_on_overflow"),
    ("ipv4", "tcp_fin_timeout"),
    ("ipv4", "tcp_max_orphans"),
    ("ipv4", "tcp_orphan_retries"),
    ("ipv4", "tcp_max_tw_buckets"),
    ("ipv4", "tcp_tw_reuse"),
    ("ipv4", "tcp_keepalive_time"),
    ("ipv4", "tcp_keepalive_intvl"),
    ("ipv4", "tcp_keepalive_probes"),
    ("ipv4", "tcp_retries2"),
    ("ipv4", "ip_local_port_range"),
    ("ipv4", "ip_local_reserved_ports"),
    ("ipv4", "tcp_mem"),
];

/// The sysctls that only the initial namespace shows (on Linux 6.x:
/// `tcp_mem`, `tcp_max_orphans`): host-wide limits, whose values inside any
/// namespace are the host's.
pub fn copy_host_wide(from_host: &Sysctls, into: &mut Sysctls) {
    if into.tcp_mem.is_none() {
        into.tcp_mem = from_host.tcp_mem;
    }
    if into.tcp_max_orphans.is_none() {
        into.tcp_max_orphans = from_host.tcp_max_orphans;
    }
}

/// Reads the sysctls under `sys_net` (normally `/proc/sys/net`).
fn read_sysctls(sys_net: &Path, notes: &mut Vec<String>) -> Sysctls {
    if let Err(e) = std::fs::metadata(sys_net) {
        notes.push(format!("no sysctls: {}: {e}", sys_net.display()));
        return Sysctls::default();
    }
    sysctls_from(
        |dir, name| match std::fs::read_to_string(sys_net.join(dir).join(name)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        },
        notes,
    )
}

/// The sysctls, each read by `read(dir, name)`: `Ok(None)` when this
/// namespace has no such sysctl (a host-wide one inside a namespace, an older
/// kernel), which is no trouble and gets no note.
fn sysctls_from(
    mut read: impl FnMut(&str, &str) -> std::io::Result<Option<String>>,
    notes: &mut Vec<String>,
) -> Sysctls {
    let mut get = |dir: &str, name: &str| match read(dir, name) {
        Ok(text) => text,
        Err(e) => {
            notes.push(format!("sysctl net.{dir}.{name}: {e}"));
            None
        }
    };
    let mut texts: Vec<Option<String>> = SYSCTL_FILES.iter().map(|(d, n)| get(d, n)).collect();
    let mut take = |dir: &str, name: &str| {
        SYSCTL_FILES
            .iter()
            .position(|&(d, n)| d == dir && n == name)
            .and_then(|i| texts[i].take())
    };
    let mut s = Sysctls {
        somaxconn: parsed(
            take("core", "somaxconn"),
            "core",
            "somaxconn",
            parse_u64,
            notes,
        ),
        ..Sysctls::default()
    };
    for (name, slot) in IPV4_NUMBERS {
        *slot(&mut s) = parsed(take("ipv4", name), "ipv4", name, parse_u64, notes);
    }
    s.ip_local_port_range = parsed(
        take("ipv4", "ip_local_port_range"),
        "ipv4",
        "ip_local_port_range",
        parse_port_range,
        notes,
    );
    s.ip_local_reserved_ports = parsed(
        take("ipv4", "ip_local_reserved_ports"),
        "ipv4",
        "ip_local_reserved_ports",
        parse_reserved_ports,
        notes,
    )
    .unwrap_or_default();
    s.tcp_mem = parsed(
        take("ipv4", "tcp_mem"),
        "ipv4",
        "tcp_mem",
        parse_tcp_mem,
        notes,
    );
    s
}

/// Parses a sysctl's text; `None` (and a note) when it does not parse.
fn parsed<T, E: Display>(
    text: Option<String>,
    dir: &str,
    name: &str,
    parse: impl Fn(&str) -> Result<T, E>,
    notes: &mut Vec<String>,
) -> Option<T> {
    match parse(&text?) {
        Ok(v) => Some(v),
        Err(e) => {
            notes.push(format!("sysctl net.{dir}.{name}: {e}"));
            None
        }
    }
}

/// Bytes of one counter or sysctl file read, at the most (`/proc/net/netstat`
/// is a few KiB).
const MAX_COUNTER_FILE: usize = 256 * 1024;

/// The counter and sysctl files of one network namespace, opened once (from
/// inside it: a proc net or sysctl file stays bound to the namespace it was
/// opened in) and read again from the start at every sample.
#[derive(Debug)]
pub struct CounterFiles {
    snmp: Option<std::fs::File>,
    netstat: Option<std::fs::File>,
    sockstat: Option<std::fs::File>,
    /// One per [`SYSCTL_FILES`]; `None` where the namespace has no such sysctl.
    sysctls: Vec<Option<std::fs::File>>,
}

impl CounterFiles {
    /// Opens the files of `proc_net` (`/proc/thread-self/net` from inside the
    /// namespace) and `sys_net` (`/proc/sys/net`). A file that cannot be
    /// opened is left out: its values stay empty.
    pub fn open(proc_net: &Path, sys_net: &Path) -> CounterFiles {
        let open = |p: std::path::PathBuf| std::fs::File::open(p).ok();
        CounterFiles {
            snmp: open(proc_net.join("snmp")),
            netstat: open(proc_net.join("netstat")),
            sockstat: open(proc_net.join("sockstat")),
            sysctls: SYSCTL_FILES
                .iter()
                .map(|(dir, name)| open(sys_net.join(dir).join(name)))
                .collect(),
        }
    }

    /// The counters and sysctls as they are now, with notes for what could
    /// not be read or parsed.
    pub fn read(&self) -> (KernelCounters, Vec<String>) {
        let mut notes = Vec::new();
        let mut counters = KernelCounters::default();
        let text = |file: Option<&std::fs::File>, what: &str, notes: &mut Vec<String>| {
            let file = file?;
            match read_whole(file) {
                Ok(t) => Some(t),
                Err(e) => {
                    notes.push(format!("cannot read {what}: {e}"));
                    None
                }
            }
        };
        if let Some(t) = text(self.snmp.as_ref(), "/proc/net/snmp", &mut notes) {
            counters.tcp = parse_section(&t, "Tcp", "/proc/net/snmp", &mut notes);
        }
        if let Some(t) = text(self.netstat.as_ref(), "/proc/net/netstat", &mut notes) {
            counters.tcp_ext = parse_section(&t, "TcpExt", "/proc/net/netstat", &mut notes);
        }
        if let Some(t) = text(self.sockstat.as_ref(), "/proc/net/sockstat", &mut notes) {
            counters.sockstat = parse_sockstat(&t, &mut notes);
        }
        counters.sysctls = sysctls_from(
            |dir, name| {
                let i = SYSCTL_FILES
                    .iter()
                    .position(|&(d, n)| d == dir && n == name);
                match i.and_then(|i| self.sysctls.get(i)).and_then(Option::as_ref) {
                    Some(file) => read_whole(file).map(Some),
                    None => Ok(None),
                }
            },
            &mut notes,
        );
        (counters, notes)
    }
}

/// The text of an open file from its start, at most [`MAX_COUNTER_FILE`]
/// bytes (positional reads: the file's offset is not used).
fn read_whole(file: &std::fs::File) -> std::io::Result<String> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 16 * 1024];
    let mut len = 0;
    loop {
        if len == buf.len() {
            if buf.len() >= MAX_COUNTER_FILE {
                break;
            }
            buf.resize((buf.len() * 2).min(MAX_COUNTER_FILE), 0);
        }
        let n = file.read_at(&mut buf[len..], len as u64)?;
        if n == 0 {
            break;
        }
        len += n;
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests;
