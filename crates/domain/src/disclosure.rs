//! Small numbers in published figures. A count from 1 to 4 of the people referred to a
//! service, in a period someone can choose, can point to a person; such counts are
//! withheld from anyone but the practice's own staff. So that a withheld count cannot be
//! worked out from a total and the other rows, a column with only one withheld count has
//! a second one withheld too (secondary suppression).

use crate::referral::LinksCount;
use serde::Serialize;

/// The smallest count shown; anything from 1 to one below it is withheld. Zero is shown:
/// it tells nothing about anyone.
pub const SMALLEST_SHOWN: u64 = 5;

/// A count as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shown {
    Count(u64),
    Withheld,
}

impl Shown {
    fn of(n: u64) -> Shown {
        if (1..SMALLEST_SHOWN).contains(&n) { Shown::Withheld } else { Shown::Count(n) }
    }

    pub fn count(self) -> Option<u64> {
        match self {
            Shown::Count(n) => Some(n),
            Shown::Withheld => None,
        }
    }
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shown::Count(n) => write!(f, "{n}"),
            Shown::Withheld => write!(f, "fewer than {SMALLEST_SHOWN}"),
        }
    }
}

/// The Links measure's counts as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ShownLinks {
    pub signposts: Shown,
    pub referrals: Shown,
    pub followed_up: Shown,
    pub started: Shown,
    pub still_attending: Shown,
}

impl ShownLinks {
    /// Every count as it is: for a practice's own staff.
    pub fn exact(c: &LinksCount) -> ShownLinks {
        ShownLinks {
            signposts: Shown::Count(c.signposts),
            referrals: Shown::Count(c.referrals),
            followed_up: Shown::Count(c.followed_up),
            started: Shown::Count(c.started),
            still_attending: Shown::Count(c.still_attending),
        }
    }

    fn primary(c: &LinksCount) -> ShownLinks {
        ShownLinks {
            signposts: Shown::of(c.signposts),
            referrals: Shown::of(c.referrals),
            followed_up: Shown::of(c.followed_up),
            started: Shown::of(c.started),
            still_attending: Shown::of(c.still_attending),
        }
    }

    /// Everyone signposted or referred, when both counts are shown.
    pub fn people(&self) -> Option<u64> {
        Some(self.signposts.count()? + self.referrals.count()?)
    }

    fn get(&self, n: usize) -> Shown {
        [self.signposts, self.referrals, self.followed_up, self.started, self.still_attending][n.min(4)]
    }

    fn column(&mut self, n: usize) -> &mut Shown {
        match n {
            0 => &mut self.signposts,
            1 => &mut self.referrals,
            2 => &mut self.followed_up,
            3 => &mut self.started,
            _ => &mut self.still_attending,
        }
    }
}

fn exact_column(c: &LinksCount, n: usize) -> u64 {
    match n {
        0 => c.signposts,
        1 => c.referrals,
        2 => c.followed_up,
        3 => c.started,
        _ => c.still_attending,
    }
}

/// A total and the rows that add up to it, with small counts withheld: first every count
/// from 1 to 4, then, in each column where the total is shown and exactly one row is
/// withheld, the smallest other non-zero row too.
pub fn withhold_small(total: &LinksCount, rows: &[LinksCount]) -> (ShownLinks, Vec<ShownLinks>) {
    let shown_total = ShownLinks::primary(total);
    let mut shown: Vec<ShownLinks> = rows.iter().map(ShownLinks::primary).collect();
    for column in 0..5 {
        if shown_total.get(column) == Shown::Withheld {
            continue;
        }
        let withheld = shown.iter().filter(|r| r.get(column) == Shown::Withheld).count();
        if withheld != 1 {
            continue;
        }
        let next = rows
            .iter()
            .enumerate()
            .filter(|(i, r)| exact_column(r, column) > 0 && shown[*i].get(column) != Shown::Withheld)
            .min_by_key(|(_, r)| exact_column(r, column))
            .map(|(i, _)| i);
        if let Some(i) = next {
            *shown[i].column(column) = Shown::Withheld;
        }
    }
    (shown_total, shown)
}

