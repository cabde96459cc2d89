//! CSV: one row per socket, the same columns as the JSON sockets (nested values
//! flattened: `timer` as `kind:expires_ms/retransmits`, tcp_info's rtt and
//! retransmits only). Fields are formatted into one reused buffer, since a
//! snapshot can hold 100k rows.

use std::fmt::Write as _;
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
    let mut buf = String::with_capacity(256);
    for s in sockets {
        let process = sample.process_of(s);
        // `field` formats one value into `buf` and writes it; None is empty.
        let mut field = |w: &mut csv::Writer<W>, f: &dyn Fn(&mut String) -> std::fmt::Result| {
            buf.clear();
            // Formatting into a String cannot fail.
            let _ = f(&mut buf);
            w.write_field(buf.as_bytes())
        };
        field(&mut w, &|b| b.write_str(s.state.name()))?;
        field(&mut w, &|b| {
            super::push_addr(b, &s.local);
            Ok(())
        })?;
        field(&mut w, &|b| {
            super::push_addr(b, &s.remote);
            Ok(())
        })?;
        field(&mut w, &|b| write!(b, "{}", s.recv_q))?;
        field(&mut w, &|b| write!(b, "{}", s.send_q))?;
        field(&mut w, &|b| write!(b, "{}", s.uid))?;
        field(&mut w, &|b| b.write_str(&sample.user_of(s)))?;
        field(&mut w, &|b| write!(b, "{}", s.inode))?;
        field(&mut w, &|b| match s.cookie {
            0 => Ok(()),
            c => write!(b, "{c}"),
        })?;
        field(&mut w, &|b| match process {
            Some(p) => write!(b, "{}", p.pid),
            None => Ok(()),
        })?;
        field(&mut w, &|b| match s.owner {
            Ownership::Known { fd, .. } => write!(b, "{fd}"),
            _ => Ok(()),
        })?;
        field(&mut w, &|b| {
            b.write_str(process.map_or("", |p| p.name.as_str()))
        })?;
        field(&mut w, &|b| {
            b.write_str(process.map_or("", |p| p.cmdline.as_str()))
        })?;
        field(&mut w, &|b| b.write_str(s.owner.status()))?;
        field(&mut w, &|b| super::write_timer(b, s))?;
        field(&mut w, &|b| match s.tcp_info {
            Some(t) => write!(b, "{}", t.rtt_us),
            None => Ok(()),
        })?;
        field(&mut w, &|b| match s.tcp_info {
            Some(t) => write!(b, "{}", t.total_retrans),
            None => Ok(()),
        })?;
        field(&mut w, &|b| match s.shutdown {
            Some(v) => write!(b, "{v}"),
            None => Ok(()),
        })?;
        w.write_record(None::<&[u8]>)?;
    }
    w.flush()?;
    Ok(())
}
