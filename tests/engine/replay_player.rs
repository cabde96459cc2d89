//! The interactive replay's player, in-process: it plays a recording through the
//! engine and diagnoser with the same counts and findings as processing the
//! samples directly, steps and seeks both ways (a backward seek rebuilds the
//! engine from a warm-up window), and stops at damage saying where. No timing
//! is asserted: the player is paused and stepped, or run at top speed to its end.

use crate::common;

use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use common::recording::rich;
use sockscope::diagnose::{Diagnoser, Thresholds};
use sockscope::live::Processor;
use sockscope::model::{EngineConfig, Sample};
use sockscope::record::player::{Control, Player, PlayerEvent, Status};
use sockscope::record::{Limits, Reader, Recorder};

/// What the screen would show of an update: tick, counts, findings.
type Seen = (u64, Vec<u64>, Vec<(String, String)>);

fn seen(update: &sockscope::live::Update) -> Seen {
    (
        update.snapshot.tick,
        update.snapshot.aggregates.counts.0.to_vec(),
        update
            .findings
            .iter()
            .map(|f| (f.rule.to_string(), f.subject.to_string()))
            .collect(),
    )
}

fn direct(samples: &[Sample]) -> Vec<Seen> {
    let mut p = Processor::new(
        EngineConfig::default(),
        Diagnoser::new(Thresholds::default()),
    );
    samples
        .iter()
        .map(|s| seen(&p.process(s.clone())))
        .collect()
}

fn samples(n: u32) -> Vec<Sample> {
    (0..n).map(|i| rich(i, 40)).collect()
}

fn recording(dir: &std::path::Path, samples: &[Sample]) -> std::path::PathBuf {
    let path = dir.join("r.rec");
    let mut rec = Recorder::create(&path, Limits::default()).expect("create");
    for s in samples {
        rec.append(s).expect("append");
    }
    path
}

struct Run {
    player: Player,
    rx: Receiver<PlayerEvent>,
}

impl Run {
    fn start(path: &std::path::Path) -> Run {
        let reader = Reader::open(path).expect("open");
        let (tx, rx) = mpsc::channel();
        let player = Player::spawn(
            reader,
            sockscope::processor::ProcessorSpec::default(),
            move |e| tx.send(e).is_ok(),
        )
        .expect("spawn");
        Run { player, rx }
    }

    /// The next event (at most 20 s away).
    fn next(&self) -> PlayerEvent {
        self.rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the player answers")
    }

    fn next_update(&self) -> (Seen, Status) {
        loop {
            match self.next() {
                PlayerEvent::Update(u, s) => return (seen(&u), s),
                PlayerEvent::Status(_) => {}
                PlayerEvent::Error(e) | PlayerEvent::Died(e) => panic!("player error: {e}"),
            }
        }
    }

    fn next_status(&self) -> Status {
        loop {
            if let PlayerEvent::Status(s) = self.next() {
                return s;
            }
        }
    }
}

#[test]
fn playing_to_the_end_shows_every_sample_as_direct_processing_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let samples = samples(12);
    let want = direct(&samples);
    let run = Run::start(&recording(dir.path(), &samples));
    // Top speed: the recorded gaps are a second each.
    for _ in 0..10 {
        run.player.send(Control::Speed(true));
    }
    let mut got = Vec::new();
    loop {
        let (s, status) = run.next_update();
        assert_eq!(status.index, got.len());
        got.push(s);
        if status.at_end() {
            assert!(!status.playing, "stops at the end");
            assert_eq!(status.len, 12);
            break;
        }
    }
    assert_eq!(got, want);
}

