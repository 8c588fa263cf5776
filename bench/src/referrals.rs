//! `kith-bench referrals`: a year's caseload of N signposts and referrals (100,000 by
//! default) with their follow-ups, written into a fresh SQLite and a fresh PostgreSQL
//! database, and the Links report computed over it.
//!
//! The goal (issue 6) is the Links report in 500 ms or less at 100,000 referrals, on both
//! engines. The report is timed through the referrals service, as the web page calls it:
//! the counts in SQL, the roll-up by service and practice, the service names, and the
//! audit entry. Creation is timed too, in transactions of 5,000 with every referral's
//! details sealed (AES-256-GCM), its first timeline step and its follow-up; and a few
//! hundred referrals are made one by one through the service, as a receptionist would,
//! for the latency of one.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Duration, Utc};
use kith_app::accounts::{Actor, NewUser};
use kith_app::referrals::{NewReferral, Referrals};
use kith_domain::account::{Area, AreaKind, Grant, OrgKind, Organisation, Role, Scope};
use kith_domain::referral::{
    Consent, ContactMethod, EndReason, FollowUp, Outcome, PatientRecord, ReferralDetails, ReferralEvent, ReferralKind,
    ReferralRecord, TaskStatus,
};
use kith_domain::{Clock, FixedClock};
use kith_store::accounts::seal_context;
use kith_store::referrals::NewReferralRows;
use kith_store::{Alongside, Store};
use std::sync::Arc;
use std::time::{Duration as Elapsed, Instant};
use uuid::Uuid;

const USAGE: &str = "usage: kith-bench referrals [--referrals N] [--runs R] [--engine E] [--postgres URL]

  --referrals N   signposts and referrals over the year (default 100000)
  --runs R        timed runs of the Links report; the median is reported (default 7)
  --engine E      sqlite, postgres or both (default both)
  --postgres URL  PostgreSQL server to create the benchmark database on
                  (default $KITH_TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres)";

const PRACTICES: usize = 10;
const GROUPS: usize = 40;
const PATIENTS_PER_PRACTICE: usize = 1_000;
const CHUNK: usize = 5_000;
const ONE_BY_ONE: usize = 300;
const GOAL: Elapsed = Elapsed::from_millis(500);

/// SplitMix64, as the demo uses.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn median(mut v: Vec<Elapsed>) -> Elapsed {
    v.sort();
    v[v.len() / 2]
}

struct Caseload {
    referrals: Referrals,
    accounts: Arc<kith_app::accounts::Accounts>,
    commissioner: kith_domain::account::UserRecord,
    practices: Vec<(Uuid, Uuid)>,
    patients: Vec<Vec<Uuid>>,
    /// (service, group) for services that take referrals.
    referable: Vec<Uuid>,
    services: Vec<Uuid>,
}

