//! The live terminal screen. Three threads feed one channel of [`Msg`]: the
//! pipeline (snapshots and findings), the keyboard (keys, resizes, and a tick
//! every quarter second) and the signal handler (SIGTERM/SIGINT/SIGHUP). The
//! screen's thread only applies messages to the state and draws; it never
//! samples, so a slow /proc read cannot stall a key press.

pub mod act;
pub mod action;
pub mod app;
pub mod chooser;
pub mod config;
pub mod edit;
pub mod fmt;
pub mod hits;
pub mod keymap;
pub mod msg;
pub mod names;
mod nav;
mod netns;
pub mod place;
pub mod rows;
pub mod search;
pub mod theme;
pub mod view;

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use anyhow::Context;
use crossterm::event::{self, Event, KeyEventKind, MouseEventKind};

use crate::export;
use crate::filter::Filter;
use crate::live::{Pipeline, PipelineEvent, Processor};
use crate::processor::ProcessorSpec;
use crate::record::player::{self, Player, PlayerEvent};
use crate::record::{Reader, RecordingSink};
use crate::sample::sampler::SampleSource;
use app::{App, Effect, ExportJob, Msg, Settings};
use config::Config;
use theme::Theme;

/// How often the keyboard thread sends a tick when no key comes.
const TICK: Duration = Duration::from_millis(250);

/// What the screen needs from the command line and the config file.
pub struct TuiOptions {
    pub config: Config,
    pub filter: Filter,
    pub color: bool,
    pub owners: bool,
}

/// Where the screen's snapshots come from.
pub enum Feed {
    /// The live sampler over `source`, maybe recording every sample.
    Live {
        source: Box<dyn SampleSource>,
        processor: Box<Processor>,
        recording: Option<RecordingSink>,
    },
    /// A recording, played back; `spec` makes the processor of each seek.
    Replay {
        reader: Reader,
        spec: Box<ProcessorSpec>,
    },
}

/// Why the screen ended other than by the user's asking.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    /// The pipeline (or the replay's player) stopped for good: why.
    #[error("the sampling pipeline died: {0}")]
    Died(String),
    /// The keyboard could not be read.
    #[error("cannot read the keyboard: {0}")]
    Input(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The running source of snapshots, told what the user asks of it.
enum Source {
    Live(Pipeline),
    Replay(Player),
}

/// Restores the terminal when dropped: on return, on error and on unwinding
/// (ratatui's own panic hook covers a panic before this is built).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        mouse_off();
        ratatui::restore();
        let _ = crossterm::execute!(io::stdout(), crossterm::cursor::Show);
    }
}

