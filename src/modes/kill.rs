//! `sockscope kill FILTER`: closes the connections a filter selects with
//! SOCK_DESTROY, as `ss -K` does, after listing them (the `snapshot` table)
//! and asking. `--dry-run` lists and closes nothing; `--yes` does not ask.
//! Every kill is said on standard error.

use std::io::{self, BufRead as _, IsTerminal as _, Read as _, Write as _};

use super::{Run, parse_filter};
use crate::args::KillArgs;
use crate::export;
use crate::fail::Failure;
use crate::model::{SocketRecord, TcpState};
use crate::sample::kill::{KillTarget, privilege_refusal};

/// The answer read from the terminal is at most this long.
const ANSWER_MAX: u64 = 64;

pub fn run(mut run: Run, args: &KillArgs) -> Result<(), Failure> {
    if args.filter.trim().is_empty() {
        return Err(Failure::Usage(
            "sockscope kill: an empty filter would match every connection; say which (e.g. 'port:8080 state:close_wait')".into(),
        ));
    }
    let filter = parse_filter(Some(&args.filter), run.config.owners)?;
    // Refused before anything is read; a dry run only lists, and says so.
    let refused = privilege_refusal();
    if let (Some(why), false) = (&refused, args.dry_run) {
        return Err(Failure::Runtime(anyhow::anyhow!("cannot kill: {why}")));
    }
    let mut source = run.source();
    let sample = source.collect()?;
    let selected = export::select_indices(&sample, &filter);
    let (listeners, sockets): (Vec<&SocketRecord>, Vec<&SocketRecord>) = selected
        .iter()
        .map(|&i| &sample.sockets[i])
        .partition(|s| s.state == TcpState::Listen);
    let targets: Vec<KillTarget> = sockets
        .iter()
        .map(|s| KillTarget::of(s, sample.process_of(s).map(|p| p.name.as_ref())))
        .collect();
    {
        let mut out = io::BufWriter::new(io::stdout().lock());
        export::write_table(&mut out, &sample, &sockets)
            .and_then(|()| out.flush())
            .map_err(anyhow::Error::from)?;
    }
    if !listeners.is_empty() {
        export::print_err(&format!(
            "sockscope: listening sockets match too and are left alone (stop their service instead): {}",
            listeners.len()
        ));
    }
    let n = targets.len();
    if n == 0 {
        export::print_err("sockscope: no connection matches: nothing to close");
        return Ok(());
    }
    if args.dry_run {
        export::print_err(&format!(
            "sockscope: dry run: these {n} connections would be closed; nothing was closed"
        ));
        if let Some(why) = refused {
            export::print_err(&format!(
                "sockscope: and a real kill would be refused: {why}"
            ));
        }
        return Ok(());
    }
    if !args.yes && !confirmed(n)? {
        export::print_err("sockscope: nothing was closed");
        return Ok(());
    }
    let outcomes = source
        .destroy(&targets)
        .map_err(|why| Failure::Runtime(anyhow::anyhow!("cannot kill: {why}")))?;
    let failed = outcomes.iter().filter(|o| o.failed()).count();
    for o in &outcomes {
        export::print_err(&format!("sockscope: kill: {}", o.line()));
    }
    if failed > 0 {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "{failed} of {n} connections were not closed"
        )));
    }
    Ok(())
}

/// Asks on the terminal whether to close `n` connections; refused when
/// standard input is not one (a script must say --yes).
fn confirmed(n: usize) -> Result<bool, Failure> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::Usage(format!(
            "sockscope kill: standard input is not a terminal, so it cannot ask: pass --yes to close these {n} connections (or --dry-run)"
        )));
    }
    {
        let mut err = io::stderr().lock();
        let _ = write!(err, "Close these {n} connections? [y/N] ");
        let _ = err.flush();
    }
    let mut answer = String::new();
    stdin
        .lock()
        .take(ANSWER_MAX)
        .read_line(&mut answer)
        .map_err(anyhow::Error::from)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
