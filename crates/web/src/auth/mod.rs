//! Who is asking, and whether they may: the HTTP side of sign-in. The accounts service
//! itself (users, passwords, two factors, magic links, the audit log) is
//! [`kith_app::accounts`].
//!
//! - [`session`]: the session cookie and who is asking;
//! - [`access`]: the rule every route is added with, and the guard that enforces it.

pub mod access;
pub mod session;

pub use access::{Access, Routes, Rule};
pub use session::{ClientIp, Viewer};
