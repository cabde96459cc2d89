//! The TCP state machine's states, named as the kernel names them.

use std::fmt;

use serde::{Serialize, Serializer, ser::SerializeMap};
use strum::EnumProperty;

/// A TCP state, numbered as in the kernel's `include/net/tcp_states.h`. The
/// declaration is the one list of states: its order (the kernel's) is
/// [`TcpState::ALL`]'s, and each variant carries its kernel name and `ss`'s.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::EnumCount,
    strum::EnumProperty,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[repr(u8)]
pub enum TcpState {
    #[strum(serialize = "ESTABLISHED", props(ss = "ESTAB"))]
    Established = 1,
    #[strum(serialize = "SYN_SENT", props(ss = "SYN-SENT"))]
    SynSent = 2,
    #[strum(serialize = "SYN_RECV", props(ss = "SYN-RECV"))]
    SynRecv = 3,
    #[strum(serialize = "FIN_WAIT1", props(ss = "FIN-WAIT-1"))]
    FinWait1 = 4,
    #[strum(serialize = "FIN_WAIT2", props(ss = "FIN-WAIT-2"))]
    FinWait2 = 5,
    #[strum(serialize = "TIME_WAIT", props(ss = "TIME-WAIT"))]
    TimeWait = 6,
    #[strum(serialize = "CLOSE", props(ss = "UNCONN"))]
    Close = 7,
    #[strum(serialize = "CLOSE_WAIT", props(ss = "CLOSE-WAIT"))]
    CloseWait = 8,
    #[strum(serialize = "LAST_ACK", props(ss = "LAST-ACK"))]
    LastAck = 9,
    #[strum(serialize = "LISTEN", props(ss = "LISTEN"))]
    Listen = 10,
    #[strum(serialize = "CLOSING", props(ss = "CLOSING"))]
    Closing = 11,
}

/// How many states there are (the length of per-state arrays).
pub const STATES: usize = <TcpState as strum::EnumCount>::COUNT;

impl TcpState {
    /// Every state, in kernel order (the declaration's).
    pub const ALL: [TcpState; STATES] =
        match <TcpState as strum::VariantArray>::VARIANTS.first_chunk() {
            Some(all) => *all,
            None => panic!("TcpState::ALL is every variant"),
        };

    /// The states in the order of a connection's life, listeners first: how the
    /// screen lists and sorts them.
    pub const LIFE_ORDER: [TcpState; STATES] = [
        TcpState::Listen,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::Established,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::Closing,
        TcpState::TimeWait,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Close,
    ];

    /// The state for a kernel state number (`1..=11`); `None` for anything else.
    pub fn from_kernel(n: u8) -> Option<TcpState> {
        Self::ALL.get(usize::from(n).checked_sub(1)?).copied()
    }

    /// The kernel's number for this state.
    pub fn kernel_number(self) -> u8 {
        self as u8
    }

    /// Position in [`TcpState::ALL`], for per-state arrays.
    pub const fn index(self) -> usize {
        self as usize - 1
    }

