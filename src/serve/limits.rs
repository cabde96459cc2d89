//! The limits that keep `serve` answering whatever its clients do: each one a
//! command-line option with a default that suits a Prometheus scraper and leaves
//! a hostile local client nothing to hold.

use std::time::Duration;

use clap::Args;

use crate::parse::parse_duration;

/// Past this many headers a request is refused with 431.
pub const DEFAULT_MAX_HEADERS: u32 = 64;

#[derive(Clone, Debug, Args)]
pub struct HttpLimits {
    /// Connections open at once; past it a new connection replaces the oldest
    /// one that has no request in progress, or is closed at once if every one
    /// has.
    #[arg(long = "http-max-connections", value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_connections: u32,

    /// A request's head (request line and headers) must arrive whole within
    /// this time, counted from when the connection is ready for it; so it also
    /// closes a keep-alive connection idle for that long.
    #[arg(long = "http-header-timeout", value_name = "DURATION", default_value = "10s",
          value_parser = limit_duration)]
    pub header_timeout: Duration,

    /// A response must be written whole within this time (a client that stops
    /// reading is cut off).
    #[arg(long = "http-write-timeout", value_name = "DURATION", default_value = "30s",
          value_parser = limit_duration)]
    pub write_timeout: Duration,

    /// A write of a response may wait this long for the client to read;
    /// past it the client has stopped reading and the connection is cut,
    /// freeing what its response held (a streamed `/snapshot` holds the one
    /// `/snapshot` slot).
    #[arg(long = "http-stall-timeout", value_name = "DURATION", default_value = "5s",
          value_parser = limit_duration)]
    pub stall_timeout: Duration,

    /// The largest request head (request line and headers), in bytes; larger
    /// ones get 431.
    #[arg(long = "http-max-header-bytes", value_name = "BYTES", default_value_t = 16_384,
          value_parser = clap::value_parser!(u32).range(1_024..=1_048_576))]
    pub max_header_bytes: u32,

    /// The most headers in a request; more get 431.
    #[arg(long = "http-max-headers", value_name = "N", default_value_t = DEFAULT_MAX_HEADERS,
          value_parser = clap::value_parser!(u32).range(8..=1_024))]
    pub max_headers: u32,

    /// The longest request target (path and query), in bytes; longer ones get
    /// 414 (a target too long to fit the head limit gets 431).
    #[arg(long = "http-max-url-bytes", value_name = "BYTES", default_value_t = 2_048,
          value_parser = clap::value_parser!(u32).range(64..=65_536))]
    pub max_url_bytes: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(5),
            max_header_bytes: 16_384,
            max_headers: DEFAULT_MAX_HEADERS,
            max_url_bytes: 2_048,
        }
    }
}

/// A timeout between 100 ms and 1 hour.
fn limit_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
        return Err(format!(
            "{} is out of range: between 100ms and 1h",
            humantime::format_duration(d)
        ));
    }
    Ok(d)
}
