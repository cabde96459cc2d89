//! The TCP state machine's states, named as the kernel names them.

use std::fmt;

use serde::{Serialize, Serializer, ser::SerializeMap};

/// A TCP state, numbered as in the kernel's `include/net/tcp_states.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait1 = 4,
    FinWait2 = 5,
    TimeWait = 6,
    Close = 7,
    CloseWait = 8,
    LastAck = 9,
    Listen = 10,
    Closing = 11,
}

impl TcpState {
    /// Every state, in kernel order.
    pub const ALL: [TcpState; 11] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
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
    pub fn index(self) -> usize {
        usize::from(self as u8) - 1
    }

    /// The kernel's name: `ESTABLISHED`, `SYN_SENT`, ... (as in the JSON export).
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
    }

    /// `ss`'s short name, for the aligned table: `ESTAB`, `SYN-SENT`, ...
    pub fn ss_name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTAB",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynRecv => "SYN-RECV",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Close => "UNCONN",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::LastAck => "LAST-ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
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
pub struct StateCounts(pub [u64; 11]);

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
        let mut map = s.serialize_map(Some(11))?;
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
