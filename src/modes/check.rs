//! `sockscope check`: sample a few times, diagnose, print the findings active at
//! the end; the exit status says the worst of them (0 healthy, 1 warnings, 2
//! critical; `fail::CHECK_USAGE` and `fail::CHECK_FAILED` otherwise).

use std::io::{self, Write};
use std::process::ExitCode;

use super::{Run, observe};
use crate::args::{CheckArgs, CheckFormat};
use crate::diagnose::{Severity, worst};
use crate::export;

/// Samples `args.samples` times, runs the diagnoser over every snapshot and prints
/// the findings active at the end; the exit status says the worst of them.
pub fn run(mut run: Run, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let (snap, findings) = observe(&mut run, args.samples)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.format {
        CheckFormat::Text => export::write_findings_text(&mut out, &findings, snap.tick)?,
        CheckFormat::Json => {
            let (critical, warning) = export::severity_counts(&findings);
            let doc = serde_json::json!({
                "version": export::JSON_VERSION,
                "samples": snap.tick,
                "status": worst(&findings).map_or("healthy", |s| s.name()),
                "counts": { "critical": critical, "warning": warning },
                "findings": export::findings_json(&findings),
            });
            if args.pretty {
                serde_json::to_writer_pretty(&mut out, &doc)?;
            } else {
                serde_json::to_writer(&mut out, &doc)?;
            }
            writeln!(out)?;
        }
    }
    out.flush()?;
    for note in &snap.sample.health.notes {
        crate::export::print_err(&format!("sockscope: note: {note}"));
    }
    Ok(match worst(&findings) {
        None => ExitCode::SUCCESS,
        Some(Severity::Warning) => ExitCode::from(1),
        Some(Severity::Critical) => ExitCode::from(2),
    })
}
