//! Migrations are plain SQL files, one set per dialect, applied in order at start-up and
//! recorded in `kith_migrations`.

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(crate) const SQLITE: &[Migration] = &[
    Migration { version: 1, name: "directory", sql: include_str!("../migrations/sqlite/0001_directory.sql") },
    Migration { version: 2, name: "geography", sql: include_str!("../migrations/sqlite/0002_geography.sql") },
    Migration {
        version: 3,
        name: "problem_reports",
        sql: include_str!("../migrations/sqlite/0003_problem_reports.sql"),
    },
    Migration { version: 4, name: "accounts", sql: include_str!("../migrations/sqlite/0004_accounts.sql") },
    Migration { version: 5, name: "outbox", sql: include_str!("../migrations/sqlite/0005_outbox.sql") },
    Migration { version: 6, name: "referrals", sql: include_str!("../migrations/sqlite/0006_referrals.sql") },
    Migration { version: 7, name: "follow_ups", sql: include_str!("../migrations/sqlite/0007_follow_ups.sql") },
    Migration {
        version: 8,
        name: "lean_derived_indexes",
        sql: include_str!("../migrations/sqlite/0008_lean_derived_indexes.sql"),
    },
    Migration {
        version: 9,
        name: "service_locations",
        sql: include_str!("../migrations/sqlite/0009_service_locations.sql"),
    },
    Migration {
        version: 10,
        name: "signposts_share_nothing",
        sql: include_str!("../migrations/sqlite/0010_signposts_share_nothing.sql"),
    },
    Migration {
        version: 11,
        name: "session_factors",
        sql: include_str!("../migrations/sqlite/0011_session_factors.sql"),
    },
    Migration { version: 12, name: "shared_lists", sql: include_str!("../migrations/sqlite/0012_shared_lists.sql") },
    Migration { version: 13, name: "feeds", sql: include_str!("../migrations/sqlite/0013_feeds.sql") },
    Migration { version: 14, name: "provenance", sql: include_str!("../migrations/sqlite/0014_provenance.sql") },
    Migration { version: 15, name: "duplicates", sql: include_str!("../migrations/sqlite/0015_duplicates.sql") },
];

pub(crate) const POSTGRES: &[Migration] = &[
    Migration { version: 1, name: "directory", sql: include_str!("../migrations/postgres/0001_directory.sql") },
    Migration { version: 2, name: "geography", sql: include_str!("../migrations/postgres/0002_geography.sql") },
    Migration {
        version: 3,
        name: "problem_reports",
        sql: include_str!("../migrations/postgres/0003_problem_reports.sql"),
    },
    Migration { version: 4, name: "accounts", sql: include_str!("../migrations/postgres/0004_accounts.sql") },
    Migration { version: 5, name: "outbox", sql: include_str!("../migrations/postgres/0005_outbox.sql") },
    Migration { version: 6, name: "referrals", sql: include_str!("../migrations/postgres/0006_referrals.sql") },
    Migration { version: 7, name: "follow_ups", sql: include_str!("../migrations/postgres/0007_follow_ups.sql") },
    Migration {
        version: 8,
        name: "lean_derived_indexes",
        sql: include_str!("../migrations/postgres/0008_lean_derived_indexes.sql"),
    },
    Migration {
        version: 9,
        name: "service_locations",
        sql: include_str!("../migrations/postgres/0009_service_locations.sql"),
    },
    Migration {
        version: 10,
        name: "signposts_share_nothing",
        sql: include_str!("../migrations/postgres/0010_signposts_share_nothing.sql"),
    },
    Migration {
        version: 11,
        name: "session_factors",
        sql: include_str!("../migrations/postgres/0011_session_factors.sql"),
    },
    Migration { version: 12, name: "shared_lists", sql: include_str!("../migrations/postgres/0012_shared_lists.sql") },
    Migration { version: 13, name: "feeds", sql: include_str!("../migrations/postgres/0013_feeds.sql") },
    Migration { version: 14, name: "provenance", sql: include_str!("../migrations/postgres/0014_provenance.sql") },
    Migration { version: 15, name: "duplicates", sql: include_str!("../migrations/postgres/0015_duplicates.sql") },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_have_the_same_migrations_in_order() {
        let versions = |m: &[Migration]| m.iter().map(|m| (m.version, m.name)).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE), versions(POSTGRES));
        assert!(SQLITE.windows(2).all(|w| w[0].version < w[1].version));
    }
}
