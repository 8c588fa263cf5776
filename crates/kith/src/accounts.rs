//! `kith users`, `kith orgs` and `kith keys`: setting up who can sign in, and the keys
//! that encrypt personal fields.
#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line program talks on its streams.

use crate::cli::{Global, OrgsCommand, UsersCommand};
use anyhow::{Context, Result, bail};
use kith_app::accounts::{Accounts, Actor, NewUser};
use kith_crypto::Keyring;
use kith_domain::Clock;
use kith_domain::account::{Area, AreaKind, Grant, LinkPurpose, OrgKind, Organisation, Scope};
use kith_store::Store;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Keys may come from the environment instead of a file (a container platform's secret):
/// the key file's text, with lines separated by newlines or `;`.
pub const KEYS_VAR: &str = "KITH_KEYS";

fn keys_from_env() -> Option<Result<Keyring>> {
    let text = std::env::var(KEYS_VAR).ok().filter(|t| !t.trim().is_empty())?;
    Some(Keyring::parse(&text.replace(';', "\n")).with_context(|| format!("cannot use the keys in {KEYS_VAR}")))
}

fn key_path(global: &Global) -> PathBuf {
    global.key_file.clone().unwrap_or_else(|| global.data_dir.join("keys.txt"))
}

fn on_postgres(global: &Global) -> bool {
    global.database_url.as_deref().is_some_and(|u| u.trim_start().starts_with("postgres"))
}

/// The keyring for this installation. With SQLite a missing key file is created (once:
/// not when the database already holds encrypted fields). With PostgreSQL it must exist,
/// since every instance needs the same one.
pub async fn keyring(global: &Global, store: &dyn Store) -> Result<Keyring> {
    if let Some(keys) = keys_from_env() {
        return keys;
    }
    let path = key_path(global);
    if path.exists() {
        return Keyring::load(&path).with_context(|| format!("cannot use the key file {}", path.display()));
    }
    if on_postgres(global) {
        bail!(
            "there is no key file at {}; with PostgreSQL every instance must share one. Create it once with `kith keys new FILE`, \
             keep it safe, and set KITH_KEY_FILE to it on every instance",
            path.display()
        );
    }
    if !store.users().await?.is_empty() {
        bail!(
            "the key file {} is missing, but the database holds encrypted fields; restore the key file from your backup",
            path.display()
        );
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let keyring = Keyring::generate();
    keyring.save(&path).with_context(|| format!("cannot write the key file {}", path.display()))?;
    eprintln!("Created a key file for personal fields at {}. Back it up apart from the database.", path.display());
    Ok(keyring)
}

fn read_password(from_stdin: bool) -> Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            bail!("standard input held no password");
        }
        return Ok((password, false));
    }
    // Six groups of four from an alphabet without look-alikes: 120 random bits.
    let codes = kith_crypto::totp::recovery_codes();
    Ok((codes.iter().take(2).cloned().collect::<Vec<_>>().join("-"), true))
}

