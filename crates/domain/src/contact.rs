//! Ways to reach a person: email addresses and UK mobile numbers, checked and put in one
//! form so a typo is caught at the desk rather than by a message that never arrives.

/// A UK mobile number in national form (`07700900123`), from what a person typed:
/// spaces, dashes, brackets, `+44` or `0044` are all fine.
pub fn uk_mobile(input: &str) -> Option<String> {
    let digits: String = input.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.')).collect();
    let national = if let Some(rest) = digits.strip_prefix("+44") {
        format!("0{}", rest.trim_start_matches("(0)").trim_start_matches('0'))
    } else if let Some(rest) = digits.strip_prefix("0044") {
        format!("0{}", rest.trim_start_matches('0'))
    } else {
        digits
    };
    (national.len() == 11 && national.starts_with("07") && national.bytes().all(|b| b.is_ascii_digit()))
        .then_some(national)
}

/// Whether an email address is plausible: one @, something either side, a dot in the
/// domain, no spaces, at most 254 characters.
pub fn plausible_email(input: &str) -> bool {
    let email = input.trim();
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// An address shown back without giving it away to someone reading over a shoulder:
/// `s***@example.org`, `07*** ***123`.
pub fn masked(address: &str) -> String {
    if let Some((local, domain)) = address.split_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let tail: String = address.chars().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect();
    format!("07*** ***{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobiles_in_any_usual_form() {
        for typed in ["07700 900123", "07700-900-123", "+44 7700 900123", "+44 (0)7700 900123", "0044 7700 900123"] {
            assert_eq!(uk_mobile(typed).as_deref(), Some("07700900123"), "{typed}");
        }
        for bad in ["0141 123 4567", "0770090012", "077009001234", "seven", ""] {
            assert_eq!(uk_mobile(bad), None, "{bad}");
        }
    }

    #[test]
    fn emails_and_masks() {
        assert!(plausible_email("sam@example.org"));
        for bad in ["sam", "sam@", "@example.org", "sam@example", "sam @example.org", "a@b@c.org"] {
            assert!(!plausible_email(bad), "{bad}");
        }
        assert_eq!(masked("sam@example.org"), "s***@example.org");
        assert_eq!(masked("07700900123"), "07*** ***123");
    }
}
