//! Subscription plans. The operator assigns them; the API is open from Standard up,
//! as on chatbase.co.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Plan {
    Free,
    Hobby,
    Standard,
    Pro,
    Enterprise,
}

impl Plan {
    pub const ALL: [Plan; 5] = [
        Plan::Free,
        Plan::Hobby,
        Plan::Standard,
        Plan::Pro,
        Plan::Enterprise,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Hobby => "hobby",
            Plan::Standard => "standard",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }

    /// Whether keys of a workspace on this plan may call the API at all.
    pub fn allows_api(self) -> bool {
        self >= Plan::Standard
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPlan(pub String);

impl fmt::Display for UnknownPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown plan `{}` (expected one of free, hobby, standard, pro, enterprise)",
            self.0
        )
    }
}

impl std::error::Error for UnknownPlan {}

impl FromStr for Plan {
    type Err = UnknownPlan;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Plan::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownPlan(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standard_and_above_may_use_the_api() {
        let open: Vec<_> = Plan::ALL.into_iter().filter(|p| p.allows_api()).collect();
        assert_eq!(open, vec![Plan::Standard, Plan::Pro, Plan::Enterprise]);
    }

    #[test]
    fn plans_round_trip_through_their_names() {
        for p in Plan::ALL {
            assert_eq!(p.as_str().parse::<Plan>(), Ok(p));
        }
        assert!("gold".parse::<Plan>().is_err());
    }
}
