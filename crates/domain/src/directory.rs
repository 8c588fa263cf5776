//! HSDS documents nest freely: a service carries its organisation, its locations inside
//! `service_at_locations`, and taxonomy terms inside `attributes`. The store keeps each
//! of those once, as its own aggregate, so an organisation shared by forty services is
//! one row. [`DirectoryBatch::add_service`] and friends take nested documents apart;
//! [`nest_service`] puts a stored service back together for the API and for export.

use crate::hsds::{Attribute, Location, Organization, Service, Taxonomy, TaxonomyTerm};
use crate::provenance::Stamp;
use std::collections::HashMap;
use uuid::Uuid;

/// Records ready to be written in one transaction, each kept once by id.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DirectoryBatch {
    pub taxonomies: Vec<Taxonomy>,
    pub taxonomy_terms: Vec<TaxonomyTerm>,
    pub organizations: Vec<Organization>,
    pub locations: Vec<Location>,
    pub services: Vec<Service>,
    /// The source these records come from, when they come from one (a feed's pull, a
    /// file's import): writing them also records that the source listed them.
    pub stamp: Option<Stamp>,
    index: HashMap<(Kind, Uuid), usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Taxonomy,
    Term,
    Organization,
    Location,
    Service,
}

/// Inserts `item`, replacing an earlier record with the same id: a later statement of
/// the same object within one import wins, as a second import would.
fn put<T>(list: &mut Vec<T>, index: &mut HashMap<(Kind, Uuid), usize>, kind: Kind, id: Uuid, item: T) {
    match index.get(&(kind, id)) {
        Some(&at) => list[at] = item,
        None => {
            index.insert((kind, id), list.len());
            list.push(item);
        }
    }
}

