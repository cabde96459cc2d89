//! Short text forms for narrow columns: ages, byte counts, rates, sparklines,
//! addresses, and process names made safe for the terminal.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A count of lines or characters as terminal cells, saturating (a terminal is
/// never 65,535 cells wide).
pub fn cells(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// `42s`, `3m05s`, `2h10m`, `4d03h`.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A microsecond time as `38µs`, `2.3ms`, `12ms`, `1.3s`.
pub fn micros(us: u32) -> String {
    match us {
        0..1000 => format!("{us}µs"),
        1000..10_000 => format!("{:.1}ms", f64::from(us) / 1000.0),
        10_000..1_000_000 => format!("{}ms", us / 1000),
        _ => format!("{:.1}s", f64::from(us) / 1e6),
    }
}

/// A millisecond span as a person reads it: `850ms`, `44.8s`, `1m32s`,
/// `3h02m`, `4d03h`.
pub fn millis(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => age(Duration::from_millis(ms)),
    }
}

/// One of tcp_info's `last_*` ages (milliseconds since the kernel last saw
/// it): `44.8s ago`, or `never` when it is as old as the machine (the kernel
/// counts from boot, less five minutes, for what never happened).
pub fn ago_ms(ms: u32, uptime_secs: u64) -> String {
    if uptime_secs > 0 && u64::from(ms) / 1000 + 1 >= uptime_secs {
        "never".to_string()
    } else {
        format!("{} ago", millis(u64::from(ms)))
    }
}

/// `1.5G`, `340M`, `12k` (powers of 1024).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["", "k", "M", "G", "T"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}")
    } else if v < 10.0 {
        format!("{v:.1}{}", UNITS[unit])
    } else {
        format!("{v:.0}{}", UNITS[unit])
    }
}

/// A per-second rate: `0`, `3.5/s`, `120/s`; `-` when unknown.
pub fn rate(r: Option<f64>) -> String {
    match r {
        None => "-".into(),
        Some(r) if r < 0.05 => "0".into(),
        Some(r) if r < 10.0 => format!("{r:.1}/s"),
        Some(r) => format!("{r:.0}/s"),
    }
}

/// The values as a line of block characters, scaled to their maximum, the
/// newest at the right, `width` cells at most.
pub fn sparkline(
    values: impl DoubleEndedIterator<Item = u64> + ExactSizeIterator,
    width: usize,
) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let skip = values.len().saturating_sub(width);
    let vals: Vec<u64> = values.skip(skip).collect();
    let max = vals.iter().copied().max().unwrap_or(0);
    let mut out = String::with_capacity(vals.len() * 3);
    for v in vals {
        let i = if max == 0 {
            0
        } else {
            // A share of 0..=1 times 7: always 0..=7.
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a share of 0..=1 times 7 rounds to 0..=7"
            )]
            let bar = ((v as f64 / max as f64) * 7.0).round() as usize;
            bar
        };
        out.push(if v == 0 { ' ' } else { BARS[i.clamp(0, 7)] });
    }
    out
}

/// An endpoint as `ss` prints it: `10.0.0.1:443`, `[::1]:22`, `*:80` for an
/// unspecified address.
pub fn endpoint(a: SocketAddr) -> String {
    let mut s = String::with_capacity(24);
    match a.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => s.push('*'),
        IpAddr::V6(v6) if v6.is_unspecified() => s.push_str("[::]"),
        IpAddr::V4(v4) => {
            let _ = write!(s, "{v4}");
        }
        IpAddr::V6(v6) => {
            let _ = write!(s, "[{v6}]");
        }
    }
    let _ = write!(s, ":{}", a.port());
    s
}

/// Text from a process (its name or command line) with control characters and
/// bidi overrides escaped (as every text output escapes them), so that it cannot
/// move the cursor, change colours or reorder the row.
pub fn printable(text: &str) -> String {
    crate::export::printable(text).into_owned()
}

/// A time as `2023-11-14 22:13:28` (with `.123` when `millis`), UTC; a clock
/// outside 1970..9999 is clamped rather than allowed to end the screen.
pub fn time(t: std::time::SystemTime, millis: bool) -> String {
    let text = crate::export::rfc3339(crate::model::Stamp::from(t));
    let text = text.trim_end_matches('Z').replacen('T', " ", 1);
    if millis {
        text
    } else {
        text.split('.').next().unwrap_or_default().to_string()
    }
}

/// `text` cut to `width` characters, with `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        assert_eq!(age(Duration::from_secs(42)), "42s");
        assert_eq!(age(Duration::from_secs(185)), "3m05s");
        assert_eq!(age(Duration::from_secs(7800)), "2h10m");
        assert_eq!(age(Duration::from_secs(4 * 86_400 + 3 * 3600)), "4d03h");
        assert_eq!(micros(38), "38µs");
        assert_eq!(micros(230), "230µs");
        assert_eq!(micros(2_340), "2.3ms");
        assert_eq!(millis(850), "850ms");
        assert_eq!(millis(44_800), "44.8s");
        assert_eq!(millis(92_000), "1m32s");
        assert_eq!(millis(3 * 3_600_000 + 120_000), "3h02m");
        // A socket that never received data, on a machine up 2.5 hours.
        assert_eq!(ago_ms(9_190_168, 8_890), "never");
        assert_eq!(ago_ms(400, 8_890), "400ms ago");
        assert_eq!(ago_ms(61_000, 8_890), "1m01s ago");
        assert_eq!(micros(12_300), "12ms");
        assert_eq!(micros(1_300_000), "1.3s");
        assert_eq!(bytes(512), "512");
        assert_eq!(bytes(1536), "1.5k");
        assert_eq!(bytes(340 << 20), "340M");
        assert_eq!(rate(None), "-");
        assert_eq!(rate(Some(0.01)), "0");
        assert_eq!(rate(Some(3.54)), "3.5/s");
        assert_eq!(rate(Some(120.4)), "120/s");
        assert_eq!(endpoint("0.0.0.0:80".parse().expect("addr")), "*:80");
        assert_eq!(endpoint("[::1]:22".parse().expect("addr")), "[::1]:22");
        assert_eq!(printable("a\x1b[31mb\u{202e}"), "a\\x1b[31mb\\u{202e}");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        let t = std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_008_123);
        assert_eq!(time(t, false), "2023-11-14 22:13:28");
        assert_eq!(time(t, true), "2023-11-14 22:13:28.123");
        let before = std::time::UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(
            time(before, false),
            "1970-01-01 00:00:00",
            "clamped, no panic"
        );
    }

    #[test]
    fn sparklines_scale_to_the_maximum_and_keep_the_newest() {
        assert_eq!(sparkline([0, 1, 2, 4, 8].into_iter(), 10), " ▂▃▅█");
        assert_eq!(sparkline([8, 8, 1].into_iter(), 2), "█▂");
        assert_eq!(sparkline(std::iter::empty::<u64>(), 5), "");
    }
}