/// The directory, the organisations and people, and the patients: not timed.
async fn set_up(store: Arc<dyn Store>, now: DateTime<Utc>) -> Result<Caseload> {
    let batch = kith_demo::generate(&kith_demo::DemoOptions { seed: 6, services: 600, now });
    let services: Vec<Uuid> = batch.services.iter().map(|s| s.id).collect();
    let mut owners: Vec<(Uuid, Uuid)> = Vec::new();
    for s in &batch.services {
        if let Some(org) = s.organization_id
            && owners.len() < GROUPS
            && !owners.iter().any(|(_, o)| *o == org)
        {
            owners.push((s.id, org));
        }
    }
    store.write_batch(batch).await?;
    let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(now));
    let search = Arc::new(kith_search::SearchIndex::in_memory()?);
    let state = kith_app::App::new(store.clone(), search).with_clock(clock);
    let area = Uuid::new_v4();
    store.put_area(Area { id: area, kind: AreaKind::Pcn, name: "Benchmark PCN".into() }).await?;
    let org = |kind, name: String, directory_id, ods_code| Organisation {
        id: Uuid::new_v4(),
        kind,
        name,
        ods_code,
        directory_id,
        areas: vec![area],
    };
    let user = |email: String, role, scope| NewUser {
        email,
        name: "Benchmark person".into(),
        password: None,
        grants: vec![Grant { role, scope }],
    };
    let cli = Actor::cli();
    for (i, (_, directory_id)) in owners.iter().enumerate() {
        let group = org(OrgKind::Vcs, format!("Group {i}"), Some(*directory_id), None);
        store.put_organisation(group.clone()).await?;
        let member = user(format!("group{i}@bench.invalid"), Role::VcsMember, Scope::Organisation(group.id));
        state.accounts.create_user(member, &cli).await?;
    }
    let keyring = state.accounts.keyring();
    let mut practices = Vec::new();
    let mut patients = Vec::new();
    for p in 0..PRACTICES {
        let practice = org(OrgKind::Practice, format!("Practice {p}"), None, Some(format!("B{p:05}")));
        store.put_organisation(practice.clone()).await?;
        let worker = user(format!("lw{p}@bench.invalid"), Role::LinkWorker, Scope::Organisation(practice.id));
        let worker = state.accounts.create_user(worker, &cli).await?;
        practices.push((practice.id, worker.id));
        let mut ids = Vec::with_capacity(PATIENTS_PER_PRACTICE);
        for n in 0..PATIENTS_PER_PRACTICE {
            let id = Uuid::new_v4();
            let details = format!("{{\"name\":\"Bench Synthetic {p}-{n}\",\"birth_date\":\"1950-01-01\"}}");
            store
                .put_patient(
                    PatientRecord {
                        id,
                        organisation_id: practice.id,
                        nhs_number_index: None,
                        local_id_index: Some(keyring.blind_index("local_id", &format!("{}:{n}", practice.id))),
                        details: kith_domain::account::Sealed(
                            keyring.seal(&details, &seal_context("patients.details", id)),
                        ),
                        contact_method: ContactMethod::Text,
                        language: None,
                        deprivation_decile: Some(1 + (n % 10) as u8),
                        neighbourhood: None,
                        created_at: now,
                    },
                    Alongside::none(),
                )
                .await?;
            ids.push(id);
        }
        patients.push(ids);
    }
    let commissioner = state
        .accounts
        .create_user(user("commissioner@bench.invalid".into(), Role::Commissioner, Scope::Area(area)), &cli)
        .await?;
    Ok(Caseload {
        referrals: state.referrals(),
        accounts: state.accounts.clone(),
        commissioner,
        practices,
        patients,
        referable: owners.iter().map(|(s, _)| *s).collect(),
        services,
    })
}

/// One of the year's referrals, sealed, with its first step and follow-up.
fn referral(
    c: &Caseload,
    rng: &mut Rng,
    sealer: &sealing::Sealer<'_>,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> NewReferralRows {
    let p = rng.below(PRACTICES);
    let (practice, worker) = c.practices[p];
    let patient = c.patients[p][rng.below(PATIENTS_PER_PRACTICE)];
    let refer = rng.below(10) < 7;
    let id = Uuid::new_v4();
    let service =
        if refer { c.referable[rng.below(c.referable.len())] } else { c.services[rng.below(c.services.len())] };
    let details = ReferralDetails {
        reason: "Feeling isolated".into(),
        what_matters: "Meeting people".into(),
        consent: refer.then(|| Consent {
            what: "Name, mobile and reason".into(),
            with_whom: "the group".into(),
            given_at: at,
            recorded_by: worker,
        }),
        safeguarding_note: None,
    };
    let due = at + Duration::days(28);
    let outcome = (refer && due < now && rng.below(10) < 8).then(|| match rng.below(10) {
        0..=2 => Outcome::StillAttending,
        3 | 4 => Outcome::Started,
        5 => Outcome::Stopped(EndReason::Cost),
        6 | 7 => Outcome::NeverAttended(EndReason::Transport),
        _ => Outcome::CouldNotContact,
    });
    let status = match (refer, outcome.and_then(Outcome::status)) {
        (false, _) => TaskStatus::Completed,
        (true, Some(s)) => s,
        (true, None) => TaskStatus::Accepted,
    };
    let attendance = (refer && rng.below(10) < 3).then_some(Outcome::Started);
    let record = ReferralRecord {
        id,
        kind: if refer { ReferralKind::Referral } else { ReferralKind::Signpost },
        patient_id: patient,
        service_id: service,
        group_id: None,
        referrer_user: worker,
        referrer_org: practice,
        status,
        details: sealer.seal(&details, id),
        safeguarding: false,
        created_at: at,
        follow_up_due: refer.then_some(due),
    };
    let follow_up = refer.then(|| FollowUp {
        referral_id: id,
        due_at: due,
        assignee: worker,
        reminded_at: (due < now).then_some(due),
        escalated_at: None,
        outcome,
        outcome_at: outcome.map(|_| due + Duration::days(2)),
        outcome_by: outcome.map(|_| worker),
        attendance,
        attendance_at: attendance.map(|_| at + Duration::days(10)),
    });
    let first =
        ReferralEvent { seq: 0, referral_id: id, at, actor: Some(worker), status, note: "Referral sent".into() };
    NewReferralRows { referral: record, first, follow_up, baseline: None }
}