/// Runs the screen until the user quits or a signal ends it; for a replay,
/// returns where it ended (and the damage it met, if any). The death of the
/// pipeline or a keyboard that cannot be read end it too, as an error: the
/// terminal is restored first.
pub fn run(feed: Feed, opts: TuiOptions) -> Result<Option<player::Status>, ScreenError> {
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        return Err(anyhow::anyhow!(
            "the live screen needs a terminal; for output to a pipe or file use `sockscope snapshot` (or `check`)"
        )
        .into());
    }
    let (tx, rx) = mpsc::channel::<Msg>();
    let interval = opts.config.ui.interval;
    let settings = Settings {
        highlight: opts.config.ui.highlight,
        export_dir: opts.config.ui.export_dir.clone(),
        interval,
        owners: opts.owners,
        columns: opts.config.ui.columns,
        mouse: opts.config.ui.mouse,
    };
    let mut app = App::new(opts.config.keymap.clone(), settings, opts.filter);
    let to_ui = tx.clone();
    let source = match feed {
        Feed::Live {
            source,
            processor,
            recording,
        } => {
            let sink = move |event| {
                let msg = match event {
                    PipelineEvent::Update(u) => Msg::Update(u),
                    PipelineEvent::Error(e) => Msg::SampleError(e),
                    PipelineEvent::Recording(e) => Msg::RecordError(e),
                    PipelineEvent::Died(e) => Msg::SamplerDied(e),
                };
                to_ui.send(msg).is_ok()
            };
            let sink = crate::live::maybe_recorded(recording, sink);
            let pipeline = Pipeline::spawn(source, interval, *processor, sink);
            Source::Live(pipeline.context("cannot start the sampler")?)
        }
        Feed::Replay { reader, spec } => {
            app.replay = Some(player::Status {
                index: 0,
                len: reader.len(),
                playing: true,
                speed: 1.0,
                at: reader.taken_at(0),
                damage: reader.damage().cloned(),
            });
            let player = Player::spawn(reader, *spec, move |event| match event {
                PlayerEvent::Update(u, status) => {
                    to_ui.send(Msg::Update(u)).is_ok() && to_ui.send(Msg::Player(status)).is_ok()
                }
                PlayerEvent::Status(status) => to_ui.send(Msg::Player(status)).is_ok(),
                PlayerEvent::Error(e) => to_ui.send(Msg::SampleError(e)).is_ok(),
                PlayerEvent::Died(e) => to_ui.send(Msg::SamplerDied(e)).is_ok(),
            })
            .context("cannot start the replay")?;
            Source::Replay(player)
        }
    };
    spawn_signals(tx.clone()).context("cannot catch signals")?;
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let guard = TerminalGuard;
    install_panic_hook();
    if app.settings.mouse {
        mouse_on();
    }
    spawn_keyboard(tx.clone()).context("cannot read the keyboard")?;
    let theme = Theme::new(opts.color);
    let result = event_loop(&mut terminal, &mut app, theme, &rx, &tx, &source);
    drop(guard);
    // Said now that the screen is gone: every kill and signal, and what
    // failed on other threads.
    for line in &app.kill_log {
        crate::export::print_err(&format!("sockscope: {line}"));
    }
    for message in worker_panics() {
        crate::export::print_err(&format!("sockscope: {message}"));
    }
    // Stops the sampler (and finishes a recording) or the player.
    drop(source);
    result.map(|()| app.replay.take())
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    theme: Theme,
    rx: &Receiver<Msg>,
    tx: &Sender<Msg>,
    source: &Source,
) -> Result<(), ScreenError> {
    terminal
        .draw(|f| view::draw(f, app, theme))
        .context("cannot draw")?;
    let mut resolver: Option<Resolver> = None;
    loop {
        let Ok(first) = rx.recv() else {
            return Ok(());
        };
        // Apply everything waiting, then draw once. Of several snapshots only
        // the newest is shown: the older ones would be rebuilt for nothing.
        let mut batch: Vec<Msg> = std::iter::once(first).chain(rx.try_iter()).collect();
        if let Some(newest) = batch.iter().rposition(|m| matches!(m, Msg::Update(_))) {
            let mut i = 0;
            batch.retain(|m| {
                i += 1;
                !matches!(m, Msg::Update(_)) || i - 1 == newest
            });
        }
        let mut quit = false;
        for msg in batch {
            // Fatal: nothing more will come, or nothing can be asked.
            match msg {
                Msg::SamplerDied(why) => return Err(ScreenError::Died(why)),
                Msg::InputFailed(why) => return Err(ScreenError::Input(why)),
                _ => {}
            }
            for effect in app.update(msg) {
                match effect {
                    Effect::Quit => quit = true,
                    Effect::SetInterval(d) => {
                        if let Source::Live(p) = source {
                            p.set_interval(d);
                        }
                    }
                    Effect::SampleNow => {
                        if let Source::Live(p) = source {
                            p.sample_now();
                        }
                    }
                    Effect::Player(c) => {
                        if let Source::Replay(p) = source {
                            p.send(c);
                        }
                    }
                    Effect::Export(job) => spawn_export(job, tx.clone()),
                    Effect::Copy(text) => copy(app, &text),
                    Effect::Kill(targets) => match source {
                        Source::Live(p) => {
                            let tx = tx.clone();
                            p.destroy(
                                targets,
                                Box::new(move |report| {
                                    let _ = tx.send(Msg::Killed(report));
                                }),
                            );
                        }
                        Source::Replay(_) => {
                            app.killed(Err("a replay cannot close connections".into()));
                        }
                    },
                    Effect::Signal {
                        pid,
                        start_time,
                        name,
                        signal,
                    } => app.signalled(act::send_signal(
                        std::path::Path::new("/proc"),
                        pid,
                        start_time,
                        &name,
                        signal,
                    )),
                }
            }
            if quit {
                return Ok(());
            }
        }
        terminal
            .draw(|f| view::draw(f, app, theme))
            .context("cannot draw")?;
        ask_names(app, &mut resolver, tx);
    }
}

