//! The headless replay: a recording's samples, in order, through the engine and
//! the diagnoser (a `processor::Processor`), printed one line per sample — its time,
//! the count of each state and the active findings. The form is stable, for
//! scripts and tests: a replay prints what processing the samples live did.

use std::io::{self, Write};

use serde::Serialize;

use super::{Damage, Reader};
use crate::diagnose::{Severity, Subject, Target};
use crate::export::{NetnsJson, rfc3339_nanos};
use crate::model::{StateCounts, TcpState};
use crate::processor::{Processor, Update};

/// How each sample is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayFormat {
    /// `#INDEX TIME tick N | STATE COUNT ... | rule severity subject; ...`
    Text,
    /// One JSON object per line: `{index, taken_at, tick, counts, findings}`.
    Jsonl,
}

/// One finding of a replay line.
#[derive(Debug, Serialize)]
pub struct FindingLine<'a> {
    pub rule: &'static str,
    pub severity: Severity,
    pub subject: &'a Subject,
    /// The subject's namespace, when the finding names it (see
    /// `export::findings_json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<NetnsJson<'a>>,
    /// The subject as the text format writes it.
    #[serde(skip)]
    pub target: Target<'a>,
    /// When it was first raised (RFC 3339, nanoseconds).
    pub since: String,
}

/// One sample of a replay, as `--format jsonl` writes it.
#[derive(Debug, Serialize)]
pub struct ReplayLine<'a> {
    /// Position of the sample in the recording, from 0.
    pub index: usize,
    /// RFC 3339 with nanoseconds: the recording keeps the exact time.
    pub taken_at: String,
    /// The engine's tick (1 for the first sample replayed).
    pub tick: u64,
    pub counts: StateCounts,
    pub findings: Vec<FindingLine<'a>>,
}

impl<'a> ReplayLine<'a> {
    pub fn of(index: usize, update: &'a Update) -> ReplayLine<'a> {
        ReplayLine {
            index,
            taken_at: rfc3339_nanos(update.snapshot.taken_at()),
            tick: update.snapshot.tick,
            counts: update.snapshot.sample.counts(),
            findings: update
                .findings
                .iter()
                .map(|f| FindingLine {
                    rule: f.rule,
                    severity: f.severity,
                    subject: &f.subject,
                    netns: NetnsJson::of(f),
                    target: f.target(),
                    since: rfc3339_nanos(f.since.to_system()),
                })
                .collect(),
        }
    }

    pub fn write(&self, out: &mut dyn Write, format: ReplayFormat) -> io::Result<()> {
        match format {
            ReplayFormat::Jsonl => {
                serde_json::to_writer(&mut *out, self)?;
                writeln!(out)
            }
            ReplayFormat::Text => {
                write!(
                    out,
                    "#{} {} tick {} |",
                    self.index, self.taken_at, self.tick
                )?;
                let mut any = false;
                for st in TcpState::ALL {
                    let n = self.counts.get(st);
                    if n > 0 {
                        write!(out, " {} {n}", st.name())?;
                        any = true;
                    }
                }
                if !any {
                    write!(out, " no sockets")?;
                }
                write!(out, " |")?;
                if self.findings.is_empty() {
                    write!(out, " no findings")?;
                }
                for (i, f) in self.findings.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ";" };
                    // A subject can be a process, named by whoever started it.
                    let subject = f.target.to_string();
                    write!(
                        out,
                        "{sep} {} {} {}",
                        f.rule,
                        f.severity.name(),
                        crate::export::Printable(&subject)
                    )?;
                }
                writeln!(out)
            }
        }
    }
}

/// How a replay ended.
#[derive(Debug)]
pub enum Outcome {
    /// Every sample of the recording was replayed.
    Complete { samples: usize },
    /// The samples before the damage were replayed.
    Damaged { samples: usize, damage: Damage },
}

/// Replays every readable sample of `reader` through `processor`, one line each
/// to `out`; stops at damage, which the outcome carries.
pub fn replay(
    reader: &mut Reader,
    mut processor: Processor,
    format: ReplayFormat,
    out: &mut dyn Write,
) -> io::Result<Outcome> {
    let mut samples = 0;
    for item in reader.samples() {
        match item {
            Ok(sample) => {
                // Each update is dropped before the next sample goes in, so the
                // engine's series are updated in place, not copied.
                let update = processor.process(sample);
                ReplayLine::of(samples, &update).write(out, format)?;
                samples += 1;
            }
            Err(damage) => return Ok(Outcome::Damaged { samples, damage }),
        }
    }
    Ok(Outcome::Complete { samples })
}

/// `sockscope replay`'s exit status when the recording is damaged: what came
/// before the damage was replayed, and the damage named on standard error.
pub const REPLAY_DAMAGED: u8 = 3;
