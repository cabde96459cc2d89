//! The aligned table, laid out like `ss -tanp` so that operators read it at once.

use std::io::{self, Write};

use crate::model::{Ownership, Sample, SocketRecord};

/// Writes the table: `State Recv-Q Send-Q Local Address:Port Peer Address:Port
/// Process`, columns as wide as their widest cell.
pub fn write_table<W: Write>(
    mut out: W,
    sample: &Sample,
    sockets: &[&SocketRecord],
) -> io::Result<()> {
    let rows: Vec<[String; 6]> = sockets
        .iter()
        .map(|s| {
            [
                s.state.ss_name().to_string(),
                s.recv_q.to_string(),
                s.send_q.to_string(),
                s.local.to_string(),
                s.remote.to_string(),
                owner_text(sample, s),
            ]
        })
        .collect();
    let header = [
        "State",
        "Recv-Q",
        "Send-Q",
        "Local Address:Port",
        "Peer Address:Port",
        "Process",
    ];
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |out: &mut W, cells: [&str; 6]| -> io::Result<()> {
        // Numbers right-aligned, text left-aligned, as ss does.
        writeln!(
            out,
            "{:<w0$} {:>w1$} {:>w2$} {:<w3$} {:<w4$} {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            cells[5],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3],
            w4 = width[4],
        )
    };
    line(&mut out, header)?;
    for row in &rows {
        line(
            &mut out,
            [&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]],
        )?;
    }
    out.flush()
}

fn owner_text(sample: &Sample, s: &SocketRecord) -> String {
    match (s.owner, sample.process_of(s)) {
        (Ownership::Known { pid, fd }, Some(p)) => {
            format!("users:((\"{}\",pid={pid},fd={fd}))", p.name)
        }
        (Ownership::Kernel, _) => String::new(),
        (Ownership::Hidden, _) => "[hidden: other user]".to_string(),
        _ => "[unknown]".to_string(),
    }
}