/// The reverse DNS lookups: a bounded queue and two threads (a lookup may
/// take the resolver's whole timeout; the screen never waits for one).
struct Resolver {
    queue: mpsc::SyncSender<std::net::IpAddr>,
}

/// Lookups waiting for a resolver thread at most.
const RESOLVER_QUEUE: usize = 64;

impl Resolver {
    fn spawn(tx: &Sender<Msg>) -> io::Result<Resolver> {
        let (queue, inbox) = mpsc::sync_channel::<std::net::IpAddr>(RESOLVER_QUEUE);
        let inbox = std::sync::Arc::new(std::sync::Mutex::new(inbox));
        for n in 0..2 {
            let inbox = std::sync::Arc::clone(&inbox);
            let tx = tx.clone();
            std::thread::Builder::new()
                .name(format!("sockscope-dns-{n}"))
                .spawn(move || {
                    loop {
                        let next = match inbox.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(ip) = next else { return };
                        let name = dns_lookup::lookup_addr(&ip).ok();
                        if tx.send(Msg::Resolved(ip, name)).is_err() {
                            return;
                        }
                    }
                })?;
        }
        Ok(Resolver { queue })
    }
}

/// Hands the addresses the frame showed without a name to the resolver.
fn ask_names(app: &mut App, resolver: &mut Option<Resolver>, tx: &Sender<Msg>) {
    let wanted = app.names.take_wanted();
    if wanted.is_empty() {
        return;
    }
    if resolver.is_none() {
        match Resolver::spawn(tx) {
            Ok(r) => *resolver = Some(r),
            Err(e) => {
                app.say(format!("cannot start the DNS lookups: {e}"), true);
                return;
            }
        }
    }
    let Some(r) = resolver.as_ref() else { return };
    for ip in wanted {
        if r.queue.try_send(ip).is_err() {
            app.names.not_taken(ip);
        }
    }
}

/// Writes `text` to the terminal's clipboard with OSC 52 (the terminal may
/// refuse it silently: the status line said "where the terminal allows
/// it"); the Linux console and dumb terminals have none.
fn copy(app: &mut App, text: &str) {
    let term = std::env::var("TERM").unwrap_or_default();
    if term == "linux" || term == "dumb" {
        app.say(
            format!("this terminal (TERM={term}) has no clipboard: nothing copied"),
            true,
        );
        return;
    }
    let written = crossterm::execute!(
        io::stdout(),
        crossterm::clipboard::CopyToClipboard::to_clipboard_from(text)
    );
    if let Err(e) = written {
        app.say(format!("cannot copy: {e}"), true);
    }
}

/// Reads the keyboard; a tick when nothing came for a while. Ends when the
/// screen is gone (the send fails).
fn spawn_keyboard(tx: Sender<Msg>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("sockscope-keys".into())
        .spawn(move || {
            loop {
                let msg = match event::poll(TICK) {
                    Ok(true) => match event::read() {
                        Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => Msg::Key(k),
                        Ok(Event::Resize(..)) => Msg::Resize,
                        // Clicks and the wheel; motion and drags would only
                        // cost frames.
                        Ok(Event::Mouse(m))
                            if matches!(
                                m.kind,
                                MouseEventKind::Down(_)
                                    | MouseEventKind::ScrollDown
                                    | MouseEventKind::ScrollUp
                            ) =>
                        {
                            Msg::Mouse(m)
                        }
                        Ok(_) => continue,
                        Err(e) => Msg::InputFailed(e.to_string()),
                    },
                    Ok(false) => Msg::Tick,
                    Err(e) => Msg::InputFailed(e.to_string()),
                };
                let fatal = matches!(msg, Msg::InputFailed(_));
                if tx.send(msg).is_err() || fatal {
                    return;
                }
            }
        })?;
    Ok(())
}

