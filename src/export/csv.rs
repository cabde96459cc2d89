//! CSV: one row per socket, the same columns as the JSON sockets (nested values
//! flattened: `timer` as `kind:expires_ms/retransmits`, tcp_info's rtt and
//! retransmits only), and last the socket's network namespace (`netns`, its
//! label: `host` for sockscope's own). Fields are formatted into one reused buffer, since a
//! snapshot can hold 100k rows.
//!
//! Text cells (process names, command lines, user names: anyone can choose
//! them) are made safe for the spreadsheets CSV ends up in: control characters
//! are escaped as in every text output (`\x1b`, `\x0a`: one line per row), and
//! a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
//! leading `'`, so that it is not taken for a formula (OWASP's CSV injection
//! advice). Numeric cells are written as they are.

use std::fmt::Write as _;
use std::io::Write;

use crate::model::{Ownership, Sample, SocketRecord};

/// The header row, in order.
pub const CSV_COLUMNS: [&str; 19] = [
    "state", "local", "remote", "recv_q", "send_q", "uid", "user", "inode", "cookie", "pid", "fd",
    "process", "cmdline", "owner", "timer", "rtt_us", "retrans", "shutdown", "netns",
];

pub fn write_csv<W: Write>(out: W, sample: &Sample, sockets: &[&SocketRecord]) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_COLUMNS)?;
    let mut buf = String::with_capacity(256);
    let mut guarded = String::with_capacity(256);
    for s in sockets {
        let process = sample.process_of(s);
        // `field` formats one value into `buf` and writes it; None is empty.
        let mut field = |w: &mut csv::Writer<W>, f: &dyn Fn(&mut String) -> std::fmt::Result| {
            buf.clear();
            // Formatting into a String cannot fail.
            let _ = f(&mut buf);
            w.write_field(buf.as_bytes())
        };
        // A cell of text from a process or the user database, guarded.
        let mut text = |w: &mut csv::Writer<W>, value: &str| {
            guarded.clear();
            push_text_cell(&mut guarded, value);
            w.write_field(guarded.as_bytes())
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
        field(&mut w, &|b| match s.known_uid() {
            Some(uid) => write!(b, "{uid}"),
            None => Ok(()),
        })?;
        text(&mut w, &sample.user_of(s).unwrap_or_default())?;
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
        text(&mut w, process.map_or("", |p| p.name.as_str()))?;
        text(&mut w, process.map_or("", |p| p.cmdline.as_str()))?;
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
        // A label is a container's hostname or an `ip netns` name: text.
        text(&mut w, &sample.netns_label(s.netns))?;
        w.write_record(None::<&[u8]>)?;
    }
    w.flush()?;
    Ok(())
}

/// Appends `value` as a text cell: control characters escaped, and a leading
/// `'` when it starts with a character that a spreadsheet reads as a formula.
pub(crate) fn push_text_cell(out: &mut String, value: &str) {
    const FORMULA: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];
    if value.starts_with(FORMULA) {
        out.push('\'');
    }
    super::push_printable(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(value: &str) -> String {
        let mut s = String::new();
        push_text_cell(&mut s, value);
        s
    }

    #[test]
    fn formula_starts_are_guarded() {
        assert_eq!(cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-2+3"), "'-2+3");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("\tx"), "'\\x09x");
        assert_eq!(cell("\r=1"), "'\\x0d=1");
        assert_eq!(cell("nginx"), "nginx");
        assert_eq!(cell("a=b"), "a=b");
        assert_eq!(cell(""), "");
    }

    #[test]
    fn control_characters_are_escaped_in_cells() {
        assert_eq!(cell("a\nb\u{1b}]0;x\u{7}"), "a\\x0ab\\x1b]0;x\\x07");
        assert_eq!(cell("\u{202e}x"), "\\u{202e}x");
    }

    #[test]
    fn a_hostile_name_stays_one_guarded_row() {
        let mut s = SocketRecord::new(
            crate::model::TcpState::Listen,
            "127.0.0.1:8080".parse().expect("addr"),
            "0.0.0.0:0".parse().expect("addr"),
        );
        s.owner = Ownership::Known { pid: 42, fd: 3 };
        let mut sample = crate::model::Sample::of_sockets(std::time::UNIX_EPOCH, vec![s.clone()]);
        sample.processes.insert(
            42,
            std::sync::Arc::new(crate::model::ProcessInfo {
                pid: 42,
                name: "=cmd|x\n-y".into(),
                cmdline: "-e\u{1b}[2J".into(),
                ..Default::default()
            }),
        );
        let mut out = Vec::new();
        write_csv(&mut out, &sample, &[&s]).expect("write to memory");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(text.lines().count(), 2, "{text}");
        let row = text.lines().nth(1).expect("a row");
        assert!(row.contains(",'=cmd|x\\x0a-y,'-e\\x1b[2J,"), "{row}");
        assert!(row.contains(",42,3,"), "numbers unguarded: {row}");
    }

    #[test]
    fn each_row_names_its_namespace_guarded() {
        use crate::model::{NetnsId, NetnsInfo};
        let listen = |netns| SocketRecord {
            netns,
            ..SocketRecord::new(
                crate::model::TcpState::Listen,
                "0.0.0.0:8080".parse().expect("addr"),
                "0.0.0.0:0".parse().expect("addr"),
            )
        };
        let (a, b, c) = (listen(NetnsId::OWN), listen(NetnsId(1)), listen(NetnsId(2)));
        let mut sample = crate::model::Sample::of_sockets(
            std::time::UNIX_EPOCH,
            vec![a.clone(), b.clone(), c.clone()],
        );
        sample.namespaces = vec![
            NetnsInfo {
                id: NetnsId(1),
                label: "blue".into(),
                ..NetnsInfo::default()
            },
            NetnsInfo {
                id: NetnsId(2),
                label: "=cmd\nx".into(),
                ..NetnsInfo::default()
            },
        ];
        let mut out = Vec::new();
        write_csv(&mut out, &sample, &[&a, &b, &c]).expect("write to memory");
        let text = String::from_utf8(out).expect("utf-8");
        let mut rows = csv::Reader::from_reader(text.as_bytes());
        let header = rows.headers().expect("header").clone();
        assert_eq!(header.iter().next_back(), Some("netns"));
        let netns: Vec<String> = rows
            .records()
            .map(|r| r.expect("row").get(18).expect("netns").to_string())
            .collect();
        assert_eq!(netns, ["host", "blue", "'=cmd\\x0ax"]);
    }
}