impl DirectoryBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.taxonomies.is_empty()
            && self.taxonomy_terms.is_empty()
            && self.organizations.is_empty()
            && self.locations.is_empty()
            && self.services.is_empty()
    }

    /// The number of records of every kind.
    pub fn len(&self) -> usize {
        self.taxonomies.len()
            + self.taxonomy_terms.len()
            + self.organizations.len()
            + self.locations.len()
            + self.services.len()
    }

    /// Splits the batch into batches of at most `size` records, in dependency order:
    /// taxonomies, terms, organisations, locations, then services. Each can be written
    /// in its own transaction, so a large import holds no lock for long.
    pub fn into_chunks(self, size: usize) -> Vec<DirectoryBatch> {
        let size = size.max(1);
        let stamp = self.stamp.clone();
        let mut out = Vec::new();
        let mut current = DirectoryBatch::new();
        let push = |current: &mut DirectoryBatch, out: &mut Vec<DirectoryBatch>| {
            if current.len() >= size {
                out.push(std::mem::take(current));
            }
        };
        for t in self.taxonomies {
            current.add_taxonomy(t);
            push(&mut current, &mut out);
        }
        for t in self.taxonomy_terms {
            current.add_taxonomy_term(t);
            push(&mut current, &mut out);
        }
        for o in self.organizations {
            current.add_organization(o);
            push(&mut current, &mut out);
        }
        for l in self.locations {
            current.add_location(l);
            push(&mut current, &mut out);
        }
        for s in self.services {
            current.add_service(s);
            push(&mut current, &mut out);
        }
        if !current.is_empty() {
            out.push(current);
        }
        for chunk in &mut out {
            chunk.stamp.clone_from(&stamp);
        }
        out
    }

    pub fn contains_service(&self, id: Uuid) -> bool {
        self.index.contains_key(&(Kind::Service, id))
    }

    /// Whether every record in `other` is already here, exactly as `other` states it.
    pub fn includes(&self, other: &DirectoryBatch) -> bool {
        fn all<T: PartialEq>(
            mine: &[T],
            theirs: &[T],
            index: &HashMap<(Kind, Uuid), usize>,
            kind: Kind,
            id: impl Fn(&T) -> Uuid,
        ) -> bool {
            theirs.iter().all(|t| index.get(&(kind, id(t))).is_some_and(|&at| mine[at] == *t))
        }
        all(&self.taxonomies, &other.taxonomies, &self.index, Kind::Taxonomy, |t| t.id)
            && all(&self.taxonomy_terms, &other.taxonomy_terms, &self.index, Kind::Term, |t| t.id)
            && all(&self.organizations, &other.organizations, &self.index, Kind::Organization, |o| o.id)
            && all(&self.locations, &other.locations, &self.index, Kind::Location, |l| l.id)
            && all(&self.services, &other.services, &self.index, Kind::Service, |s| s.id)
    }

    pub fn add_taxonomy(&mut self, taxonomy: Taxonomy) {
        put(&mut self.taxonomies, &mut self.index, Kind::Taxonomy, taxonomy.id, taxonomy);
    }

    /// Adds a term. A nested `taxonomy_detail` stays in the term, as published, and is
    /// also kept as a taxonomy of its own.
    pub fn add_taxonomy_term(&mut self, mut term: TaxonomyTerm) {
        if let Some(detail) = &term.taxonomy_detail {
            term.taxonomy_id.get_or_insert(detail.id);
            term.taxonomy.get_or_insert_with(|| detail.name.clone());
            self.add_taxonomy(detail.clone());
        }
        put(&mut self.taxonomy_terms, &mut self.index, Kind::Term, term.id, term);
    }

    fn take_attribute_terms(&mut self, attributes: &mut [Attribute]) {
        for attribute in attributes {
            if let Some(term) = attribute.taxonomy_term.take() {
                attribute.taxonomy_term_id.get_or_insert(term.id);
                self.add_taxonomy_term(term);
            }
        }
    }

    pub fn add_location(&mut self, mut location: Location) {
        self.take_attribute_terms(&mut location.attributes);
        for address in &mut location.addresses {
            address.location_id.get_or_insert(location.id);
        }
        put(&mut self.locations, &mut self.index, Kind::Location, location.id, location);
    }

    /// Adds an organisation and everything nested in it (its locations and services).
    pub fn add_organization(&mut self, mut organization: Organization) {
        self.take_attribute_terms(&mut organization.attributes);
        for mut location in std::mem::take(&mut organization.locations) {
            location.organization_id.get_or_insert(organization.id);
            self.add_location(location);
        }
        let services = std::mem::take(&mut organization.services);
        let org_id = organization.id;
        put(&mut self.organizations, &mut self.index, Kind::Organization, org_id, organization);
        for mut service in services {
            service.organization_id.get_or_insert(org_id);
            self.add_service(service);
        }
    }

    /// Adds a service, taking out its nested organisation, locations and terms.
    pub fn add_service(&mut self, mut service: Service) {
        if let Some(organization) = service.organization.take() {
            service.organization_id.get_or_insert(organization.id);
            self.add_organization(*organization);
        }
        self.take_attribute_terms(&mut service.attributes);
        for sal in &mut service.service_at_locations {
            sal.service_id = Some(service.id);
            // A venue is not owned by whichever organisation's service meets there, so
            // the location keeps only the organisation it states itself.
            if let Some(location) = sal.location.take() {
                sal.location_id.get_or_insert(location.id);
                self.add_location(location);
            }
        }
        put(&mut self.services, &mut self.index, Kind::Service, service.id, service);
    }
}

/// What a stored service refers to, for putting it back together.
#[derive(Debug, Default)]
pub struct Related {
    pub organizations: HashMap<Uuid, Organization>,
    pub locations: HashMap<Uuid, Location>,
    pub taxonomy_terms: HashMap<Uuid, TaxonomyTerm>,
}

/// Nests a stored service: its organisation, the location of each service at a
/// location, and the taxonomy term of each attribute, as `service_full` expects.
pub fn nest_service(mut service: Service, related: &Related) -> Service {
    if let Some(org_id) = service.organization_id
        && let Some(org) = related.organizations.get(&org_id)
    {
        let mut org = org.clone();
        nest_attributes(&mut org.attributes, related);
        service.organization = Some(Box::new(org));
    }
    for sal in &mut service.service_at_locations {
        if let Some(location) = sal.location_id.and_then(|id| related.locations.get(&id)) {
            let mut location = location.clone();
            nest_attributes(&mut location.attributes, related);
            sal.location = Some(location);
        }
    }
    nest_attributes(&mut service.attributes, related);
    service
}