async fn accounts(global: &Global, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Result<Accounts> {
    let keyring = keyring(global, &*store).await?;
    Ok(Accounts::new(store, Arc::new(keyring), clock))
}

pub async fn users(
    global: &Global,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    command: UsersCommand,
) -> Result<ExitCode> {
    let accounts = accounts(global, store.clone(), clock).await?;
    match command {
        UsersCommand::Grant { email, role, org, area } => {
            let scope = scope(&*store, org, area).await?;
            let user = accounts
                .user_by_email(&email)
                .await?
                .with_context(|| format!("there is no user with the email {email}"))?;
            let grant = Grant { role: role.role(), scope };
            if !accounts.grant(&user, grant, &Actor::cli()).await? {
                println!("{email} already holds that role there.");
                return Ok(ExitCode::SUCCESS);
            }
            let mut grants = user.grants;
            grants.push(grant);
            println!("{email} now holds: {}", accounts.describe_grants(&grants).await?);
        }
        UsersCommand::Add { email, name, role, org, area, password_stdin } => {
            let scope = scope(&*store, org, area).await?;
            let (password, generated) = read_password(password_stdin)?;
            let grants = vec![Grant { role: role.role(), scope }];
            let new = NewUser { email: email.clone(), name, password: Some(password.clone()), grants };
            let user = accounts.create_user(new, &Actor::cli()).await?;
            println!(
                "Added {email} as {} in {} {}, with user id {}",
                role.role().label(),
                scope.kind(),
                scope.id(),
                user.id
            );
            if generated {
                println!("Their password, shown once: {password}");
            }
            if role.role().requires_two_factor() {
                println!("They will set up two-step sign-in the first time they sign in.");
            }
        }
        UsersCommand::Reset { email, password_stdin } => {
            let (password, generated) = read_password(password_stdin)?;
            let user = accounts.reset(&email, &password, &Actor::cli()).await?;
            println!("Reset {email} ({}): signed out everywhere; two-step sign-in must be set up again.", user.id);
            if generated {
                println!("Their new password, shown once: {password}");
            }
        }
        UsersCommand::Link { email, service, base_url } => {
            let user = accounts
                .user_by_email(&email)
                .await?
                .with_context(|| format!("there is no user with the email {email}"))?;
            store.service(service).await?.with_context(|| format!("there is no service with id {service}"))?;
            let token = accounts
                .issue_magic_link(&user, LinkPurpose::UpdateListing, service, &Actor::cli(), |_| Vec::new())
                .await?;
            println!("{}/link/{token}", base_url.trim_end_matches('/'));
        }
        UsersCommand::List => {
            for user in store.users().await? {
                let profile = accounts.profile(&user)?;
                let roles = user.grants.iter().map(|g| format!("{}@{}:{}", g.role, g.scope.kind(), g.scope.id()));
                let two_factor = if user.totp_secret.is_some() { "two-step on" } else { "two-step off" };
                let state = if user.disabled { ", switched off" } else { "" };
                println!(
                    "{}\t{}\t{}\t{two_factor}{state}\t{}",
                    user.id,
                    profile.email,
                    profile.name,
                    roles.collect::<Vec<_>>().join(" ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a role is held, checked to exist.
async fn scope(store: &dyn Store, org: Option<uuid::Uuid>, area: Option<uuid::Uuid>) -> Result<Scope> {
    match (org, area) {
        (Some(org), _) => {
            store
                .organisation(org)
                .await?
                .with_context(|| format!("there is no organisation with id {org}; `kith orgs list` shows them"))?;
            Ok(Scope::Organisation(org))
        }
        (None, Some(area)) => {
            if !store.areas().await?.iter().any(|a| a.id == area) {
                bail!("there is no area with id {area}; `kith orgs list` shows them");
            }
            Ok(Scope::Area(area))
        }
        (None, None) => bail!("give --org or --area: where the role is held"),
    }
}

pub async fn orgs(store: Arc<dyn Store>, command: OrgsCommand) -> Result<ExitCode> {
    match command {
        OrgsCommand::AddArea { name, neighbourhood } => {
            if name.trim().is_empty() {
                bail!("give the area a name");
            }
            let kind = if neighbourhood { AreaKind::Neighbourhood } else { AreaKind::Pcn };
            let area = Area { id: uuid::Uuid::new_v4(), kind, name: name.trim().to_owned() };
            store.put_area(area.clone()).await?;
            println!("Added the {} {} with id {}", kind, area.name, area.id);
        }
        OrgsCommand::Add { name, ods, directory_id, areas } => {
            let kind = if ods.is_some() { OrgKind::Practice } else { OrgKind::Vcs };
            let org = Organisation {
                id: uuid::Uuid::new_v4(),
                kind,
                name: name.trim().to_owned(),
                ods_code: ods.map(|c| c.trim().to_uppercase()),
                directory_id,
                areas,
            };
            org.validate()?;
            store.put_organisation(org.clone()).await?;
            println!("Added {} ({}) with id {}", org.name, org.kind, org.id);
        }
        OrgsCommand::List => {
            for area in store.areas().await? {
                println!("{}\tarea ({})\t{}", area.id, area.kind, area.name);
            }
            for org in store.organisations().await? {
                let code = org.ods_code.as_deref().unwrap_or("-");
                println!("{}\t{}\t{}\t{code}", org.id, org.kind, org.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `kith keys rotate`.
pub async fn rotate_keys(global: &Global, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Result<ExitCode> {
    if let Some(keys) = keys_from_env() {
        // Kith cannot change the environment: print the new keys for the operator to
        // store, then re-seal. Both keys open values until the instances restart.
        let mut keyring = keys?;
        let id = keyring.rotate();
        println!("{}", keyring.to_text().lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join(";"));
        eprintln!("Store the line above as {KEYS_VAR} for every instance now; re-encrypting with {id}.");
        let accounts = Accounts::new(store, Arc::new(keyring), clock);
        let n = accounts
            .reseal_all()
            .await
            .context("re-encrypting personal fields failed; run it again with the new keys")?;
        accounts
            .audit(&Actor::cli(), "keys.rotate", "keyring", Some(id.clone()), &format!("{n} fields re-sealed"))
            .await;
        eprintln!("Re-encrypted {n} fields with {id}. Restart every instance with the new {KEYS_VAR}.");
        return Ok(ExitCode::SUCCESS);
    }
    let path = key_path(global);
    let mut keyring = Keyring::load(&path).with_context(|| format!("cannot use the key file {}", path.display()))?;
    let id = keyring.rotate();
    // The file first: if re-sealing stops halfway, both keys are there to open both.
    keyring.save(&path).with_context(|| format!("cannot write the key file {}", path.display()))?;
    let accounts = Accounts::new(store, Arc::new(keyring), clock);
    let n =
        accounts.reseal_all().await.context("re-encrypting personal fields failed; run `kith keys rotate` again")?;
    accounts.audit(&Actor::cli(), "keys.rotate", "keyring", Some(id.clone()), &format!("{n} fields re-sealed")).await;
    println!("Added key {id} to {} and re-encrypted {n} fields with it. Restart every instance.", path.display());
    Ok(ExitCode::SUCCESS)
}

pub fn new_key_file(file: &std::path::Path) -> Result<ExitCode> {
    if file.exists() {
        bail!("{} already exists; Kith will not replace a key file", file.display());
    }
    Keyring::generate().save(file).with_context(|| format!("cannot write {}", file.display()))?;
    println!(
        "Wrote a new key file to {}. Keep it secret, back it up apart from the database, and give every instance the same one.",
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}
