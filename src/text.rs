//! Text normalisation shared by intent detection, knowledge retrieval and
//! catalog search, so that all three agree on what a "word" is.

/// Lower-cased words. Keeps decimals such as `8.5` and order names such as
/// `1001` whole; everything else that is not a letter or digit separates.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '\''))
        .map(|w| w.trim_matches(|c| c == '.' || c == '\'').to_lowercase())
        .filter(|w| !w.is_empty())
}

/// Words reduced to a crude stem, so `returns`, `returned` and `returning`
/// meet `return`. Deliberately light: it only has to make both sides agree.
pub fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    words(text).map(|w| stem(&w))
}

/// A stable 32-bit hash (FNV-1a): the same on every machine and every run,
/// which persisted and shared indexes need.
pub fn stable_hash(bytes: impl IntoIterator<Item = u8>) -> u32 {
    bytes.into_iter().fold(0x811c_9dc5_u32, |hash, b| (hash ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

pub fn stem(word: &str) -> String {
    let w = word.trim_end_matches("'s");
    let n = w.chars().count();
    if !w.chars().all(|c| c.is_alphabetic()) || n <= 3 {
        return w.to_owned();
    }
    for (suffix, replacement, min_len) in [
        ("ies", "y", 5),
        ("sses", "ss", 5),
        ("ing", "", 6),
        ("ied", "y", 5),
        ("ed", "", 5),
        ("es", "", 5),
        ("s", "", 4),
    ] {
        if n >= min_len && w.ends_with(suffix) && !(suffix == "s" && w.ends_with("ss")) {
            let base = &w[..w.len() - suffix.len()];
            // `shoes` → `shoe`, not `sho`; `boxes` → `box`.
            if suffix == "es"
                && !(base.ends_with('x') || base.ends_with("ch") || base.ends_with("sh") || base.ends_with('s'))
            {
                return w[..w.len() - 1].to_owned();
            }
            // `shipping` → `ship`: undo the doubled consonant.
            let b = base.as_bytes();
            if matches!(suffix, "ing" | "ed")
                && b.len() >= 3
                && b[b.len() - 1] == b[b.len() - 2]
                && !b"lsz".contains(&b[b.len() - 1])
            {
                return base[..base.len() - 1].to_owned();
            }
            return format!("{base}{replacement}");
        }
    }
    w.to_owned()
}

/// Stems that customers use for what store policies say in other words.
/// Small on purpose: it bridges everyday phrasing ("how much", "wore") to
/// policy vocabulary ("cost", "worn"); semantic retrieval does the rest.
pub fn related_terms(term: &str) -> &'static [&'static str] {
    match term {
        "much" | "price" | "charge" => &["cost", "fee", "free"],
        "cost" => &["fee", "free", "price"],
        "wore" | "wearing" | "used" => &["worn", "wear", "unworn"],
        "paypal" | "visa" | "mastercard" | "amex" | "klarna" | "afterpay" => &["payment", "pay"],
        "money" => &["refund"],
        "back" => &["return", "refund"],
        "arrive" => &["delivery"],
        "big" | "small" | "tight" | "loose" => &["size", "fit"],
        "broke" | "broken" | "faulty" => &["defect", "warranty"],
        "abroad" | "overseas" | "canada" | "uk" | "europe" | "australia" => &["international"],
        "data" | "information" | "info" => &["privacy", "personal"],
        "cancel" => &["cancellation"],
        _ => &[],
    }
}

/// Common English words that carry no topic; left out of retrieval queries.
pub fn is_stopword(term: &str) -> bool {
    const STOP: &[&str] = &[
        "a",
        "about",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "do",
        "doe",
        "does",
        "did",
        "for",
        "from",
        "get",
        "got",
        "had",
        "has",
        "have",
        "hello",
        "hi",
        "how",
        "i",
        "i'm",
        "if",
        "in",
        "is",
        "it",
        "it's",
        "its",
        "just",
        "me",
        "my",
        "need",
        "of",
        "on",
        "or",
        "our",
        "please",
        "so",
        "some",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "u",
        "up",
        "us",
        "wa",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "thank",
        "thanks",
        "hey",
        "there",
        "want",
        "know",
        "tell",
        "like",
        "take",
        "something",
        "anything",
    ];
    STOP.contains(&term)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_sizes_and_order_numbers_whole() {
        let w: Vec<String> = words("Where's order #1001? Size 8.5, please.").collect();
        assert_eq!(w, ["where's", "order", "1001", "size", "8.5", "please"]);
    }

    #[test]
    fn stems_make_inflections_meet() {
        for (a, b) in [("returns", "return"), ("refunds", "refund"), ("shipping", "ship"), ("policies", "policy")] {
            assert_eq!(stem(a), stem(b), "{a} vs {b}");
        }
        assert_eq!(stem("shoes"), "shoe");
        assert_eq!(stem("address"), "address");
    }
}
