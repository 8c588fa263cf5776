//! Search results as a `searchset` Bundle.

use crate::resource::{Resource, ResourceType};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BundleType {
    Searchset,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleLink {
    /// `self` or `next`.
    pub relation: String,
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SearchMode {
    /// A resource that matched the search.
    Match,
    /// An OperationOutcome about the search itself.
    Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleSearch {
    pub mode: SearchMode,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    pub resource: Resource,
    pub search: BundleSearch,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    pub resource_type: ResourceType,
    #[serde(rename = "type")]
    pub type_: BundleType,
    /// How many resources match, across every page.
    pub total: u64,
    pub link: Vec<BundleLink>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entry: Vec<BundleEntry>,
}

/// One page of search results: `total` matches in all, this page's `resources`, a `self`
/// link and, when there are more, a `next` link. Each entry's `fullUrl` is
/// `{base}/{type}/{id}`; an OperationOutcome among them has search mode `outcome`.
pub fn bundle_searchset(
    base: &str,
    self_url: &str,
    total: u64,
    resources: Vec<Resource>,
    next: Option<String>,
) -> Bundle {
    let base = base.trim_end_matches('/');
    let mut link = vec![BundleLink { relation: "self".to_owned(), url: self_url.to_owned() }];
    link.extend(next.map(|url| BundleLink { relation: "next".to_owned(), url }));
    let entry = resources
        .into_iter()
        .map(|resource| BundleEntry {
            full_url: resource.id().map(|id| format!("{base}/{}/{id}", resource.resource_type())),
            search: BundleSearch {
                mode: match resource {
                    Resource::OperationOutcome(_) => SearchMode::Outcome,
                    _ => SearchMode::Match,
                },
            },
            resource,
        })
        .collect();
    Bundle { resource_type: ResourceType::Bundle, type_: BundleType::Searchset, total, link, entry }
}
