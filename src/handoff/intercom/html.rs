//! Intercom bodies are HTML; the widget shows text (its own safe Markdown
//! subset). Tags become line breaks, links become `[text](url)` when they
//! are http(s), and anything executable (scripts, styles, frames, event
//! handlers, `javascript:` links) is dropped with its content.

/// Elements whose content is never text for a customer.
const DROPPED: &[&str] = &["script", "style", "iframe", "object", "embed", "template", "noscript", "head", "svg"];
const BLOCKS: &[&str] =
    &["p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "ul", "ol", "tr", "table"];

pub fn to_text(html: &str) -> String {
    let mut out = String::new();
    let mut link: Option<(String, usize)> = None; // href, where its text starts in `out`
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        push_text(&mut out, &rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            // A lone `<` is text.
            push_text(&mut out, &rest[open..]);
            rest = "";
            break;
        };
        let tag = &after[..close];
        rest = &after[close + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if !closing && DROPPED.contains(&name.as_str()) {
            rest = skip_element(rest, &name);
            continue;
        }
        match (name.as_str(), closing) {
            ("br", _) => out.push('\n'),
            ("li", false) => {
                newline(&mut out);
                out.push_str("- ");
            }
            ("a", false) => link = attribute(tag, "href").filter(|h| safe_url(h)).map(|h| (h, out.len())),
            ("a", true) => {
                if let Some((href, start)) = link.take() {
                    let text: String = out[start..].trim().replace(['[', ']'], "");
                    out.truncate(start);
                    if text.is_empty() || text == href {
                        out.push_str(&href);
                    } else {
                        out.push_str(&format!("[{text}]({href})"));
                    }
                }
            }
            ("img", false) => {
                if let Some(alt) = attribute(tag, "alt") {
                    push_text(&mut out, &alt);
                }
            }
            (block, _) if BLOCKS.contains(&block) => {
                newline(&mut out);
                if closing && block != "tr" {
                    out.push('\n');
                }
            }
            _ => {}
        }
    }
    push_text(&mut out, rest);
    tidy(&out)
}

fn push_text(out: &mut String, raw: &str) {
    let decoded = decode_entities(raw);
    for (i, word) in decoded.split(|c: char| c.is_whitespace() && c != '\u{a0}').enumerate() {
        if i > 0 && !out.ends_with([' ', '\n']) && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word.replace('\u{a0}', " "));
    }
}

fn newline(out: &mut String) {
    let trimmed = out.trim_end_matches(' ').len();
    out.truncate(trimmed);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

/// Skips past `</name>`, or to the end when it never closes.
fn skip_element<'a>(rest: &'a str, name: &str) -> &'a str {
    let lower = rest.to_ascii_lowercase();
    match lower.find(&format!("</{name}")) {
        Some(at) => rest[at..].find('>').map_or("", |end| &rest[at + end + 1..]),
        None => "",
    }
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(name) {
        let at = from + found;
        from = at + name.len();
        let before_ok = at > 0 && lower.as_bytes()[at - 1].is_ascii_whitespace();
        let value = lower[from..].trim_start().strip_prefix('=').map(str::trim_start);
        let (true, Some(value)) = (before_ok, value) else { continue };
        let start = tag.len() - value.len();
        let raw = &tag[start..];
        let value = match raw.chars().next() {
            Some(q @ ('"' | '\'')) => raw[1..].split(q).next().unwrap_or(""),
            _ => raw.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or(""),
        };
        return Some(decode_entities(value).trim().to_owned());
    }
    None
}

fn safe_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.contains(|c: char| c.is_whitespace() || c == '(' || c == ')')
}

fn decode_entities(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let entity = tail[1..].find(';').filter(|&end| end <= 10).map(|end| &tail[1..=end]);
        let decoded = entity.and_then(|e| match e {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" | "#39" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => e
                .strip_prefix("#x")
                .or_else(|| e.strip_prefix("#X"))
                .map(|hex| u32::from_str_radix(hex, 16).ok())
                .unwrap_or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        });
        match (entity, decoded) {
            (Some(e), Some(c)) => {
                out.push(c);
                rest = &tail[e.len() + 2..];
            }
            _ => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Trims each line and keeps at most one blank line between paragraphs.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_text;

    #[test]
    fn paragraphs_and_breaks_become_lines() {
        assert_eq!(to_text("<p>Hi Bob,</p><p>Your parcel<br>ships today.</p>"), "Hi Bob,\n\nYour parcel\nships today.");
        assert_eq!(to_text("<ul><li>one</li><li>two</li></ul>"), "- one\n- two");
    }

    #[test]
    fn links_are_kept_as_links_and_scripts_are_dropped() {
        let html = r#"<p>Track it <a href="https://track.example.com/1Z?a=1&amp;b=2" onclick="steal()">here</a>.</p>
            <script>alert(document.cookie)</script><a href="javascript:alert(1)">click</a>
            <img src=x onerror="alert(1)" alt="a label"><style>p{}</style>"#;
        let text = to_text(html);
        assert!(text.contains("[here](https://track.example.com/1Z?a=1&b=2)"), "{text}");
        assert!(!text.contains("alert") && !text.contains("javascript") && !text.contains("onerror"), "{text}");
        assert!(text.contains("click") && text.contains("a label"), "{text}");
    }

    #[test]
    fn entities_are_decoded_once_and_stray_brackets_stay_text() {
        assert_eq!(to_text("5 &lt; 6 &amp;&amp; &#x1F600; &amp;lt;"), "5 < 6 && 😀 &lt;");
        assert_eq!(to_text("a < b"), "a < b");
    }
}