#[test]
fn paused_it_steps_and_seeks_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let samples = samples(30);
    let want = direct(&samples);
    let run = Run::start(&recording(dir.path(), &samples));
    let (first, _) = run.next_update();
    assert_eq!(first, want[0]);
    run.player.send(Control::TogglePlay);
    // Updates may have come between the first and the pause; step from where it is.
    let paused = run.next_status();
    assert!(!paused.playing);
    let at = paused.index;
    run.player.send(Control::Seek(1));
    let (s, status) = run.next_update();
    assert_eq!((status.index, status.playing), (at + 1, false));
    assert_eq!(s, want[at + 1]);
    run.player.send(Control::Seek(10));
    let (s, status) = run.next_update();
    assert_eq!(status.index, at + 11);
    assert_eq!(s, want[at + 11]);
    // Back: a fresh engine from the start of the warm-up (here the recording's
    // start), so the same snapshot as direct processing.
    run.player.send(Control::Seek(-7));
    let (s, status) = run.next_update();
    assert_eq!(status.index, at + 4);
    assert_eq!(s, want[at + 4]);
    run.player.send(Control::SeekShare(-1.0));
    let (s, status) = run.next_update();
    assert_eq!((status.index, s), (0, want[0].clone()));
    run.player.send(Control::SeekShare(2.0));
    let (s, status) = run.next_update();
    assert_eq!((status.index, s), (29, want[29].clone()));
    assert!(status.at_end());
    run.player.send(Control::Speed(true));
    assert_eq!(run.next_status().speed, 2.0);
    // Two steps down, read together or apart: 0.5 in the end.
    run.player.send(Control::Speed(false));
    run.player.send(Control::Speed(false));
    let mut speed = run.next_status().speed;
    if speed == 1.0 {
        speed = run.next_status().speed;
    }
    assert_eq!(speed, 0.5);
}

#[test]
fn a_damaged_recording_plays_up_to_the_damage_and_says_where() {
    let dir = tempfile::tempdir().expect("tempdir");
    let samples = samples(10);
    let want = direct(&samples);
    let path = recording(dir.path(), &samples);
    let len = std::fs::metadata(&path).expect("stat").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_len(len - 5).expect("cut into the last frame");
    let run = Run::start(&path);
    for _ in 0..10 {
        run.player.send(Control::Speed(true));
    }
    let mut got = Vec::new();
    let last = loop {
        let (s, status) = run.next_update();
        got.push(s);
        if status.at_end() {
            break status;
        }
    };
    assert_eq!(got, want[..9]);
    let damage = last.damage.expect("the damage is reported");
    assert_eq!(damage.at_frame, 9);
    assert!(damage.to_string().contains("r.rec"), "{damage}");
}

#[test]
fn an_empty_recording_reports_nothing_to_play() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = recording(dir.path(), &[]);
    let run = Run::start(&path);
    let status = run.next_status();
    assert_eq!((status.len, status.playing), (0, false));
}

#[test]
fn seeking_an_empty_recording_does_not_kill_the_player() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = recording(dir.path(), &[]);
    let run = Run::start(&path);
    assert_eq!(run.next_status().len, 0);
    for c in [
        Control::Seek(1),
        Control::Seek(-5),
        Control::SeekShare(0.1),
        Control::TogglePlay,
    ] {
        run.player.send(c);
        let status = run.next_status();
        assert_eq!((status.len, status.index), (0, 0), "after {c:?}");
    }
}

#[test]
fn queued_seeks_add_up_to_one_move() {
    let dir = tempfile::tempdir().expect("tempdir");
    let samples = samples(40);
    let want = direct(&samples);
    let run = Run::start(&recording(dir.path(), &samples));
    run.next_update();
    run.player.send(Control::TogglePlay);
    let at = run.next_status().index;
    // Sent together, they may be read together or apart; either way the
    // screen ends on the sum of the moves.
    for _ in 0..3 {
        run.player.send(Control::Seek(5));
    }
    let mut last = None;
    while last
        .as_ref()
        .is_none_or(|(_, s): &(Seen, Status)| s.index != at + 15)
    {
        last = Some(run.next_update());
    }
    let (s, _) = last.expect("an update");
    assert_eq!(s, want[at + 15]);
}
