//! Benchmark of `Engine::ingest` at 1k, 10k and 100k sockets with 1% churn per
//! tick: each tick 1% of the connections close, as many open, and 0.5% change
//! state. The samples are synthetic (no kernel needed) and built outside the
//! timed part; the engine is first run for 200 ticks so that the closed list and
//! the series are as full as in steady state.
//!
//! Prints the engine's memory estimate per tracked connection after the run.
//! `cargo bench --bench engine`; `SOCKSCOPE_BENCH_SIZES=1000,10000` picks sizes.

use criterion::{BatchSize, BenchmarkId, Criterion};
use sockscope::model::{Engine, EngineConfig};

#[path = "support/synthetic.rs"]
mod synthetic;

use synthetic::Population;

fn bench_size(c: &mut Criterion, size: usize) {
    let mut population = Population::new(size);
    let mut engine = Engine::new(EngineConfig::default());
    for _ in 0..200 {
        engine.ingest(population.next_sample());
    }
    let mut group = c.benchmark_group("ingest_1pct_churn");
    if size >= 100_000 {
        group.sample_size(10);
    }
    group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
        b.iter_batched(
            || population.next_sample(),
            |sample| engine.ingest(sample),
            BatchSize::PerIteration,
        );
    });
    group.finish();

    let m = engine.memory_estimate();
    let tracked = engine.tracked();
    let snap = engine.ingest(population.next_sample());
    eprintln!(
        "engine memory at {size} sockets: {tracked} tracked ({} live, {} closed); \
         table {} B + closed {} B = {:.0} B per tracked connection; \
         history {} B (transitions {} B, events {} B, bound {} B); series {} B; \
         {} events logged; a snapshot's per-socket views {} B",
        snap.sample.sockets.len(),
        snap.closed.len(),
        m.table,
        m.closed,
        (m.table + m.closed) as f64 / tracked as f64,
        m.history(),
        m.transitions,
        m.events,
        engine.config().history_bytes,
        m.series,
        snap.history.events_logged,
        snap.conns.capacity() * size_of::<sockscope::model::ConnView>(),
    );
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    for size in synthetic::sizes() {
        bench_size(&mut criterion, size);
    }
    criterion.final_summary();
}