/// Seals referral details as the service does.
mod sealing {
    use kith_domain::account::Sealed;
    use kith_domain::referral::ReferralDetails;
    use kith_store::accounts::seal_context;
    use uuid::Uuid;

    pub struct Sealer<'a>(pub &'a kith_app::accounts::Accounts);

    impl Sealer<'_> {
        pub fn seal(&self, details: &ReferralDetails, id: Uuid) -> Sealed {
            let json = serde_json::to_string(details).unwrap_or_default();
            Sealed(self.0.keyring().seal(&json, &seal_context("referrals.details", id)))
        }
    }
}

struct EngineResult {
    engine: &'static str,
    create: Elapsed,
    one_by_one: Elapsed,
    reports: Vec<Elapsed>,
    counts: kith_domain::referral::LinksCount,
}

async fn measure(engine: &'static str, store: Arc<dyn Store>, n: usize, runs: usize) -> Result<EngineResult> {
    let now = DateTime::from_timestamp(1_780_000_000, 0).context("a valid timestamp")?;
    let started = Instant::now();
    let c = set_up(store.clone(), now).await?;
    eprintln!("{engine}: set up in {:.1?}", started.elapsed());
    let sealer = sealing::Sealer(&c.accounts);
    let mut rng = Rng(2026);
    let step = Duration::seconds(365 * 86_400 / n as i64);
    let start = now - Duration::days(365);
    let started = Instant::now();
    let mut made = 0;
    while made < n {
        let size = CHUNK.min(n - made);
        let rows: Vec<NewReferralRows> =
            (made..made + size).map(|i| referral(&c, &mut rng, &sealer, start + step * i as i32, now)).collect();
        store.create_referrals(rows, Alongside::none()).await?;
        made += size;
    }
    let create = started.elapsed();
    eprintln!("{engine}: {n} referrals with follow-ups written in {create:.2?}");

    // One by one through the service, as from the referral form.
    let user = store.user(c.practices[0].1).await?.context("the link worker")?;
    let actor = Actor::of(&user, None);
    let mut one = Vec::with_capacity(ONE_BY_ONE);
    for i in 0..ONE_BY_ONE {
        let new = NewReferral {
            kind: ReferralKind::Referral,
            patient_id: c.patients[0][i % PATIENTS_PER_PRACTICE],
            service_id: c.referable[i % c.referable.len()],
            reason: "Feeling isolated".into(),
            what_matters: "Meeting people".into(),
            consent: Some(("Name, mobile and reason".into(), "the group".into())),
            safeguarding_note: None,
            follow_up_signpost: false,
            baseline: Some(vec![5, 6, 4, 3]),
        };
        let t = Instant::now();
        c.referrals.refer(&user, &actor, new).await?;
        one.push(t.elapsed());
    }
    let one_by_one = median(one);

    let actor = Actor::of(&c.commissioner, None);
    let (from, before) = (now - Duration::days(400), now + Duration::days(1));
    let mut reports = Vec::with_capacity(runs);
    let mut counts = Default::default();
    // Let the writes above settle (the WAL checkpoint after them) before timing reads.
    tokio::time::sleep(Elapsed::from_secs(2)).await;
    for run in 0..=runs {
        let t = Instant::now();
        let report = c.referrals.links_report(&c.commissioner, &actor, from, before).await?;
        let took = t.elapsed();
        if run > 0 {
            reports.push(took); // the first run warms the caches and is not counted
        }
        counts = report.overall;
    }
    eprintln!("{engine}: Links report runs {reports:.1?}");
    Ok(EngineResult { engine, create, one_by_one, reports, counts })
}

