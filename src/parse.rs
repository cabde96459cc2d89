//! Option values parsed where they enter: durations for intervals and timeouts,
//! checked against one range, and sizes. A leaf: the command line, the config file and the
//! HTTP limits share it, and it uses nothing of the crate.

use std::time::Duration;

/// The shortest and longest time accepted for an interval or timeout option:
/// shorter burns a core, longer is a typo (or an overflow).
pub const DURATION_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(3600);

/// A duration option (`--interval 500ms`), between 100 ms and 1 hour; clap names
/// the option in its error.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d =
        humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 500ms, 2s, 1m)"))?;
    check_duration(d)
}

/// `d` if it lies in [`DURATION_RANGE`]; else why not.
pub fn check_duration(d: Duration) -> Result<Duration, String> {
    if DURATION_RANGE.contains(&d) {
        Ok(d)
    } else {
        Err(format!(
            "{} is out of range: between 100ms and 1h",
            humantime::format_duration(d)
        ))
    }
}

/// A size: a number with an optional unit, `B`, `KB`/`MB`/`GB` (powers of 1000)
/// or `KiB`/`MiB`/`GiB` (powers of 1024), case-insensitive; `K`, `M`, `G` alone
/// are the binary ones.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (write e.g. 256MiB, 1GiB, 500MB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?} is too large"))
}