fn nest_attributes(attributes: &mut [Attribute], related: &Related) {
    for attribute in attributes {
        if let Some(term) = attribute.taxonomy_term_id.and_then(|id| related.taxonomy_terms.get(&id)) {
            attribute.taxonomy_term = Some(term.clone());
        }
    }
}

/// The taxonomy term ids a service is linked to through its attributes.
pub fn service_term_ids(service: &Service) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = service.attributes.iter().filter_map(Attribute::term_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The location ids a service is offered at.
pub fn service_location_ids(service: &Service) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = service
        .service_at_locations
        .iter()
        .filter_map(|sal| sal.location_id.or_else(|| sal.location.as_ref().map(|l| l.id)))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hsds::{LocationType, ServiceAtLocation};
    use crate::status::ServiceStatus;

    fn sal(id: u128, location: Location) -> ServiceAtLocation {
        ServiceAtLocation {
            location_id: None,
            location: Some(location),
            ..ServiceAtLocation::new(Uuid::from_u128(id), Uuid::nil())
        }
    }

    #[test]
    fn a_shared_organisation_and_location_are_kept_once() {
        let org = Organization::new(Uuid::from_u128(1), "Parkhead Trust", "A community trust");
        let place = Location::new(Uuid::from_u128(2), LocationType::Physical);
        let mut batch = DirectoryBatch::new();
        for n in 0..3u128 {
            let mut service = Service::new(Uuid::from_u128(10 + n), "Lunch club", ServiceStatus::Active);
            service.organization = Some(Box::new(org.clone()));
            service.service_at_locations.push(sal(20 + n, place.clone()));
            batch.add_service(service);
        }
        assert_eq!(batch.organizations.len(), 1);
        assert_eq!(batch.locations.len(), 1);
        assert_eq!(batch.services.len(), 3);
        let first = &batch.services[0];
        assert_eq!(first.organization_id, Some(org.id));
        assert!(first.organization.is_none());
        assert_eq!(first.service_at_locations[0].location_id, Some(place.id));
        assert!(first.service_at_locations[0].location.is_none());
        assert_eq!(batch.locations[0].organization_id, None, "a shared venue belongs to no one service's organisation");
    }

    #[test]
    fn chunks_keep_every_record_in_dependency_order() {
        let mut batch = DirectoryBatch::new();
        batch.add_organization(Organization::new(Uuid::from_u128(1), "Trust", ""));
        for n in 0..5u128 {
            batch.add_service(Service::new(Uuid::from_u128(10 + n), "S", ServiceStatus::Active));
        }
        let chunks = batch.into_chunks(2);
        assert_eq!(chunks.iter().map(DirectoryBatch::len).collect::<Vec<_>>(), [2, 2, 2]);
        assert_eq!(chunks[0].organizations.len(), 1);
    }

    #[test]
    fn nesting_restores_what_splitting_took_out() {
        let org = Organization::new(Uuid::from_u128(1), "Trust", "");
        let place = Location::new(Uuid::from_u128(2), LocationType::Physical);
        let mut service = Service::new(Uuid::from_u128(3), "Walk", ServiceStatus::Active);
        service.organization = Some(Box::new(org.clone()));
        service.service_at_locations.push(sal(4, place.clone()));
        let mut batch = DirectoryBatch::new();
        batch.add_service(service);
        let related = Related {
            organizations: [(org.id, batch.organizations[0].clone())].into(),
            locations: [(place.id, batch.locations[0].clone())].into(),
            taxonomy_terms: HashMap::new(),
        };
        let nested = nest_service(batch.services[0].clone(), &related);
        assert_eq!(nested.organization.as_deref().map(|o| o.id), Some(org.id));
        assert_eq!(nested.service_at_locations[0].location.as_ref().map(|l| l.id), Some(place.id));
    }
}