pub async fn run(args: Vec<String>) -> Result<()> {
    let Some(flags) = crate::flags(args, USAGE)? else { return Ok(()) };
    let mut n = 100_000usize;
    let mut runs = 7usize;
    let mut engine = "both".to_owned();
    let mut postgres = std::env::var("KITH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    for (flag, value) in flags {
        match flag.as_str() {
            "--referrals" => n = value.parse().context("--referrals takes a number")?,
            "--runs" => runs = value.parse().context("--runs takes a number")?,
            "--engine" if ["sqlite", "postgres", "both"].contains(&value.as_str()) => engine = value,
            "--engine" => bail!("--engine must be sqlite, postgres or both"),
            "--postgres" => postgres = value,
            other => bail!("unknown flag {other}\n{USAGE}"),
        }
    }
    if n == 0 || runs == 0 {
        bail!("--referrals and --runs must be at least 1");
    }
    let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(DateTime::from_timestamp(1_780_000_000, 0).context("time")?));
    let mut results = Vec::new();
    let dir = tempfile::tempdir()?;
    if engine != "postgres" {
        let store: Arc<dyn Store> =
            Arc::new(kith_store::sqlite::SqliteStore::open(&dir.path().join("kith.db"), clock.clone()).await?);
        results.push(measure("SQLite (WAL)", store, n, runs).await?);
    }
    if engine != "sqlite" {
        let admin = kith_store::postgres::parse_url(&postgres)?;
        let (client, conn) = admin.connect(tokio_postgres::NoTls).await.context("connecting to PostgreSQL")?;
        tokio::spawn(conn);
        let name = format!("kith_bench_referrals_{}", std::process::id());
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await?;
        client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        let mut config = admin.clone();
        config.dbname(&name);
        let store: Arc<dyn Store> =
            Arc::new(kith_store::postgres::PostgresStore::connect_with(config, clock.clone()).await?);
        let result = measure("PostgreSQL", store, n, runs).await;
        client.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await?;
        results.push(result?);
    }

    println!("\nThe Links report over {n} signposts and referrals with follow-ups, median of {runs} runs:\n");
    println!(
        "| engine | report (median) | goal | vs goal | every run (ms) | create all | referrals/s | one through the service (median) |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---:|");
    for r in &results {
        let m = median(r.reports.clone());
        let every: Vec<String> = r.reports.iter().map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0)).collect();
        println!(
            "| {} | **{:.0} ms** | {} ms | {:.2}× | {} | {:.1} s | {:.0} | {:.1} ms |",
            r.engine,
            m.as_secs_f64() * 1000.0,
            GOAL.as_millis(),
            m.as_secs_f64() / GOAL.as_secs_f64(),
            every.join(", "),
            r.create.as_secs_f64(),
            n as f64 / r.create.as_secs_f64(),
            r.one_by_one.as_secs_f64() * 1000.0
        );
    }
    if let Some(r) = results.first() {
        let c = &r.counts;
        println!(
            "\nOverall: {} signposts, {} referrals, {} followed up, {} started, {} still attending at follow-up.",
            c.signposts, c.referrals, c.followed_up, c.started, c.still_attending
        );
    }
    Ok(())
}
