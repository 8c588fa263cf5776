//! Reading a page's query string or form body, where a name may repeat (`need=a&need=b`).

/// The name–value pairs of a query string or `application/x-www-form-urlencoded` body.
#[derive(Debug, Clone, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Malformed percent-encoding reads as what could be decoded; a page never fails on
    /// it. Control characters (but tabs and line breaks) are left out of every value.
    pub fn parse(raw: Option<&str>) -> Fields {
        let pairs: Vec<(String, String)> =
            raw.map(|r| serde_urlencoded::from_str(r).unwrap_or_default()).unwrap_or_default();
        Fields(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    if v.chars().any(kith_domain::validate::is_unwanted_control) {
                        (k, kith_domain::validate::without_control_characters(&v).0)
                    } else {
                        (k, v)
                    }
                })
                .collect(),
        )
    }

    /// The first value, trimmed, or "" when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.trim())
    }

    /// The first value exactly as sent (passwords are not trimmed), or "" when absent.
    pub fn raw(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    /// Every non-empty value, trimmed, without repeats, in the order given.
    pub fn all(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, v) in self.0.iter().filter(|(k, _)| k == name) {
            let v = v.trim();
            if !v.is_empty() && !out.iter().any(|o| o == v) {
                out.push(v.to_owned());
            }
        }
        out
    }

    pub fn has(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }

    /// Every pair as sent, but those named in `leave_out`: to carry a form's answers
    /// through a step that asks one more question.
    pub fn pairs_without(&self, leave_out: &[&str]) -> Vec<(String, String)> {
        self.0.iter().filter(|(k, _)| !leave_out.contains(&k.as_str())).cloned().collect()
    }
}

/// A query string from name–value pairs, for links that keep a search.
pub fn query_string(pairs: &[(&str, String)]) -> String {
    let kept: Vec<(&str, &str)> = pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (*k, v.as_str())).collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_left_out_of_values() {
        let f = Fields::parse(Some("where=BS1%001AA&note=line+one%0D%0Aline%09two%07"));
        assert_eq!(f.get("where"), "BS11AA");
        assert_eq!(f.raw("note"), "line one\r\nline\ttwo");
    }

    #[test]
    fn repeated_names_and_trimming() {
        let f = Fields::parse(Some("need=food&need=+carers+&need=food&q=%20lonely%20&bad=%ZZ"));
        assert_eq!(f.all("need"), vec!["food", "carers"]);
        assert_eq!(f.get("q"), "lonely");
        assert_eq!(f.get("missing"), "");
        assert_eq!(query_string(&[("q", "walking group".into()), ("where", String::new())]), "q=walking+group");
    }
}
