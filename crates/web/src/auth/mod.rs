//! Sign-in, sessions and authorisation.
//!
//! - [`accounts`]: the accounts service (users, passwords, two factors, magic links,
//!   lockouts, audit, key rotation), shared by the web and the CLI;
//! - [`session`]: the session cookie and who is asking;
//! - [`access`]: the rule every route is added with, and the guard that enforces it.

pub mod access;
pub mod accounts;
pub mod oidc;
pub mod session;

pub use access::{Access, Routes, Rule};
pub use accounts::{Accounts, AccountsError, Actor, NewUser};
pub use session::{ClientIp, Viewer};
