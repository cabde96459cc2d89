//! The messages the screen's loop reads and the effects `update` asks of it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::KeyEvent;

use crate::diagnose::Finding;
use crate::filter::Filter;
use crate::live::Update;
use crate::model::Snapshot;
use crate::record::player::{self, Control};

/// Everything that can happen to the screen: the one event type its loop reads.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    /// A click or the wheel (only those: the keyboard thread drops motion).
    Mouse(crossterm::event::MouseEvent),
    /// The terminal was resized (the next frame redraws everything).
    Resize,
    /// A quarter second passed: status messages age.
    Tick,
    Update(Update),
    /// A sample failed; the sampler goes on.
    SampleError(String),
    /// The sampler is gone; the screen shows the last data and says why.
    SamplerDied(String),
    /// An export finished: the file written, or why not.
    Exported(Result<PathBuf, String>),
    /// SIGTERM, SIGINT or SIGHUP.
    Terminate,
    /// Where the replay is (replays only).
    Player(player::Status),
    /// The recording could not be written (it stays on screen).
    RecordError(String),
    /// The keyboard cannot be read: nothing could end the screen but a signal,
    /// so it quits.
    InputFailed(String),
    /// The resolver's answer: the name of an address, or none.
    Resolved(std::net::IpAddr, Option<String>),
    /// What came of an [`Effect::Kill`].
    Killed(crate::sample::kill::KillReport),
}

/// What `update` asks its caller to do.
#[derive(Debug)]
pub enum Effect {
    Quit,
    SetInterval(Duration),
    SampleNow,
    Export(ExportJob),
    /// Tell the replay's player.
    Player(Control),
    /// Put this text on the terminal's clipboard (OSC 52).
    Copy(String),
    /// Close these connections (the sampler does, on its sockets).
    Kill(Vec<crate::sample::kill::KillTarget>),
    /// Send `signal` to `pid` if it is still the process started at `start_time`.
    Signal {
        pid: u32,
        start_time: u64,
        name: String,
        signal: &'static str,
    },
}

/// A snapshot's selection to write as JSON, off the screen's thread.
#[derive(Debug)]
pub struct ExportJob {
    pub snapshot: Arc<Snapshot>,
    pub findings: Arc<[Finding]>,
    /// Indices into `snapshot.sample.sockets`.
    pub selection: Vec<usize>,
    pub filter: Filter,
    pub path: PathBuf,
}