/// Whether the screen asked the terminal for mouse events (and so must ask
/// it to stop on every way out: quit, error, panic, signal).
static MOUSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks the terminal for clicks and the wheel (`[ui] mouse`); a terminal
/// that cannot is left as it is.
fn mouse_on() {
    if crossterm::execute!(io::stdout(), event::EnableMouseCapture).is_ok() {
        MOUSE.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Gives the mouse back to the terminal, if the screen took it.
fn mouse_off() {
    if MOUSE.swap(false, std::sync::atomic::Ordering::SeqCst) {
        let _ = crossterm::execute!(io::stdout(), event::DisableMouseCapture);
    }
}

/// Panics of threads other than the screen's, kept to be said after the
/// terminal is restored (printed at once they would garble the screen).
static WORKER_PANICS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// ratatui's hook restores the terminal on any thread's panic; a worker's panic
/// must not leave the screen running in a cooked terminal. Workers report their
/// end on the channel (the pipeline and the player catch their panics); the
/// screen's own panic still restores the terminal before the message.
fn install_panic_hook() {
    let ui = std::thread::current().id();
    let restore_then_print = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == ui {
            mouse_off();
            restore_then_print(info);
        } else if let Ok(mut v) = WORKER_PANICS.lock() {
            let name = std::thread::current()
                .name()
                .unwrap_or("a thread")
                .to_string();
            v.push(format!("{name} panicked: {info}"));
        }
    }));
}

fn worker_panics() -> Vec<String> {
    WORKER_PANICS
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default()
}

/// Turns SIGTERM, SIGINT and SIGHUP into a message, so that the terminal is
/// restored before the process ends.
fn spawn_signals(tx: Sender<Msg>) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new()
        .name("sockscope-signals".into())
        .spawn(move || {
            // The first signal quits through the screen's loop; should that be
            // stuck, a second one restores the terminal and exits here.
            for (n, _) in signals.forever().enumerate() {
                if n == 0 {
                    let _ = tx.send(Msg::Terminate);
                } else {
                    mouse_off();
                    ratatui::restore();
                    std::process::exit(1);
                }
            }
        })?;
    Ok(())
}

/// Writes an export on its own thread (a 100k-socket JSON takes a moment) and
/// reports back.
fn spawn_export(job: ExportJob, tx: Sender<Msg>) {
    let path = job.path.clone();
    let spawned = std::thread::Builder::new()
        .name("sockscope-export".into())
        .spawn(move || {
            let result = write_export(&job);
            let _ = tx.send(Msg::Exported(result));
        });
    if let Err(e) = spawned {
        // Nothing can report back through the thread; say it here.
        crate::export::print_err(&format!(
            "sockscope: cannot export to {}: {e}",
            crate::export::printable_path(&path)
        ));
    }
}

/// Writes `job` as the JSON snapshot document, beside any export of the same
/// name (`-2`, `-3`, ... before the extension); returns the path written. The
/// error names the path.
pub fn write_export(job: &ExportJob) -> Result<PathBuf, String> {
    let stem = job
        .path
        .file_stem()
        .map_or_else(|| "sockscope".into(), |s| s.to_string_lossy().into_owned());
    for n in 1..=100 {
        let path = if n == 1 {
            job.path.clone()
        } else {
            job.path.with_file_name(format!("{stem}-{n}.json"))
        };
        let written = export::write_atomically(&path, false, |w| {
            export::write_json(
                &mut *w,
                &job.snapshot,
                &job.selection,
                &job.filter,
                &job.findings,
                false,
            )
            .map_err(io::Error::from)?;
            writeln!(w)
        });
        match written {
            Ok(()) => return Ok(path),
            Err(export::OutputError::Exists(_)) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!(
        "{} and 99 more of its name exist",
        crate::export::printable_path(&job.path)
    ))
}