    /// Position in [`TcpState::LIFE_ORDER`], to sort by.
    pub fn life_rank(self) -> u8 {
        const RANK: [u8; STATES] = {
            let mut rank = [0; STATES];
            let mut i = 0;
            while i < STATES {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "there are 11 states (a const context: no try_from)"
                )]
                let r = i as u8;
                rank[TcpState::LIFE_ORDER[i].index()] = r;
                i += 1;
            }
            rank
        };
        RANK[self.index()]
    }

    /// The kernel's name: `ESTABLISHED`, `SYN_SENT`, ... (as in the JSON export).
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// `ss`'s short name, for the aligned table: `ESTAB`, `SYN-SENT`, ...
    pub fn ss_name(self) -> &'static str {
        // Every variant carries one: a test checks it.
        self.get_str("ss").unwrap_or_default()
    }

    /// Parses a state name as a user types it: case, `-` and `_` do not matter, and
    /// the common spellings are accepted (`close_wait`, `CLOSE-WAIT`, `closewait`,
    /// `fin_wait_1`, `estab`, `syn_received`, `time-wait`, `listening`).
    pub fn parse(text: &str) -> Option<TcpState> {
        let norm: String = text
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Some(match norm.as_str() {
            "established" | "estab" => TcpState::Established,
            "synsent" => TcpState::SynSent,
            "synrecv" | "synreceived" => TcpState::SynRecv,
            "finwait1" => TcpState::FinWait1,
            "finwait2" => TcpState::FinWait2,
            "timewait" => TcpState::TimeWait,
            "close" | "closed" | "unconn" => TcpState::Close,
            "closewait" => TcpState::CloseWait,
            "lastack" => TcpState::LastAck,
            "listen" | "listening" => TcpState::Listen,
            "closing" => TcpState::Closing,
            _ => return None,
        })
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for TcpState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A count per TCP state. Serialises as a map from the kernel's state name to the
/// count, every state present, in kernel order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts(pub [u64; STATES]);

impl StateCounts {
    /// Counts the states of a sequence of sockets.
    pub fn tally<I: IntoIterator<Item = TcpState>>(states: I) -> StateCounts {
        let mut c = StateCounts::default();
        for s in states {
            c.0[s.index()] += 1;
        }
        c
    }

    pub fn get(&self, state: TcpState) -> u64 {
        self.0[state.index()]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl Serialize for StateCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(STATES))?;
        for st in TcpState::ALL {
            map.serialize_entry(st.name(), &self.get(st))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_numbers_round_trip() {
        for (i, st) in TcpState::ALL.iter().enumerate() {
            assert_eq!(st.index(), i);
            assert_eq!(TcpState::from_kernel(st.kernel_number()), Some(*st));
            assert_eq!(TcpState::parse(st.name()), Some(*st));
            assert_eq!(TcpState::parse(&st.name().to_lowercase()), Some(*st));
        }
        assert_eq!(TcpState::from_kernel(0), None);
        assert_eq!(TcpState::from_kernel(12), None);
        assert_eq!(TcpState::ALL.len(), 11);
        assert_eq!(TcpState::CloseWait.name(), "CLOSE_WAIT");
        assert_eq!(TcpState::FinWait1.name(), "FIN_WAIT1");
        let ss: Vec<&str> = TcpState::ALL.iter().map(|s| s.ss_name()).collect();
        assert_eq!(
            ss,
            [
                "ESTAB",
                "SYN-SENT",
                "SYN-RECV",
                "FIN-WAIT-1",
                "FIN-WAIT-2",
                "TIME-WAIT",
                "UNCONN",
                "CLOSE-WAIT",
                "LAST-ACK",
                "LISTEN",
                "CLOSING",
            ]
        );
    }

    #[test]
    fn life_order_is_every_state_once() {
        let mut seen = TcpState::LIFE_ORDER.to_vec();
        seen.sort_unstable();
        assert_eq!(seen, TcpState::ALL.to_vec());
        for (i, st) in TcpState::LIFE_ORDER.iter().enumerate() {
            assert_eq!(usize::from(st.life_rank()), i, "{st:?}");
        }
        assert!(TcpState::Listen.life_rank() < TcpState::Established.life_rank());
        assert!(TcpState::TimeWait.life_rank() < TcpState::Close.life_rank());
    }

    #[test]
    fn parses_user_spellings() {
        assert_eq!(TcpState::parse("close-wait"), Some(TcpState::CloseWait));
        assert_eq!(TcpState::parse("fin_wait_2"), Some(TcpState::FinWait2));
        assert_eq!(TcpState::parse("ESTAB"), Some(TcpState::Established));
        assert_eq!(TcpState::parse("syn_received"), Some(TcpState::SynRecv));
        assert_eq!(TcpState::parse("closewai"), None);
        assert_eq!(TcpState::parse(""), None);
    }

    #[test]
    fn counts_serialise_every_state_in_order() {
        let c = StateCounts::tally([TcpState::Listen, TcpState::Listen, TcpState::TimeWait]);
        let json = serde_json::to_string(&c).expect("serialise");
        assert!(
            json.starts_with(r#"{"ESTABLISHED":0,"SYN_SENT":0"#),
            "{json}"
        );
        assert!(json.contains(r#""TIME_WAIT":1"#));
        assert!(json.contains(r#""LISTEN":2"#));
        assert_eq!(c.total(), 3);
    }
}
