//! Published directories put HTML in descriptions (`<p>Yoga&nbsp;classes</p>`). Kith
//! stores plain text with paragraph breaks: it is what a printed leaflet, a text message
//! and a screen reader all want, and it cannot carry a script into our pages.

/// Converts an HTML fragment to plain text: block elements become line breaks, list
/// items get a bullet, entities are decoded and every other tag is dropped.
pub fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let starts_tag = after.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!');
        let end = after.find('>').filter(|_| starts_tag);
        let Some(end) = end else {
            // A lone "<" is text ("ages < 18"), not a tag.
            out.push('<');
            rest = after;
            continue;
        };
        let tag = after[..end].trim().to_ascii_lowercase();
        let name: String = tag.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        let closing = tag.starts_with('/');
        match name.as_str() {
            "br" => out.push('\n'),
            "p" | "div" | "ul" | "ol" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "tr" | "table" | "blockquote" => {
                out.push_str("\n\n");
            }
            "li" if !closing => out.push_str("\n• "),
            _ => {}
        }
        // Nothing inside <script> or <style> is text.
        if !closing && (name == "script" || name == "style") {
            let close = format!("</{name}");
            let lower = after.to_ascii_lowercase();
            rest = match lower.find(&close) {
                Some(at) => after[at..].find('>').map_or("", |gt| &after[at + gt + 1..]),
                None => "",
            };
            continue;
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    let decoded = html_escape::decode_html_entities(&out).replace(['\u{a0}', '\t', '\r'], " ");
    tidy(&decoded)
}

/// Collapses runs of spaces, trims each line, and allows at most one blank line.
fn tidy(text: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in text.split('\n') {
        let line = line.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
        if line.is_empty() && lines.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

/// Whether a string looks like HTML rather than plain text.
pub fn looks_like_html(s: &str) -> bool {
    s.contains("</") || s.contains("<br") || s.contains("<p>") || s.contains("&nbsp;") || s.contains("&amp;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_paragraphs_become_nothing() {
        assert_eq!(to_text("<p><br></p>"), "");
    }

    #[test]
    fn paragraphs_entities_and_lists() {
        let html = "<p>Keep&nbsp;fit,  healthy &amp; calm.</p><p>Bring:</p><ul><li>water</li><li>a mat</li></ul>";
        assert_eq!(to_text(html), "Keep fit, healthy & calm.\n\nBring:\n\n• water\n• a mat");
    }

    #[test]
    fn scripts_are_dropped_and_lone_brackets_kept() {
        assert_eq!(to_text("For ages < 18<script>alert(1)</script> only"), "For ages < 18 only");
    }

    #[test]
    fn curly_quotes_survive() {
        assert_eq!(to_text("the \u{2018}Contact Us\u{2019} page"), "the \u{2018}Contact Us\u{2019} page");
    }
}
