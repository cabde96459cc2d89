//! The sampler thread: samples arrive in order at the interval, the interval can be
//! changed live, a sample can be asked for at once, and the thread stops when told,
//! when dropped, or when nobody listens any more.

use std::sync::mpsc;
use std::time::Duration;

use sockscope::sample::sampler::{Collector, CollectorConfig, Sampler, SamplerEvent};

/// Generous: these bound a wait, they do not measure speed.
const WAIT: Duration = Duration::from_secs(20);

fn next_sample(rx: &mpsc::Receiver<SamplerEvent>) -> Box<sockscope::model::Sample> {
    match rx.recv_timeout(WAIT).expect("a sample in time") {
        SamplerEvent::Sample(s) => s,
        SamplerEvent::Error(e) | SamplerEvent::Died(e) => panic!("sampler error: {e}"),
    }
}

#[test]
fn produces_samples_in_order_and_stops_when_told() {
    let (tx, rx) = mpsc::channel();
    let sampler = Sampler::spawn(
        Collector::new(CollectorConfig::default()),
        Duration::from_millis(20),
        tx,
    )
    .expect("spawn");
    let mut last = None;
    for _ in 0..3 {
        let s = next_sample(&rx);
        assert_eq!(s.health.source, sockscope::model::SocketSource::Netlink);
        if let Some(prev) = last {
            assert!(s.taken_at > prev, "taken_at increases");
        }
        last = Some(s.taken_at);
    }
    sampler.stop();
    // After stop() returns the thread is gone: the channel drains and disconnects.
    while rx.recv_timeout(WAIT).is_ok() {}
    assert!(matches!(
        rx.try_recv(),
        Err(mpsc::TryRecvError::Disconnected)
    ));
}

#[test]
fn interval_changes_and_sample_now_take_effect() {
    let (tx, rx) = mpsc::channel();
    // An hour between samples: only `sample_now` can bring the second one.
    let sampler = Sampler::spawn(
        Collector::new(CollectorConfig::default()),
        Duration::from_secs(3600),
        tx,
    )
    .expect("spawn");
    next_sample(&rx);
    sampler.sample_now();
    next_sample(&rx);
    sampler.set_interval(Duration::from_millis(10));
    next_sample(&rx);
    next_sample(&rx);
    drop(sampler);
    while rx.recv_timeout(WAIT).is_ok() {}
    assert!(matches!(
        rx.try_recv(),
        Err(mpsc::TryRecvError::Disconnected)
    ));
}

#[test]
fn ends_when_the_receiver_is_gone() {
    let (tx, rx) = mpsc::channel();
    let sampler = Sampler::spawn(
        Collector::new(CollectorConfig::default()),
        Duration::from_millis(10),
        tx,
    )
    .expect("spawn");
    next_sample(&rx);
    drop(rx);
    // stop() joins the thread; it must end although it was mid-interval or
    // mid-send when the receiver went away.
    sampler.stop();
}