/// How the signposts and referrals to one service turned out, in a sentence, for those
/// who look after the listing or fund it (never the practice's own staff view). A count
/// from 1 to 4 is withheld, and so is a share worked from one, since "20%" of 5 is 1.
pub fn service_outcome(c: &LinksCount) -> String {
    let made = c.signposts + c.referrals;
    if made == 0 {
        return "No one has been signposted or referred here through Kith in the last year.".to_owned();
    }
    if Shown::of(made) == Shown::Withheld {
        return format!(
            "Fewer than {SMALLEST_SHOWN} people were signposted or referred here in the last year: too few to show how it turned out without pointing to someone."
        );
    }
    let share = |n: u64| match Shown::of(n) {
        Shown::Withheld => format!("fewer than {SMALLEST_SHOWN}"),
        Shown::Count(n) => format!("{}%", (n * 100 + made / 2) / made),
    };
    format!(
        "Of {made} people signposted or referred here, {} started and {} were still going at their follow-up.",
        share(c.started),
        share(c.still_attending)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(signposts: u64, referrals: u64, followed_up: u64, started: u64, still_attending: u64) -> LinksCount {
        LinksCount { signposts, referrals, followed_up, started, still_attending }
    }

    #[test]
    fn counts_from_one_to_four_are_withheld_and_zero_is_shown() {
        let (total, rows) = withhold_small(&links(30, 4, 0, 1, 5), &[]);
        assert_eq!(total.signposts, Shown::Count(30));
        assert_eq!(total.referrals, Shown::Withheld);
        assert_eq!(total.followed_up, Shown::Count(0));
        assert_eq!(total.started, Shown::Withheld);
        assert_eq!(total.still_attending, Shown::Count(5));
        assert!(rows.is_empty());
        assert_eq!(Shown::Withheld.to_string(), "fewer than 5");
    }

    #[test]
    fn a_lone_withheld_row_takes_the_next_smallest_with_it() {
        // Signposts: 20 = 2 + 7 + 11. Withholding only the 2 would let 20 - 7 - 11 give it away.
        let rows = [links(2, 10, 0, 0, 0), links(7, 10, 0, 0, 0), links(11, 10, 0, 0, 0)];
        let (total, shown) = withhold_small(&links(20, 30, 0, 0, 0), &rows);
        assert_eq!(total.signposts, Shown::Count(20));
        let signposts: Vec<Shown> = shown.iter().map(|r| r.signposts).collect();
        assert_eq!(signposts, [Shown::Withheld, Shown::Withheld, Shown::Count(11)]);
        // No small counts in the referrals column: nothing withheld there.
        assert!(shown.iter().all(|r| r.referrals == Shown::Count(10)));
        // Two withheld already: no third.
        let rows = [links(2, 0, 0, 0, 0), links(3, 0, 0, 0, 0), links(11, 0, 0, 0, 0)];
        let (_, shown) = withhold_small(&links(16, 0, 0, 0, 0), &rows);
        assert_eq!(shown[2].signposts, Shown::Count(11));
    }

    #[test]
    fn shares_need_both_counts() {
        let shown = ShownLinks::primary(&links(3, 10, 0, 0, 0));
        assert_eq!(shown.people(), None);
        assert_eq!(ShownLinks::exact(&links(3, 10, 0, 0, 0)).people(), Some(13));
    }

    #[test]
    fn a_services_outcome_withholds_small_counts_and_shares_worked_from_them() {
        assert!(service_outcome(&links(0, 0, 0, 0, 0)).starts_with("No one"));
        let few = service_outcome(&links(1, 2, 2, 1, 1));
        assert!(few.starts_with("Fewer than 5 people") && !few.contains('%'), "{few}");
        let some = service_outcome(&links(4, 6, 8, 7, 2));
        assert_eq!(
            some,
            "Of 10 people signposted or referred here, 70% started and fewer than 5 were still going at their follow-up."
        );
        let many = service_outcome(&links(10, 10, 15, 12, 9));
        assert_eq!(
            many,
            "Of 20 people signposted or referred here, 60% started and 45% were still going at their follow-up."
        );
    }
}
