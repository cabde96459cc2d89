//! CSV: one row per socket, the same columns as the JSON sockets (nested values
//! flattened: `timer` as `kind:expires_ms/retransmits`, tcp_info's rtt only).

use std::io::Write;

use crate::model::{Ownership, Sample, SocketRecord};

/// The header row, in order.
pub const CSV_COLUMNS: [&str; 18] = [
    "state", "local", "remote", "recv_q", "send_q", "uid", "user", "inode", "cookie", "pid", "fd",
    "process", "cmdline", "owner", "timer", "rtt_us", "retrans", "shutdown",
];

pub fn write_csv<W: Write>(out: W, sample: &Sample, sockets: &[&SocketRecord]) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_COLUMNS)?;
    for s in sockets {
        let process = sample.process_of(s);
        let opt = |v: Option<String>| v.unwrap_or_default();
        let fd = match s.owner {
            Ownership::Known { fd, .. } => Some(fd.to_string()),
            _ => None,
        };
        w.write_record([
            s.state.name().to_string(),
            s.local.to_string(),
            s.remote.to_string(),
            s.recv_q.to_string(),
            s.send_q.to_string(),
            s.uid.to_string(),
            sample.user_of(s).into_owned(),
            s.inode.to_string(),
            opt((s.cookie != 0).then(|| s.cookie.to_string())),
            opt(process.map(|p| p.pid.to_string())),
            opt(fd),
            opt(process.map(|p| p.name.clone())),
            opt(process.map(|p| p.cmdline.clone())),
            s.owner.status().to_string(),
            super::timer_text(s),
            opt(s.tcp_info.map(|t| t.rtt_us.to_string())),
            opt(s.tcp_info.map(|t| t.total_retrans.to_string())),
            opt(s.shutdown.map(|v| v.to_string())),
        ])?;
    }
    w.flush()?;
    Ok(())
}
