//! Error signatures: a message normalized (quoted values, paths, ids and numbers
//! replaced by `<str>`, `<path>`, `<id>`, `<num>`; punctuation around words dropped;
//! lower case), then a 64-bit SimHash
//! over its words and word pairs. Messages that differ only in what normalization
//! strips get the same hash; messages that differ in a word or two get hashes a few bits
//! apart (the group's `max_distance`).

use super::model::Normalize;

/// FNV-1a, 64 bits: stable across versions and platforms (unlike `DefaultHasher`).
pub fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The message with what varies between occurrences replaced.
pub fn normalize(message: &str, rules: &Normalize) -> String {
    let mut out = Vec::new();
    let mut rest = message.trim();
    while !rest.is_empty() {
        let c = rest.chars().next().unwrap_or(' ');
        if rules.quoted && (c == '\'' || c == '"' || c == '`') {
            if let Some(end) = rest[1..].find(c) {
                out.push("<str>".to_string());
                rest = &rest[end + 2..];
                continue;
            }
        }
        if c.is_whitespace() {
            rest = rest.trim_start();
            continue;
        }
        let end = rest
            .find(|ch: char| ch.is_whitespace() || ch == '\'' || ch == '"' || ch == '`')
            .unwrap_or(rest.len());
        if end == 0 {
            // A quote without its partner (`doesn't`, `Couldn't connect`): dropped, so
            // the scan always moves on.
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let (word, tail) = rest.split_at(end);
        rest = tail;
        out.extend(normalize_word(word, rules));
    }
    out.join(" ")
}

/// One whitespace-separated word: surrounding punctuation dropped, then classified.
fn normalize_word(word: &str, rules: &Normalize) -> Vec<String> {
    let trimmed = word.trim_end_matches([',', ';', ':', '.', ')', ']', '}']);
    let trimmed = trimmed.trim_start_matches(['(', '[', '{']);
    let core = if trimmed.is_empty() { word } else { trimmed };
    let lower = core.to_lowercase();
    let is_path = (core.contains('/') || core.contains('\\'))
        || core
            .rsplit_once('.')
            .is_some_and(|(stem, ext)| !stem.is_empty() && is_extension(ext));
    let hex_digits = core.chars().filter(|c| c.is_ascii_hexdigit()).count();
    let is_id = core.len() >= 8
        && hex_digits * 10 >= core.len() * 8
        && core.chars().any(|c| c.is_ascii_digit())
        && core.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let is_number = core
        .trim_start_matches(['-', '+'])
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '_' | ':'))
        && core.chars().any(|c| c.is_ascii_digit());
    if rules.ids && is_id {
        vec!["<id>".into()]
    } else if rules.paths && is_path && !is_number {
        vec!["<path>".into()]
    } else if rules.numbers && is_number {
        vec!["<num>".into()]
    } else if rules.numbers {
        // `line42` and `port=8080`: the digits vary, the word does not.
        let mut w = String::new();
        let mut in_digits = false;
        for ch in lower.chars() {
            if ch.is_ascii_digit() {
                if !in_digits {
                    w.push_str("<num>");
                }
                in_digits = true;
            } else {
                in_digits = false;
                w.push(ch);
            }
        }
        vec![w]
    } else {
        vec![lower]
    }
}

fn is_extension(ext: &str) -> bool {
    matches!(
        ext,
        "py" | "rs"
            | "ts"
            | "tsx"
            | "js"
            | "jsx"
            | "go"
            | "java"
            | "rb"
            | "sql"
            | "json"
            | "yaml"
            | "yml"
            | "toml"
            | "md"
            | "txt"
            | "csv"
            | "html"
            | "css"
            | "sh"
            | "c"
            | "h"
            | "cpp"
            | "kt"
            | "swift"
            | "log"
    )
}

/// The 64-bit SimHash of a normalized message: every word and every pair of adjacent
/// words votes on each bit with its FNV-1a hash.
pub fn simhash(normalized: &str) -> u64 {
    let words: Vec<&str> = normalized.split(' ').filter(|w| !w.is_empty()).collect();
    let mut votes = [0i32; 64];
    let mut vote = |h: u64| {
        for (bit, v) in votes.iter_mut().enumerate() {
            if h >> bit & 1 == 1 {
                *v += 1;
            } else {
                *v -= 1;
            }
        }
    };
    for w in &words {
        vote(fnv64(w.as_bytes()));
    }
    for pair in words.windows(2) {
        vote(fnv64(format!("{} {}", pair[0], pair[1]).as_bytes()));
    }
    votes
        .iter()
        .enumerate()
        .filter(|(_, v)| **v > 0)
        .fold(0u64, |h, (bit, _)| h | 1 << bit)
}

/// Bits in which two hashes differ.
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(m: &str) -> String {
        normalize(m, &Normalize::default())
    }

    #[test]
    fn what_varies_is_stripped() {
        assert_eq!(
            norm("Expected str, got int for field 'user_id'"),
            "expected str got int for field <str>"
        );
        assert_eq!(
            norm("Timeout after 30000 ms connecting to db-7 (10.0.0.12:5432)"),
            "timeout after <num> ms connecting to db-<num> <num>"
        );
        assert_eq!(
            norm("KeyError in models/product.py line 42 for 3f2a9c1e-77aa-4c1d-9e0f-1234567890ab"),
            "keyerror in <path> line <num> for <id>"
        );
    }

    #[test]
    fn an_unpaired_quote_ends_the_scan() {
        assert_eq!(norm("Couldn't connect"), "couldn t connect");
        assert_eq!(norm("say \"hi"), "say hi");
        let off = Normalize {
            quoted: false,
            ..Normalize::default()
        };
        assert_eq!(normalize("a 'b' c", &off), "a b c");
    }

    #[test]
    fn messages_that_differ_in_stripped_parts_hash_alike() {
        let a = simhash(&norm(
            "Expected str, got int for field 'user_id' at line 12",
        ));
        let b = simhash(&norm(
            "Expected str, got int for field 'order_id' at line 98",
        ));
        assert_eq!(a, b);
        let c = simhash(&norm("Connection refused by host api-3 on port 443"));
        assert!(distance(a, c) > 10, "{}", distance(a, c));
    }

    #[test]
    fn fnv_is_the_published_function() {
        assert_eq!(fnv64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
