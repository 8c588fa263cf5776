//! The OpenAPI document of Kith's ORUK API, served at `/oruk/openapi.json`. Written by
//! hand beside the handlers; a test checks that it names every route and that it parses.

pub const DOCUMENT: &str = include_str!("openapi.json");
