//! Each rule's contract, written beside its code: when it fires, the evidence
//! it needs, its healthy lookalikes, what clears it, and where it cannot work.
//! The rules' document (docs/rules.md) is generated from these
//! ([`rules_document`]) and a test keeps the two equal.

use super::{Thresholds, all_rules};

/// What a rule promises, in words (the numbers come from its [`super::RuleDoc`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleContract {
    /// When it fires, and what the kernel's inputs mean for it.
    pub fires: &'static str,
    /// The inputs it reads: socket fields, counters, sysctls.
    pub evidence: &'static [&'static str],
    /// Healthy situations that look like the trouble, and why they raise nothing.
    pub lookalikes: &'static str,
    /// What clears it.
    pub clears: &'static str,
    /// Where it cannot work, or works with less.
    pub cannot: &'static str,
}

impl RuleContract {
    /// The contract of a rule that has not written its own.
    pub const UNWRITTEN: RuleContract = RuleContract {
        fires: "",
        evidence: &[],
        lookalikes: "",
        clears: "",
        cannot: "",
    };
}

/// What every rule shares about clearing: hysteresis.
pub(super) const CLEARS_AFTER: &str =
    "its condition false in `clear_after` samples in a row (hysteresis)";

/// The rules' document, Markdown, with the numbers of `cfg`.
pub fn rules_document(cfg: &Thresholds) -> String {
    let mut out = String::from(
        "# Diagnosis rules\n\n\
         Generated from each rule's contract in `src/diagnose/` (a test keeps this file \
         equal to it: regenerate with `SOCKSCOPE_REGENERATE=1 cargo test --lib rules_document`). \
         Numbers are the default thresholds (`assets/thresholds.toml`). Every rule runs per \
         network namespace, with that namespace's sockets, counters and sysctls; host-wide \
         sysctls (`tcp_mem`, `tcp_max_orphans`) are the host's. A condition is raised once it \
         held in `raise_after` samples in a row (and over the rule's hold, where it has one).\n",
    );
    for rule in all_rules() {
        let doc = rule.doc(cfg);
        let c = rule.contract();
        let hold = rule.hold(cfg);
        let linger = rule.linger(cfg);
        out.push_str(&format!("\n## `{}`\n\n", rule.id()));
        out.push_str(&format!("- **Subject:** {}\n", doc.subject));
        out.push_str(&format!("- **Fires:** {}\n", doc.fires));
        out.push_str(&format!("- **Critical:** {}\n", doc.critical));
        if !hold.is_zero() {
            out.push_str(&format!(
                "- **Hold:** its condition must hold in every sample for {} s before it is raised\n",
                hold.as_secs()
            ));
        }
        out.push_str(&format!("- **Meaning:** {}\n", c.fires));
        out.push_str(&format!(
            "- **Evidence it needs:** {}\n",
            c.evidence
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        out.push_str(&format!("- **Healthy lookalikes:** {}\n", c.lookalikes));
        let mut clears = c.clears.to_string();
        if !linger.is_zero() {
            clears.push_str(&format!(
                "; and not before {} s after its condition last held",
                linger.as_secs()
            ));
        }
        out.push_str(&format!("- **Clears:** {clears}\n"));
        out.push_str(&format!("- **Cannot work:** {}\n", c.cannot));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_written_its_contract() {
        for rule in all_rules() {
            let c = rule.contract();
            assert!(
                !c.fires.is_empty()
                    && !c.evidence.is_empty()
                    && !c.lookalikes.is_empty()
                    && !c.clears.is_empty()
                    && !c.cannot.is_empty(),
                "{} has no full contract: give it a `const CONTRACT: RuleContract` and return it \
                 from `Rule::contract`",
                rule.id()
            );
        }
    }

    #[test]
    fn rules_document_is_the_contracts_own() {
        let want = rules_document(&Thresholds::default());
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md");
        if std::env::var_os("SOCKSCOPE_REGENERATE").is_some() {
            std::fs::write(path, &want).expect("write docs/rules.md");
            return;
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/rules.md is not the rules' contracts; regenerate it with \
             `SOCKSCOPE_REGENERATE=1 cargo test --lib rules_document` and commit it"
        );
    }
}
