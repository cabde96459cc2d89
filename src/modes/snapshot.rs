//! `sockscope snapshot`: one sample (or the last of N) printed or written to a
//! file, like `ss -tanp`: the table, JSON or CSV.

use std::io::{self, IsTerminal, Write};

use super::{Run, observe, parse_filter};
use crate::args::{Format, SnapshotArgs};
use crate::export::{self, OutputError};
use crate::fail::Failure;

/// Samples `args.samples` times and writes the last sample (with what changed
/// meanwhile) to stdout or a file.
pub fn run(mut run: Run, args: &SnapshotArgs) -> Result<(), Failure> {
    // The filter is checked before anything is read, so a typo costs nothing.
    let filter = parse_filter(args.filter.as_deref(), run.config.owners)?;
    // Refuse an existing file before sampling, not after (the write refuses again
    // if one appears meanwhile).
    if let Some(path) = &args.output {
        if !args.force && std::fs::symlink_metadata(path).is_ok() {
            return Err(Failure::Usage(format!(
                "sockscope: {}",
                OutputError::Exists(path.clone())
            )));
        }
        if let Some(what) = export::not_regular(path) {
            return Err(Failure::Usage(format!(
                "sockscope: {}",
                OutputError::NotRegular {
                    path: path.clone(),
                    what
                }
            )));
        }
    }
    // Findings need their condition to hold over several samples: with one
    // sample there are none.
    let (snap, findings) = observe(&mut run, args.samples)?;
    let sample = &snap.sample;
    let selected = export::select_indices(sample, &filter);
    let sockets: Vec<_> = selected.iter().map(|&i| &sample.sockets[i]).collect();
    let write = |w: &mut dyn Write| -> io::Result<()> {
        match args.format {
            Format::Table => export::write_table(w, sample, &sockets),
            Format::Json => {
                export::write_json(&mut *w, &snap, &selected, &filter, &findings, args.pretty)
                    .map_err(io::Error::from)?;
                writeln!(w)
            }
            // The I/O error itself, so that a closed pipe is told apart.
            Format::Csv => {
                export::write_csv(w, sample, &sockets).map_err(|e| match e.into_kind() {
                    csv::ErrorKind::Io(io) => io,
                    other => io::Error::other(format!("{other:?}")),
                })
            }
        }
    };
    match &args.output {
        Some(path) => {
            // From here a signal stops the write and removes its temporary
            // file; the exit status is still the signal's.
            let interrupts = export::Interrupts::install().map_err(anyhow::Error::from)?;
            let options = export::WriteOptions {
                replace: args.force,
                mode: args.mode.unwrap_or(export::DEFAULT_MODE),
                interrupts: Some(&interrupts),
            };
            export::write_atomically_with(path, &options, write).map_err(|e| match e {
                OutputError::Exists(_) | OutputError::NotRegular { .. } => {
                    Failure::Usage(format!("sockscope: {e}"))
                }
                OutputError::Interrupted { signal, .. } => {
                    crate::export::print_err(&format!("sockscope: {e}"));
                    std::process::exit(128 + signal)
                }
                other @ OutputError::Io { .. } => Failure::Runtime(other.into()),
            })?;
        }
        None => {
            let stdout = io::stdout();
            let mut lock = io::BufWriter::new(stdout.lock());
            write(&mut lock).map_err(anyhow::Error::from)?;
            lock.flush().map_err(anyhow::Error::from)?;
        }
    }
    // Partial data is said on stderr so that the output itself stays clean.
    for note in &sample.health.notes {
        crate::export::print_err(&format!("sockscope: note: {note}"));
    }
    if let Some(path) = &args.output
        && io::stderr().is_terminal()
    {
        crate::export::print_err(&format!(
            "sockscope: wrote {} sockets to {}",
            sockets.len(),
            crate::export::printable_path(path)
        ));
    }
    Ok(())
}
