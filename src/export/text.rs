//! The aligned table, laid out like `ss -tanp` so that operators read it at once.
//!
//! At 100k sockets the table is megabytes: cells are formatted once into one
//! arena string (no allocation per cell), measured, then written padded.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::model::{Ownership, Sample, SocketRecord};

const HEADER: [&str; 7] = [
    "Netns",
    "State",
    "Recv-Q",
    "Send-Q",
    "Local Address:Port",
    "Peer Address:Port",
    "Process",
];

/// Writes the table: `State Recv-Q Send-Q Local Address:Port Peer Address:Port
/// Process`, columns as wide as their widest cell; first a `Netns` column (the
/// socket's namespace by its label) when the sample spans more than one.
pub fn write_table<W: Write>(
    mut out: W,
    sample: &Sample,
    sockets: &[&SocketRecord],
) -> io::Result<()> {
    let mut arena = String::with_capacity(sockets.len() * 96);
    let mut ends: Vec<usize> = Vec::with_capacity(sockets.len() * 7);
    let mut width = HEADER.map(str::len);
    let netns = sample.multi_netns();
    for s in sockets {
        let mut cell = |i: usize, arena: &mut String, ends: &mut Vec<usize>| {
            let start = ends.last().copied().unwrap_or(0);
            width[i] = width[i].max(arena.len() - start);
            ends.push(arena.len());
        };
        let mut num = itoa::Buffer::new();
        if netns {
            // A container's hostname or an `ip netns` name: escaped.
            super::push_printable(&mut arena, &sample.netns_label(s.netns));
        }
        cell(0, &mut arena, &mut ends);
        arena.push_str(s.state.ss_name());
        cell(1, &mut arena, &mut ends);
        arena.push_str(num.format(s.recv_q));
        cell(2, &mut arena, &mut ends);
        arena.push_str(num.format(s.send_q));
        cell(3, &mut arena, &mut ends);
        super::push_addr(&mut arena, &s.local);
        cell(4, &mut arena, &mut ends);
        super::push_addr(&mut arena, &s.remote);
        cell(5, &mut arena, &mut ends);
        owner_text(&mut arena, sample, s);
        cell(6, &mut arena, &mut ends);
    }
    // Numbers right-aligned, text left-aligned, as ss does; padded by hand
    // because the formatter's padding is slow at this volume.
    const SPACES: &str = "                                                                ";
    let pad = |out: &mut W, n: usize| -> io::Result<()> {
        let mut n = n;
        while n > 0 {
            let k = n.min(SPACES.len());
            out.write_all(&SPACES.as_bytes()[..k])?;
            n -= k;
        }
        Ok(())
    };
    let line = |out: &mut W, cells: [&str; 7]| -> io::Result<()> {
        for (i, cell) in cells.iter().enumerate() {
            if i == 0 && !netns {
                continue;
            }
            if i == 6 {
                out.write_all(cell.as_bytes())?;
                break;
            }
            let gap = width[i].saturating_sub(cell.len());
            if i == 2 || i == 3 {
                pad(out, gap)?;
                out.write_all(cell.as_bytes())?;
            } else {
                out.write_all(cell.as_bytes())?;
                pad(out, gap)?;
            }
            out.write_all(b" ")?;
        }
        out.write_all(b"\n")
    };
    line(&mut out, HEADER)?;
    let mut start = 0;
    for row in ends.chunks_exact(7) {
        let mut cells = [""; 7];
        for (c, &end) in cells.iter_mut().zip(row) {
            *c = &arena[start..end];
            start = end;
        }
        line(&mut out, cells)?;
    }
    out.flush()
}

fn owner_text(arena: &mut String, sample: &Sample, s: &SocketRecord) {
    let _ = match (s.owner, sample.process_of(s)) {
        (Ownership::Known { pid, fd }, Some(p)) => {
            arena.push_str("users:((\"");
            super::push_printable(arena, &p.name);
            write!(arena, "\",pid={pid},fd={fd}))")
        }
        (Ownership::Kernel, _) => Ok(()),
        (Ownership::Hidden, _) => arena.write_str("[hidden: other user]"),
        _ => arena.write_str("[unknown]"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NetnsId, NetnsInfo, TcpState};

    fn table(sample: &Sample) -> String {
        let sockets: Vec<&SocketRecord> = sample.sockets.iter().collect();
        let mut out = Vec::new();
        write_table(&mut out, sample, &sockets).expect("write to memory");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn a_netns_column_only_when_the_sample_spans_namespaces() {
        let listen = |netns| SocketRecord {
            netns,
            ..SocketRecord::new(
                TcpState::Listen,
                "0.0.0.0:8080".parse().expect("addr"),
                "0.0.0.0:0".parse().expect("addr"),
            )
        };
        let mut sample = Sample::of_sockets(
            std::time::UNIX_EPOCH,
            vec![listen(NetnsId::OWN), listen(NetnsId(1))],
        );
        let one = table(&sample);
        assert!(one.starts_with("State "), "{one}");
        let space = |id, label: &str| NetnsInfo {
            id,
            label: label.into(),
            sampled: true,
            ..NetnsInfo::default()
        };
        sample.namespaces = vec![space(NetnsId::OWN, "host"), space(NetnsId(1), "b\u{1b}x")];
        let two = table(&sample);
        let lines: Vec<&str> = two.lines().collect();
        assert!(lines[0].starts_with("Netns  State  Recv-Q"), "{two}");
        assert!(lines[1].starts_with("host   LISTEN      0"), "{two}");
        assert!(lines[2].starts_with("b\\x1bx LISTEN      0"), "{two}");
    }
}
