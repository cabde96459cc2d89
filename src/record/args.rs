//! `--record FILE --record-max SIZE --record-keep N`: the option group the
//! long-running modes flatten into their clap arguments.

use std::path::PathBuf;

use clap::Args;

use super::{Limits, RecordError, RecordingSink};

/// Recording options, shared by every mode that can record.
#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// Record every sample to FILE (replay it with `sockscope replay FILE`).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// The most the recording may take on disk, rotated files included
    /// (e.g. 64MiB, 1GiB, 500MB).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size, requires = "record")]
    pub record_max: u64,

    /// How many rotated files (FILE.1, FILE.2, ...) to keep besides FILE (at
    /// most 1000).
    #[arg(long, value_name = "N", default_value_t = 3, requires = "record",
          value_parser = clap::value_parser!(u32).range(0..=i64::from(super::MAX_KEEP)))]
    pub record_keep: u32,
}

impl RecordArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_bytes: self.record_max,
            keep: self.record_keep,
        }
    }

    /// Starts the writer when `--record` was given.
    pub fn start(&self) -> Result<Option<RecordingSink>, RecordError> {
        match &self.record {
            Some(path) => RecordingSink::spawn(path, self.limits()).map(Some),
            None => Ok(None),
        }
    }
}

/// A recording's size (see [`crate::parse::parse_bytes`]): at least 64 KiB.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bytes = crate::parse::parse_bytes(text)?;
    if bytes < 64 << 10 {
        return Err(format!(
            "{text:?} is too small for a recording (at least 64KiB)"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Mode {
        #[command(flatten)]
        record: RecordArgs,
    }

    #[test]
    fn the_options_flatten_into_a_mode() {
        let m = Mode::try_parse_from(["x"]).expect("no recording");
        assert!(m.record.record.is_none());
        assert_eq!(m.record.limits(), Limits::default());
        let m = Mode::try_parse_from([
            "x",
            "--record",
            "r",
            "--record-max",
            "1GiB",
            "--record-keep",
            "0",
        ])
        .expect("parse");
        assert_eq!(m.record.record.as_deref(), Some(std::path::Path::new("r")));
        assert_eq!(
            m.record.limits(),
            Limits {
                max_bytes: 1 << 30,
                keep: 0
            }
        );
        assert!(
            Mode::try_parse_from(["x", "--record-max", "1GiB"]).is_err(),
            "needs --record"
        );
        assert!(
            Mode::try_parse_from(["x", "--record", "r", "--record-max", "1 lightyear"]).is_err()
        );
        let m = Mode::try_parse_from(["x", "--record", "r", "--record-keep", "1000"])
            .expect("the most kept");
        assert_eq!(m.record.limits().keep, 1000);
        for n in ["1001", "4294967295"] {
            let err = Mode::try_parse_from(["x", "--record", "r", "--record-keep", n])
                .expect_err("too many kept");
            assert!(err.to_string().contains("0..=1000"), "{err}");
        }
    }

    #[test]
    fn sizes_parse_with_either_kind_of_unit() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1gib"), Ok(1 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert!(parse_size("1KiB").is_err(), "too small");
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }
}
