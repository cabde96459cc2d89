//! How often a sample is full, dumping the ESTABLISHED sockets too, rather
//! than lean (see [`Coverage`](crate::model::Coverage)).

/// How often a sample is full (dumps the ESTABLISHED sockets too) rather
/// than lean (see [`Coverage`]). Only netlink dumps can be lean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FullEvery {
    /// Every sample while a full dump costs at most a tenth of the time
    /// between samples, or while it holds fewer than
    /// [`AUTO_MIN_ESTABLISHED`] ESTABLISHED sockets (cheap enough to be
    /// exact); else one in N, N the dump's cost over that tenth (at most
    /// [`AUTO_MAX_LEAN_RUN`] + 1): the sampling's share of a core stays near
    /// a tenth.
    #[default]
    Auto,
    /// One sample in N (1: every sample, as `ss` sees them all).
    Samples(u32),
}

/// Under [`FullEvery::Auto`], at most this many lean samples in a row.
pub const AUTO_MAX_LEAN_RUN: u32 = 9;

/// Under [`FullEvery::Auto`], no lean sample follows a full one with fewer
/// ESTABLISHED sockets than this.
pub const AUTO_MIN_ESTABLISHED: usize = 50_000;

impl FullEvery {
    /// How many lean samples follow a full one whose sockets took
    /// `dump_us` to read and held `established()` ESTABLISHED ones (counted
    /// only when it matters), samples being `period_us` apart (`None`:
    /// unknown).
    pub fn lean_run(
        self,
        dump_us: u64,
        period_us: Option<u64>,
        established: impl FnOnce() -> usize,
    ) -> u32 {
        match self {
            FullEvery::Samples(n) => n.max(1) - 1,
            FullEvery::Auto if established() < AUTO_MIN_ESTABLISHED => 0,
            FullEvery::Auto => {
                let Some(period) = period_us.filter(|p| *p > 0) else {
                    return 0;
                };
                let budget = (period / 10).max(1);
                let n = dump_us.div_ceil(budget);
                u32::try_from(n.saturating_sub(1))
                    .unwrap_or(u32::MAX)
                    .min(AUTO_MAX_LEAN_RUN)
            }
        }
    }
}

impl std::str::FromStr for FullEvery {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(FullEvery::Auto);
        }
        match s.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(FullEvery::Samples(n)),
            _ => Err(format!(
                "{s:?} is not `auto` or a number of samples from 1 to 1000"
            )),
        }
    }
}

impl std::fmt::Display for FullEvery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FullEvery::Auto => f.write_str("auto"),
            FullEvery::Samples(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FullEvery;

    #[test]
    fn full_every_parses_auto_and_a_count_and_refuses_the_rest() {
        assert_eq!("auto".parse(), Ok(FullEvery::Auto));
        assert_eq!("AUTO".parse(), Ok(FullEvery::Auto));
        assert_eq!("5".parse(), Ok(FullEvery::Samples(5)));
        for bad in ["0", "-1", "1001", "often", ""] {
            let e = bad.parse::<FullEvery>().expect_err(bad);
            assert!(e.contains("auto"), "{e}");
        }
        assert_eq!(FullEvery::Samples(3).to_string(), "3");
        assert_eq!(FullEvery::Auto.to_string(), "auto");
    }

    #[test]
    fn auto_goes_lean_as_the_full_dump_outgrows_a_tenth_of_the_period() {
        let a = FullEvery::Auto;
        let many = 100_000;
        // 1 s apart: a dump up to 100 ms keeps every sample full.
        assert_eq!(a.lean_run(40_000, Some(1_000_000), || many), 0);
        assert_eq!(a.lean_run(100_000, Some(1_000_000), || many), 0);
        // 150 ms: one full in two; 350 ms: one in four.
        assert_eq!(a.lean_run(150_000, Some(1_000_000), || many), 1);
        assert_eq!(a.lean_run(350_000, Some(1_000_000), || many), 3);
        // Never more than nine lean in a row, and full when the period is
        // not known yet.
        assert_eq!(a.lean_run(30_000_000, Some(1_000_000), || many), 9);
        assert_eq!(a.lean_run(30_000_000, None, || many), 0);
        // A table of fewer open connections is cheap enough to be exact,
        // whatever a loaded machine made its dump cost.
        assert_eq!(a.lean_run(30_000_000, Some(1_000_000), || 49_999), 0);
        assert_eq!(FullEvery::Samples(1).lean_run(30_000_000, None, || many), 0);
        assert_eq!(FullEvery::Samples(4).lean_run(0, None, || 0), 3);
    }
}
