//! Each service's fully nested JSON, kept once written out, so that a page of search
//! hits is mostly copied instead of read from the store, nested and encoded again.
//!
//! The copies follow the same change feed as the search index: a catch-up that
//! re-indexes a service forgets its copy, and a rebuild forgets them all. So a page of
//! hits is never older than the index that chose it. The store stays the only source of
//! truth: a single service (`/oruk/services/{id}`) is always read from it.
//!
//! A read that raced a change must not put back what the change made stale. Every
//! forgetting moves a generation on; what was read from the store under an older
//! generation is handed out but not kept.

use kith_domain::hsds::Service;
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

/// The bytes kept by default: about 55,000 services of a typical size.
pub const DEFAULT_BUDGET_BYTES: usize = 256 << 20;

/// One service's JSON, shared by every answer that shows it.
#[derive(Debug, Clone)]
pub struct Rendered(Arc<RawValue>);

impl Rendered {
    pub fn of(service: &Service) -> serde_json::Result<Rendered> {
        Ok(Rendered(Arc::from(serde_json::value::to_raw_value(service)?)))
    }

    pub fn json(&self) -> &str {
        self.0.get()
    }
}

impl Serialize for Rendered {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[derive(Debug)]
pub struct RenderedServices {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    kept: HashMap<Uuid, Rendered>,
    bytes: usize,
    generation: u64,
    hits: u64,
    misses: u64,
}

/// What [`RenderedServices::get`] found, and the generation to [`put`](RenderedServices::put) the rest under.
#[derive(Debug)]
pub struct Found {
    pub services: Vec<Option<Rendered>>,
    pub generation: u64,
}

/// How well the copies are doing, for the log and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub services: usize,
    pub bytes: usize,
    pub hits: u64,
    pub misses: u64,
}

impl Default for RenderedServices {
    fn default() -> Self {
        Self::with_budget(DEFAULT_BUDGET_BYTES)
    }
}

impl RenderedServices {
    /// Keeps at most about `budget` bytes of JSON; 0 keeps nothing.
    pub fn with_budget(budget: usize) -> Self {
        RenderedServices { budget, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change to `Inner` completes before anything can panic, so a poisoned
        // lock still guards consistent data.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The kept copy of each service asked for, in order; `None` for those not kept.
    pub fn get(&self, ids: &[Uuid]) -> Found {
        let mut inner = self.lock();
        let services: Vec<Option<Rendered>> = ids.iter().map(|id| inner.kept.get(id).cloned()).collect();
        let hits = services.iter().filter(|s| s.is_some()).count() as u64;
        inner.hits += hits;
        inner.misses += ids.len() as u64 - hits;
        Found { services, generation: inner.generation }
    }

    /// Keeps copies read from the store while `generation` was current. If anything
    /// was forgotten since, they may be stale and are not kept.
    pub fn put(&self, generation: u64, read: &[(Uuid, Rendered)]) {
        let mut inner = self.lock();
        if inner.generation != generation || self.budget == 0 {
            return;
        }
        for (id, rendered) in read {
            let size = rendered.json().len();
            if size > self.budget / 4 {
                continue;
            }
            if inner.bytes + size > self.budget {
                inner.make_room(self.budget / 4);
            }
            if let Some(old) = inner.kept.insert(*id, rendered.clone()) {
                inner.bytes -= old.json().len();
            }
            inner.bytes += size;
        }
    }

    /// Forgets these services' copies: they, or what they show, changed.
    pub fn forget(&self, ids: &[Uuid]) {
        let mut inner = self.lock();
        inner.generation += 1;
        for id in ids {
            if let Some(old) = inner.kept.remove(id) {
                inner.bytes -= old.json().len();
            }
        }
    }

    /// Forgets every copy: the index was rebuilt.
    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.kept.clear();
        inner.bytes = 0;
    }

    pub fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats { services: inner.kept.len(), bytes: inner.bytes, hits: inner.hits, misses: inner.misses }
    }
}

impl Inner {
    /// Drops copies until `room` bytes are free. Which go is arbitrary (the map's
    /// order); whatever is still asked for comes back on its next read.
    fn make_room(&mut self, room: usize) {
        let Inner { kept, bytes, .. } = self;
        let target = bytes.saturating_sub(room);
        kept.retain(|_, rendered| {
            if *bytes <= target {
                return true;
            }
            *bytes -= rendered.json().len();
            false
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use kith_domain::ServiceStatus;

    fn rendered(n: u128, name: &str) -> (Uuid, Rendered) {
        let service = Service::new(Uuid::from_u128(n), name, ServiceStatus::Active);
        (service.id, Rendered::of(&service).unwrap())
    }

    #[test]
    fn keeps_what_it_is_given_and_forgets_what_changed() {
        let cache = RenderedServices::default();
        let (a, b) = (rendered(1, "Walking group"), rendered(2, "Debt advice"));
        let found = cache.get(&[a.0, b.0]);
        assert!(found.services.iter().all(Option::is_none));
        cache.put(found.generation, &[a.clone(), b.clone()]);

        let found = cache.get(&[b.0, Uuid::from_u128(3), a.0]);
        let names: Vec<Option<&str>> = found.services.iter().map(|s| s.as_ref().map(Rendered::json)).collect();
        assert_eq!(names, [Some(b.1.json()), None, Some(a.1.json())]);
        assert!(a.1.json().contains("Walking group"));

        cache.forget(&[a.0]);
        let found = cache.get(&[a.0, b.0]);
        assert!(found.services[0].is_none() && found.services[1].is_some());
        cache.forget_all();
        assert_eq!(cache.stats().services, 0);
        assert_eq!(cache.stats().bytes, 0);
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let cache = RenderedServices::default();
        let stale = rendered(1, "Old name");
        let generation = cache.get(&[stale.0]).generation;
        // The service changes, and the catch-up forgets it, while the old copy is read.
        cache.forget(&[stale.0]);
        cache.put(generation, std::slice::from_ref(&stale));
        assert!(cache.get(&[stale.0]).services[0].is_none());
    }

    #[test]
    fn stays_within_its_budget() {
        let one = rendered(0, "A service").1.json().len();
        let cache = RenderedServices::with_budget(one * 10);
        for n in 0..100 {
            let generation = cache.get(&[]).generation;
            cache.put(generation, &[rendered(n, "A service")]);
            assert!(cache.stats().bytes <= one * 10);
        }
        assert!(cache.stats().services >= 7, "room is made a quarter at a time");
        let none = RenderedServices::with_budget(0);
        none.put(0, &[rendered(1, "A service")]);
        assert_eq!(none.stats().services, 0);
    }

    #[test]
    fn written_out_as_the_service_itself() {
        let service = Service::new(Uuid::from_u128(9), "Men's Shed", ServiceStatus::Active);
        let page = serde_json::to_string(&vec![Rendered::of(&service).unwrap()]).unwrap();
        assert_eq!(page, serde_json::to_string(&vec![&service]).unwrap());
    }
}
