//! `--netns all|host|LABEL[,LABEL]`: which network namespaces to sample.

use super::{Label, Namespace};

/// Which namespaces a collector samples.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NetnsChoice {
    /// Only the one sockscope runs in (no entering, no discovery).
    Own,
    /// Every namespace of the host; without the privilege to enter them,
    /// the own one only (said once).
    #[default]
    All,
    /// The namespaces that one of these names (see [`NetnsChoice::parse`]).
    Only(Vec<String>),
}

/// Names given to `--netns` at the most, and bytes per name.
const MAX_NAMES: usize = 64;
const MAX_NAME: usize = 255;

impl NetnsChoice {
    /// `all`, `own`, or a comma-separated list of names, each `host` (the
    /// host's namespace), an `ip netns` name or label, a container id (4 to 64
    /// hex digits: a prefix of the container's), a hostname seen inside, or
    /// the inode (`4026532290` or `netns:[4026532290]`).
    pub fn parse(text: &str) -> Result<NetnsChoice, String> {
        match text.trim() {
            "" => return Err("no namespace named (all, host, own or LABEL[,LABEL])".into()),
            "all" => return Ok(NetnsChoice::All),
            "own" => return Ok(NetnsChoice::Own),
            _ => {}
        }
        let mut names = Vec::new();
        for name in text.split(',').map(str::trim) {
            if name.is_empty() {
                return Err(format!("an empty name in {text:?}"));
            }
            if name == "all" || name == "own" {
                return Err(format!("{name:?} stands alone, not in a list"));
            }
            if name.len() > MAX_NAME || name.chars().any(char::is_control) {
                return Err(format!(
                    "not a namespace name: {:?}",
                    crate::escape::printable(name)
                ));
            }
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        if names.len() > MAX_NAMES {
            return Err(format!("at most {MAX_NAMES} namespaces can be named"));
        }
        Ok(NetnsChoice::Only(names))
    }

    /// Whether namespaces other than the own one are looked for.
    pub fn discovers(&self) -> bool {
        *self != NetnsChoice::Own
    }

    /// The names of `Only` that select `ns` (labelled `label`).
    pub fn selects(&self, ns: &Namespace, label: &Label) -> bool {
        match self {
            NetnsChoice::Own => false,
            NetnsChoice::All => true,
            NetnsChoice::Only(names) => names.iter().any(|n| names_it(n, ns, label)),
        }
    }
}

/// Whether `name` (one of `--netns`'s) names `ns`.
pub fn names_it(name: &str, ns: &Namespace, label: &Label) -> bool {
    if name == "host" {
        return ns.host;
    }
    let inode = name
        .strip_prefix("netns:[")
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    if inode.parse::<u64>().is_ok_and(|i| i == ns.inode) {
        return true;
    }
    if label.text == name
        || ns.names.iter().any(|n| n == name)
        || label.hostname.as_deref() == Some(name)
    {
        return true;
    }
    let hex = name.len() >= 4 && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
    hex && label.container.as_ref().is_some_and(|c| {
        let name = name.to_ascii_lowercase();
        c.id.starts_with(&name) || name.starts_with(&c.id)
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Container, Origin, Runtime};
    use super::*;
    use crate::model::NetnsId;

    fn ns(inode: u64, host: bool, names: &[&str]) -> Namespace {
        Namespace {
            id: NetnsId(1),
            inode,
            host,
            pids: vec![],
            processes: 0,
            names: names.iter().map(|n| (*n).to_owned()).collect(),
        }
    }

    fn label(text: &str, origin: Origin) -> Label {
        let container = match &origin {
            Origin::Container(c) => Some(c.clone()),
            _ => None,
        };
        Label {
            text: text.into(),
            origin,
            hostname: Some("shop-7d9f".into()),
            comm: None,
            container,
        }
    }

    #[test]
    fn parses_the_words_and_lists() {
        assert_eq!(NetnsChoice::parse("all"), Ok(NetnsChoice::All));
        assert_eq!(NetnsChoice::parse("own"), Ok(NetnsChoice::Own));
        assert_eq!(
            NetnsChoice::parse("host, blue,blue"),
            Ok(NetnsChoice::Only(vec!["host".into(), "blue".into()]))
        );
        for bad in ["", "a,,b", "all,blue", "a\u{1b}[2J"] {
            assert!(NetnsChoice::parse(bad).is_err(), "{bad:?}");
        }
        let many = vec!["x"; 65]
            .iter()
            .enumerate()
            .map(|(i, _)| i.to_string())
            .collect::<Vec<_>>();
        assert!(NetnsChoice::parse(&many.join(",")).is_err());
    }

    #[test]
    fn a_name_selects_by_host_name_inode_container_or_hostname() {
        let host = ns(4_026_531_840, true, &[]);
        let named = ns(4_026_532_290, false, &["blue"]);
        let boxed = ns(4_026_532_400, false, &[]);
        let host_l = label("host", Origin::Host);
        let named_l = label("blue", Origin::IpNetns("blue".into()));
        let box_l = label(
            "3f2a9c1e04b7",
            Origin::Container(Container {
                runtime: Some(Runtime::Docker),
                id: "3f2a9c1e04b7".into(),
                pod: None,
            }),
        );
        let pick = |c: &str| {
            let c = NetnsChoice::parse(c).expect("choice");
            [
                c.selects(&host, &host_l),
                c.selects(&named, &named_l),
                c.selects(&boxed, &box_l),
            ]
        };
        assert_eq!(pick("host"), [true, false, false]);
        assert_eq!(pick("blue"), [false, true, false]);
        assert_eq!(pick("netns:[4026532290]"), [false, true, false]);
        assert_eq!(pick("4026532290"), [false, true, false]);
        assert_eq!(pick("3F2A"), [false, false, true]);
        assert_eq!(pick("abc"), [false, false, false], "too short for an id");
        assert_eq!(pick("host,3f2a9c1e04b7"), [true, false, true]);
        assert_eq!(pick("all"), [true, true, true]);
        assert_eq!(pick("own"), [false, false, false]);
    }
}
