//! The player behind the interactive replay: a thread that reads a recording,
//! feeds each sample through the engine and the diagnoser (a `Processor`) at the
//! recorded pace times a speed, and hands each update to a sink, as the live
//! pipeline does. It plays, pauses, changes speed and seeks on command.
//!
//! The engine only runs forward, so a seek backwards (or far forwards) starts a
//! fresh engine a warm-up of [`WARMUP`] samples before the target and feeds it
//! up to the target: the history, series and findings on screen are then those
//! of the warm-up window, which is what hysteresis and the sparklines need.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::{Damage, Reader};
use crate::processor::{Processor, ProcessorSpec, Update, panic_message};

/// Samples fed to a fresh engine before a seek's target.
pub const WARMUP: usize = 120;

/// The longest wait between two samples at speed 1: a gap in the recording
/// (sockscope was stopped) is not replayed in real time.
const MAX_GAP: Duration = Duration::from_secs(5);

/// Speeds the player steps through.
const SPEEDS: [f64; 10] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// What the player is told.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Control {
    TogglePlay,
    /// One speed step up (true) or down.
    Speed(bool),
    /// By this many samples (negative: back).
    Seek(i64),
    /// By this share of the recording (negative: back).
    SeekShare(f64),
    Stop,
}

/// Where the player is.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    /// The index of the sample on screen.
    pub index: usize,
    /// Samples that can be replayed (those before any damage).
    pub len: usize,
    pub playing: bool,
    pub speed: f64,
    pub at: Option<SystemTime>,
    /// Where the recording is damaged, if it is: the replay ends there.
    pub damage: Option<Damage>,
}

impl Status {
    /// At the last sample that can be replayed.
    pub fn at_end(&self) -> bool {
        self.index + 1 >= self.len
    }
}

/// What the player hands its sink.
#[derive(Debug)]
pub enum PlayerEvent {
    /// A sample to show, and where the player is.
    Update(Update, Status),
    /// The status changed without a new sample (paused, speed).
    Status(Status),
    /// A sample could not be read or decoded (the replay stops before it).
    Error(String),
    /// The player failed and stopped; nothing more will come.
    Died(String),
}

/// A running player. Dropping it stops the thread.
pub struct Player {
    control: Sender<Control>,
    handle: Option<JoinHandle<()>>,
    /// Set on drop: a warm-up in progress stops at its next sample.
    stop: Arc<AtomicBool>,
}

