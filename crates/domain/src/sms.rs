//! Text messages that arrive whole: GSM 03.38 characters where an ordinary one will do,
//! and a count of the segments a message takes, so a message can be kept within two.
//!
//! A message in the GSM 7-bit alphabet takes 160 characters in one segment, or 153 in
//! each of several (the rest carries the join). One character outside it (an emoji, a
//! Polish "ł") sends the whole message as UCS-2: 70 in one, 67 in each of several.

/// The GSM 03.38 basic character set, each one septet.
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: each takes two septets (an escape, then the character).
const EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// Typographic characters written as their GSM look-alikes: curly quotes, dashes, an
/// ellipsis and unusual spaces are common in listings and would make a text UCS-2.
pub fn to_gsm(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{2018}' | '\u{2019}' | '\u{201b}' | '\u{2032}' | '`' | '\u{b4}' => out.push('\''),
            '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{2033}' => out.push('"'),
            '\u{2010}'..='\u{2015}' | '\u{2212}' => out.push('-'),
            '\u{2026}' => out.push_str("..."),
            '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\t' => out.push(' '),
            '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{ad}' => {}
            '\u{2022}' | '\u{b7}' => out.push('-'),
            c => out.push(c),
        }
    }
    out
}

/// Whether the whole text is in the GSM 7-bit alphabet (basic or extended).
pub fn is_gsm(text: &str) -> bool {
    text.chars().all(|c| BASIC.contains(c) || EXTENDED.contains(c))
}

/// How many segments the text is sent as.
pub fn segments(text: &str) -> usize {
    if text.is_empty() {
        return 1;
    }
    let (units, single, each) = if is_gsm(text) {
        (text.chars().map(|c| if EXTENDED.contains(c) { 2 } else { 1 }).sum::<usize>(), 160, 153)
    } else {
        (text.encode_utf16().count(), 70, 67)
    };
    if units <= single { 1 } else { units.div_ceil(each) }
}

/// A text of at most `max_segments`: the `head`, as many of the `lines` as fit (each
/// shortened to `line_chars` first), a count of any left out, and the `tail`, which is
/// always kept whole. Everything is written in GSM characters where it can be.
pub fn fit(head: &str, lines: &[String], tail: &str, line_chars: usize, max_segments: usize) -> String {
    let shorten = |line: &str| -> String {
        let line = to_gsm(line);
        if line.chars().count() <= line_chars {
            return line;
        }
        let cut: String = line.chars().take(line_chars.saturating_sub(3)).collect();
        format!("{}...", cut.trim_end())
    };
    let lines: Vec<String> = lines.iter().map(|l| shorten(l)).collect();
    let (head, tail) = (to_gsm(head), to_gsm(tail));
    let build = |kept: usize| {
        let mut out = format!("{head}\n");
        for line in &lines[..kept] {
            out.push_str(line);
            out.push('\n');
        }
        let left = lines.len() - kept;
        if left > 0 {
            out.push_str(&format!("+{left} more at the link\n"));
        }
        out.push_str(&tail);
        out
    };
    (0..=lines.len()).rev().map(build).find(|t| segments(t) <= max_segments).unwrap_or_else(|| build(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_count_gsm_septets_and_ucs2_units() {
        assert_eq!(segments(""), 1);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        // An extended character takes two septets.
        assert_eq!(segments(&format!("{}€", "a".repeat(159))), 2);
        // One character outside the alphabet makes the whole text UCS-2.
        assert_eq!(segments(&format!("{}ł", "a".repeat(69))), 1);
        assert_eq!(segments(&format!("{}ł", "a".repeat(70))), 2);
        assert_eq!(segments(&format!("{}ł", "a".repeat(133))), 2);
        assert_eq!(segments(&format!("{}ł", "a".repeat(134))), 3);
        assert_eq!(segments("Caf\u{e9} \u{a3}2"), 1);
    }

    #[test]
    fn typography_becomes_gsm() {
        let typed = "St Mary\u{2019}s \u{201c}Chatty\u{201d} Caf\u{e9} \u{2013} Mon\u{a0}10\u{2026}";
        let gsm = to_gsm(typed);
        assert_eq!(gsm, "St Mary's \"Chatty\" Caf\u{e9} - Mon 10...");
        assert!(is_gsm(&gsm));
        assert!(!is_gsm("Dzie\u{144} dobry \u{1f600}"));
    }

    #[test]
    fn a_long_list_keeps_its_head_and_link_within_two_segments() {
        let lines: Vec<String> = (1..=9)
            .map(|n| format!("{n}. A community group with a very long name indeed {n} 0114 555 01{n:02}"))
            .collect();
        let link = "Details: https://kith.example.org/l/K7QW2M9XHP";
        let text = fit("Parkhead Health Centre: services we talked about:", &lines, link, 60, 2);
        assert!(segments(&text) <= 2, "{text}");
        assert!(text.starts_with("Parkhead Health Centre:") && text.ends_with(link), "{text}");
        assert!(text.contains("1. A community") && text.contains("more at the link"), "{text}");
        // A short list is kept whole.
        let short = fit("Head:", &lines[..2], link, 60, 2);
        assert!(!short.contains("more at the link") && short.contains("2. A community"), "{short}");
        // Even a head and link too long for the limit give a message (with nothing dropped
        // from the link).
        let long = fit(&"x".repeat(400), &lines, link, 60, 2);
        assert!(long.ends_with(link));
    }
}
