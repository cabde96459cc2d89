//! `sockscope` with no subcommand: the live screen, from the run's config (the
//! config file's `[ui]` and `[keys]` tables for the screen itself) and the
//! options. The screen's internals are in `ui`.

use std::io::{self, Write as _};

use super::{Run, file_usage, parse_filter};
use crate::args::TuiArgs;
use crate::fail::Failure;
use crate::ui::config::Config;

/// The screen's options: the config file (`--config`, or the default one when
/// it exists) under the command line's.
pub(super) fn screen_options(
    run: &Run,
    filter: Option<&str>,
    no_color: bool,
) -> Result<crate::ui::TuiOptions, Failure> {
    let config = Config::of_file(&run.config.file).map_err(file_usage)?;
    // The services file first: the filter may name ports by it. Only a file
    // the config names is an error when unreadable.
    if let Err(e) = crate::filter::services::install(&config.ui.services)
        && config.ui.services.as_os_str() != crate::filter::services::DEFAULT_PATH
    {
        return Err(Failure::Usage(format!("sockscope: {e}")));
    }
    let filter = parse_filter(filter, run.config.owners)?;
    let color = !no_color
        && config
            .ui
            .color
            .enabled(std::env::var_os("NO_COLOR").as_deref());
    Ok(crate::ui::TuiOptions {
        config,
        filter,
        color,
        owners: run.config.owners,
    })
}

/// `--print-default-config`: the default config file, every key commented.
pub fn print_default_config() -> Result<(), Failure> {
    let text = crate::ui::config::default_config_text();
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Failure::Runtime(
            anyhow::Error::from(e).context("write to stdout"),
        )),
        _ => Ok(()),
    }
}

/// The live screen: config file < command line, then the UI until it quits.
pub fn run(mut run: Run, args: &TuiArgs) -> Result<(), Failure> {
    let mut opts = screen_options(&run, args.filter.as_deref(), args.no_color)?;
    if let Some(d) = run.config.interval {
        opts.config.ui.interval = d;
    }
    if let Some(d) = &args.export_dir {
        opts.config.ui.export_dir.clone_from(d);
    }
    // A recording that cannot start is refused before the screen opens.
    let recording = run.recording(&args.record)?;
    let feed = crate::ui::Feed::Live {
        source: run.source(),
        processor: Box::new(run.processor()),
        recording,
    };
    // The pipeline's death and a keyboard that cannot be read end the screen
    // with exit 1 and why, once the terminal is restored.
    crate::ui::run(feed, opts)
        .map(|_| ())
        .map_err(|e| Failure::Runtime(e.into()))
}
