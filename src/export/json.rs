//! The JSON snapshot: a stable, versioned document (see the README for its fields).
//! New fields may be added; existing ones keep their name and meaning.

use std::io::Write;

use serde::Serialize;

use crate::model::{
    Health, HostInfo, KernelCounters, Sample, SocketRecord, StateCounts, TcpInfoLite, Timer,
};

/// Version of the document's layout; bumped only when a field changes meaning.
pub const JSON_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    version: u32,
    taken_at: String,
    host: &'a HostInfo,
    counts: StateCounts,
    sockets: Vec<SocketJson<'a>>,
    counters: &'a KernelCounters,
    health: &'a Health,
}

#[derive(Serialize)]
struct SocketJson<'a> {
    state: &'static str,
    local: String,
    remote: String,
    recv_q: u32,
    send_q: u32,
    uid: u32,
    user: std::borrow::Cow<'a, str>,
    inode: u64,
    /// The kernel's socket cookie; null from the /proc fallback.
    cookie: Option<u64>,
    pid: Option<u32>,
    fd: Option<u32>,
    process: Option<&'a str>,
    cmdline: Option<&'a str>,
    /// `known`, `kernel` (no process holds it), `hidden` or `unknown`.
    owner: &'static str,
    timer: Option<Timer>,
    tcp_info: Option<TcpInfoLite>,
    shutdown: Option<u8>,
}

fn socket_json<'a>(sample: &'a Sample, s: &'a SocketRecord) -> SocketJson<'a> {
    let process = sample.process_of(s);
    let fd = match s.owner {
        crate::model::Ownership::Known { fd, .. } => Some(fd),
        _ => None,
    };
    SocketJson {
        state: s.state.name(),
        local: s.local.to_string(),
        remote: s.remote.to_string(),
        recv_q: s.recv_q,
        send_q: s.send_q,
        uid: s.uid,
        user: sample.user_of(s),
        inode: s.inode,
        cookie: (s.cookie != 0).then_some(s.cookie),
        pid: process.map(|p| p.pid),
        fd,
        process: process.map(|p| p.name.as_str()),
        cmdline: process.map(|p| p.cmdline.as_str()),
        owner: s.owner.status(),
        timer: s.timer,
        tcp_info: s.tcp_info,
        shutdown: s.shutdown,
    }
}

/// Writes `sockets` (a selection of `sample`'s) as the JSON snapshot. `counts`
/// are over the sockets written.
pub fn write_json<W: Write>(
    out: W,
    sample: &Sample,
    sockets: &[&SocketRecord],
    pretty: bool,
) -> serde_json::Result<()> {
    let doc = Document {
        version: JSON_VERSION,
        taken_at: humantime::format_rfc3339_millis(sample.taken_at).to_string(),
        host: &sample.host,
        counts: StateCounts::tally(sockets.iter().map(|s| s.state)),
        sockets: sockets.iter().map(|s| socket_json(sample, s)).collect(),
        counters: &sample.counters,
        health: &sample.health,
    };
    if pretty {
        serde_json::to_writer_pretty(out, &doc)
    } else {
        serde_json::to_writer(out, &doc)
    }
}