impl Player {
    /// Starts playing `reader` from its first sample.
    pub fn spawn(
        reader: Reader,
        spec: ProcessorSpec,
        sink: impl FnMut(PlayerEvent) -> bool + Send + 'static,
    ) -> std::io::Result<Player> {
        let (control, inbox) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("sockscope-player".into())
            .spawn(move || {
                let mut state = State::new(reader, spec, sink, stopping);
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| state.run(&inbox)));
                if let Err(panic) = outcome {
                    let why = panic_message(&*panic);
                    (state.sink)(PlayerEvent::Died(format!("the replay failed: {why}")));
                }
            })?;
        Ok(Player {
            control,
            handle: Some(handle),
            stop,
        })
    }

    pub fn send(&self, c: Control) {
        // A send fails only once the thread has ended, which its sink shows.
        let _ = self.control.send(c);
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.control.send(Control::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct State<S> {
    reader: Reader,
    spec: ProcessorSpec,
    processor: Processor,
    /// The index of the last sample fed to `processor` (`None` before any).
    fed: Option<usize>,
    len: usize,
    playing: bool,
    speed: f64,
    damage: Option<Damage>,
    sink: S,
    stop: Arc<AtomicBool>,
}

impl<S: FnMut(PlayerEvent) -> bool> State<S> {
    fn new(reader: Reader, spec: ProcessorSpec, sink: S, stop: Arc<AtomicBool>) -> State<S> {
        let len = reader.len();
        let damage = reader.damage().cloned();
        State {
            processor: spec.build(),
            reader,
            spec,
            fed: None,
            len,
            playing: true,
            speed: 1.0,
            damage,
            sink,
            stop,
        }
    }

    fn status(&self) -> Status {
        let index = self.fed.unwrap_or(0);
        Status {
            index,
            len: self.len,
            playing: self.playing,
            speed: self.speed,
            at: self.reader.taken_at(index),
            damage: self.damage.clone(),
        }
    }

    fn run(&mut self, inbox: &Receiver<Control>) {
        if self.len == 0 {
            self.playing = false;
            if !self.report() {
                return;
            }
        } else if !self.go_to(0) {
            return;
        }
        loop {
            let wait = match (self.playing, self.fed) {
                (true, Some(i)) if i + 1 < self.len => self.gap(i),
                _ => Duration::from_secs(3600),
            };
            let first = match inbox.recv_timeout(wait) {
                Ok(c) => Some(c),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let Some(first) = first else {
                let next = self.fed.map_or(0, |i| i + 1);
                if !self.go_to(next) {
                    return;
                }
                continue;
            };
            // Everything queued at once: a stop wins, and seeks add up to one
            // move (five quick presses of `[` are one warm-up, not five).
            let controls: Vec<Control> = std::iter::once(first).chain(inbox.try_iter()).collect();
            if controls.contains(&Control::Stop) {
                return;
            }
            let last = i64::try_from(self.len.saturating_sub(1)).unwrap_or(i64::MAX);
            let mut target = i64::try_from(self.fed.unwrap_or(0)).unwrap_or(last);
            let mut moved = false;
            for c in controls {
                match c {
                    Control::Seek(delta) => {
                        target = target.saturating_add(delta).clamp(0, last);
                        moved = true;
                    }
                    Control::SeekShare(share) => {
                        #[expect(
                            clippy::cast_possible_truncation,
                            reason = "a float cast to an integer saturates; the target is clamped next"
                        )]
                        let delta = (self.len as f64 * share).round() as i64;
                        target = target.saturating_add(delta).clamp(0, last);
                        moved = true;
                    }
                    Control::TogglePlay if !self.playing && self.status().at_end() => {
                        // Play again from the start, as a media player does.
                        self.playing = true;
                        target = 0;
                        moved = true;
                    }
                    Control::TogglePlay => self.playing = !self.playing,
                    Control::Speed(up) => {
                        let i = SPEEDS.iter().position(|s| *s >= self.speed).unwrap_or(2);
                        let j = if up {
                            (i + 1).min(SPEEDS.len() - 1)
                        } else {
                            i.saturating_sub(1)
                        };
                        self.speed = SPEEDS[j];
                    }
                    Control::Stop => return,
                }
            }
            let alive = if moved && self.len > 0 {
                // Clamped to 0..=last above.
                self.go_to(usize::try_from(target).unwrap_or(0))
            } else {
                self.report()
            };
            if !alive {
                return;
            }
        }
    }

    /// The wait before the sample after `i`, at the current speed.
    fn gap(&self, i: usize) -> Duration {
        let (Some(a), Some(b)) = (self.reader.taken_at(i), self.reader.taken_at(i + 1)) else {
            return Duration::ZERO;
        };
        let d = b.duration_since(a).unwrap_or_default().min(MAX_GAP);
        d.div_f64(self.speed)
    }

    fn report(&mut self) -> bool {
        let status = self.status();
        (self.sink)(PlayerEvent::Status(status))
    }

    /// Shows sample `target`: fed on from where the engine is when that is near
    /// ahead, else from a fresh engine after a warm-up. False when the sink's
    /// consumer is gone or the player is stopping.
    fn go_to(&mut self, target: usize) -> bool {
        if self.len == 0 {
            return self.report();
        }
        let target = target.min(self.len - 1);
        let start = match self.fed {
            Some(i) if target > i && target - i <= WARMUP => i + 1,
            Some(i) if target == i => return self.report(),
            _ => {
                self.processor = self.spec.build();
                self.fed = None;
                target.saturating_sub(WARMUP)
            }
        };
        let mut last = None;
        for i in start..=target {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            match self.reader.read(i) {
                Some(Ok(sample)) => {
                    // The previous update goes first, so that the engine's
                    // series are updated in place.
                    drop(last.take());
                    last = Some(self.processor.process(sample));
                    self.fed = Some(i);
                }
                Some(Err(damage)) => {
                    // Damage found only now (on opening every frame checked
                    // out): the replay ends before it.
                    self.len = damage.at_frame.min(i);
                    self.damage = Some(damage);
                    self.playing = false;
                    break;
                }
                None => {
                    self.len = i;
                    self.playing = false;
                    break;
                }
            }
        }
        if self.fed.is_some_and(|i| i + 1 >= self.len) {
            self.playing = false;
        }
        match last {
            Some(update) => {
                let status = self.status();
                (self.sink)(PlayerEvent::Update(update, status))
            }
            // Nothing fed from a fresh engine (the damage came first): show the
            // last sample before it instead.
            None if self.fed.is_none() && self.len > 0 && target >= self.len => {
                self.go_to(self.len - 1)
            }
            None if self.fed.is_none() => {
                (self.sink)(PlayerEvent::Error(
                    "no sample of the recording could be read".into(),
                )) && self.report()
            }
            None => self.report(),
        }
    }
}
