//! The network namespaces as the screen sees them: the Namespaces view's rows,
//! which namespaces a finding is about, and the filter term that selects one
//! namespace (for its drill-down and the port quick filter).

use crate::diagnose::Finding;
use crate::model::{NetnsAggregate, NetnsId, NetnsInfo, Sample, StateCounts};
use crate::ui::app::Shown;

/// One namespace's row.
#[derive(Clone, Copy, Debug)]
pub struct NsRow<'a> {
    pub id: NetnsId,
    /// What the sample says of it; `None` for the own namespace of a sample
    /// that describes none.
    pub info: Option<&'a NetnsInfo>,
    /// Its (selected) sockets; `None` when it has none.
    pub agg: Option<&'a NetnsAggregate>,
}

impl NsRow<'_> {
    pub fn states(&self) -> StateCounts {
        self.agg.map(|a| a.states).unwrap_or_default()
    }

    /// Processes inside it (at the last discovery), else those holding its
    /// sockets.
    pub fn processes(&self) -> u64 {
        match (self.info, self.agg) {
            (Some(i), _) if i.processes > 0 => u64::from(i.processes),
            (_, Some(a)) => a.processes,
            _ => 0,
        }
    }
}

/// The rows of the Namespaces view, by id: without a filter every namespace
/// the sample describes (the own one alone when it describes none); with one,
/// the namespaces with a socket it selects.
pub fn rows(shown: &Shown) -> Vec<NsRow<'_>> {
    let sample = &shown.snap().sample;
    let aggs = &shown.aggregates().namespaces;
    let agg = |id: NetnsId| aggs.iter().find(|a| a.netns == id);
    let mut ids: Vec<NetnsId> = aggs.iter().map(|a| a.netns).collect();
    if shown.filtered.is_none() {
        ids.extend(sample.namespaces.iter().map(|n| n.id));
        if sample.namespaces.is_empty() {
            ids.push(NetnsId::OWN);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .map(|id| NsRow {
            id,
            info: sample.netns(id),
            agg: agg(id),
        })
        .collect()
}

/// Whether `f` is about namespace `id` (findings name their namespace).
pub fn about(f: &Finding, id: NetnsId) -> bool {
    f.netns == id
}

/// Whether a filter value can be written bare (values end at a space, a
/// parenthesis or `|`, and a comma makes a list).
fn writable(value: &str) -> bool {
    !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '(' | ')' | '|' | ','))
}

/// A filter term that selects namespace `id` of `sample` and no other: its
/// label when that is unique and writable, else its container's id, else its
/// inode; `None` when none of them would do.
pub fn term(sample: &Sample, id: NetnsId) -> Option<String> {
    let Some(n) = sample.netns(id) else {
        return (id == NetnsId::OWN && sample.namespaces.is_empty()).then(|| "ns:host".to_owned());
    };
    let unique = |same: &dyn Fn(&NetnsInfo) -> bool| {
        sample.namespaces.iter().filter(|o| same(o)).count() == 1
    };
    if writable(&n.label) && unique(&|o| o.label == n.label) {
        return Some(format!("ns:{}", n.label));
    }
    if let Some(c) = n
        .container
        .as_deref()
        .filter(|c| c.len() >= 4 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        && unique(&|o| o.container.as_deref() == Some(c))
    {
        return Some(format!("container:{c}"));
    }
    (n.inode != 0).then(|| format!("netns:{}", n.inode))
}

/// The quick filter on port `port` of namespace `netns`: `lport:N`, with the
/// namespace's term before it when the sample spans more than one.
pub fn port_filter(sample: &Sample, netns: NetnsId, port: u16) -> String {
    match term(sample, netns).filter(|_| sample.multi_netns()) {
        Some(t) => format!("{t} lport:{port}"),
        None => format!("lport:{port}"),
    }
}

/// The namespace's label for a cell, escaped.
pub fn label(sample: &Sample, id: NetnsId) -> String {
    super::fmt::printable(&sample.netns_label(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NetnsKind;

    fn sample(namespaces: Vec<NetnsInfo>) -> Sample {
        Sample {
            namespaces,
            ..Sample::of_sockets(std::time::SystemTime::UNIX_EPOCH, Vec::new())
        }
    }

    fn ns(id: u32, inode: u64, label: &str) -> NetnsInfo {
        NetnsInfo {
            id: NetnsId(id),
            inode,
            label: label.to_owned(),
            kind: NetnsKind::Named,
            sampled: true,
            ..NetnsInfo::default()
        }
    }

    #[test]
    fn the_term_of_a_namespace_selects_it_alone() {
        let mut docker = ns(2, 77, "docker 3f2a9c1e04b7");
        docker.container = Some("3f2a9c1e04b7".into());
        let s = sample(vec![
            ns(0, 1, "host"),
            ns(1, 5, "blue"),
            docker,
            ns(3, 9, "blue"),
            ns(4, 0, "a b"),
        ]);
        assert_eq!(term(&s, NetnsId(0)).as_deref(), Some("ns:host"));
        assert_eq!(
            term(&s, NetnsId(2)).as_deref(),
            Some("container:3f2a9c1e04b7")
        );
        assert_eq!(
            term(&s, NetnsId(1)).as_deref(),
            Some("netns:5"),
            "two are blue"
        );
        assert_eq!(term(&s, NetnsId(4)), None);
        assert_eq!(term(&s, NetnsId(9)), None);
        assert_eq!(port_filter(&s, NetnsId(0), 80), "ns:host lport:80");
        let one = sample(Vec::new());
        assert_eq!(term(&one, NetnsId::OWN).as_deref(), Some("ns:host"));
        assert_eq!(port_filter(&one, NetnsId::OWN, 80), "lport:80");
        for id in [0, 1, 2] {
            let text = term(&s, NetnsId(id)).expect("a term");
            let f = crate::filter::Filter::parse(&text).expect("it parses");
            let m = f.in_namespaces(&s.namespaces);
            let hits: Vec<u32> = (0..5)
                .filter(|&i| {
                    let mut sock = crate::model::SocketRecord::new(
                        crate::model::TcpState::Listen,
                        "0.0.0.0:1".parse().expect("address"),
                        "0.0.0.0:0".parse().expect("address"),
                    );
                    sock.netns = NetnsId(i);
                    m.matches(&sock, None)
                })
                .collect();
            assert_eq!(hits, [id], "{text}");
        }
    }
}
