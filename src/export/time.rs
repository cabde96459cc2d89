//! The one RFC 3339 writer of every export: UTC, milliseconds in the documents
//! and on the screen, nanoseconds where a recording's exact time is kept.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::model::Stamp;

/// The last instant humantime can write: 9999-12-31T23:59:59Z.
const LAST: Duration = Duration::from_secs(253_402_300_799);

/// `at` moved into the years humantime writes (1970 to 9999): a clock outside
/// them (a broken RTC, a hostile recording) is clamped rather than allowed to end
/// the export.
fn clamped(at: SystemTime) -> SystemTime {
    let since = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .min(LAST);
    UNIX_EPOCH + since
}

/// A time as RFC 3339 in UTC with milliseconds, as everywhere in the exports.
pub fn rfc3339(at: Stamp) -> String {
    rfc3339_time(at.to_system())
}

/// [`rfc3339`] of a wall-clock time.
pub fn rfc3339_time(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(clamped(at)).to_string()
}

/// RFC 3339 in UTC with nanoseconds: a recording's replay keeps the exact time.
pub fn rfc3339_nanos(at: SystemTime) -> String {
    humantime::format_rfc3339_nanos(clamped(at)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_milliseconds_and_nanoseconds() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(rfc3339_time(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_nanos(t), "2023-11-14T22:13:20.123456789Z");
    }

    #[test]
    fn clamps_clocks_outside_the_writable_years() {
        assert_eq!(
            rfc3339_time(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00.000Z"
        );
        let far = UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 100);
        assert_eq!(rfc3339_nanos(far), "9999-12-31T23:59:59.000000000Z");
    }
}
