//! Connection churn on loopback, for `benches/events.sh`: opens and closes
//! RATE connections a second to a listener of its own for SECONDS seconds
//! (each one connected, accepted and closed at once), then prints how many
//! it made and the rate reached.
//!
//! ```text
//! churn RATE SECONDS
//! ```
//!
//! The server closes first, so each connection leaves a TIME_WAIT socket on
//! the server's side (and two destroy events: one per end). Only 127.0.0.1
//! is used.

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(rate), Some(secs)) = (
        args.first().and_then(|a| a.parse::<u32>().ok()),
        args.get(1).and_then(|a| a.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: churn RATE SECONDS");
        std::process::exit(2);
    };
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("churn: bind: {e}");
            std::process::exit(1);
        }
    };
    let Ok(addr) = listener.local_addr() else {
        std::process::exit(1);
    };
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    let start = Instant::now();
    let end = Duration::from_secs(secs);
    let pace = Duration::from_secs(1) / rate.max(1);
    let mut made: u64 = 0;
    let mut failed: u64 = 0;
    while start.elapsed() < end {
        match TcpStream::connect(addr) {
            Ok(mut c) => {
                // The server closes first, so the TIME_WAIT is its end's
                // and the client's ephemeral ports are not used up.
                let _ = std::io::Read::read(&mut c, &mut [0u8; 1]);
                drop(c);
                made += 1;
            }
            Err(_) => failed += 1,
        }
        // Paced against the start: a late connection is made up at once.
        let due = pace * u32::try_from(made + failed).unwrap_or(u32::MAX);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let took = start.elapsed().as_secs_f64();
    println!(
        "made {made} failed {failed} rate {:.0}/s",
        made as f64 / took
    );
}
