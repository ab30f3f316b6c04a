//! Splitting an article into chunks that each answer one thing: sections at
//! Markdown headings, then blocks (paragraphs, whole lists, whole tables)
//! packed up to a size. A list is never cut from the sentence that
//! introduces it, and every chunk carries its article's title and heading,
//! which is what lets "how long until I get my money back" find a passage
//! that only says "5–10 business days" under "How long does a refund take?".

use super::Article;

/// A section longer than this is split at block boundaries, so one chunk
/// answers one thing, the excerpt stays short, and the text fits the
/// embedding model's window (256 word pieces for all-MiniLM-L6-v2).
const MAX_CHUNK_CHARS: usize = 900;

#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub article_id: String,
    /// Position within the article, from 0: with the id, the chunk's key.
    pub ordinal: usize,
    pub title: String,
    pub url: Option<String>,
    pub tags: Vec<String>,
    /// The nearest heading above the text, if any.
    pub heading: Option<String>,
    pub text: String,
    /// Ways customers ask what this section answers, from a
    /// `<!-- customers ask: -->` comment under its heading ([`ASKS_MARKER`]).
    pub asks: Vec<String>,
}

impl Chunk {
    /// What an embedding model sees: the title and heading say what the
    /// text is about even when the text itself never names it.
    pub fn embedding_text(&self) -> String {
        match &self.heading {
            Some(heading) if heading != &self.title => format!("{}: {}\n{}", self.title, heading, self.text),
            _ => format!("{}\n{}", self.title, self.text),
        }
    }

    /// The questions this chunk answers, as customers would put them: its
    /// heading and the section's `customers ask` list.
    pub fn questions(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(heading_text(&self.title, self.heading.as_deref())).chain(self.asks.iter().cloned())
    }
}

/// Opens an HTML comment (hidden from customers) listing, one `- ` item a
/// line, ways customers ask what the section answers.
pub const ASKS_MARKER: &str = "customers ask:";

/// What a passage's heading says it answers, to embed alone: most headings
/// are the very question their section answers ("How long do I have to
/// return something?"), and a question is nearer a question than a passage.
pub fn heading_text(title: &str, heading: Option<&str>) -> String {
    match heading {
        Some(heading) if heading != title => format!("{title}: {heading}"),
        _ => title.to_owned(),
    }
}

pub fn chunk_article(article: &Article) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    for Section { heading, blocks, asks } in sections(&article.body).0 {
        let mut current = String::new();
        let mut flush = |current: &mut String| {
            if !current.is_empty() {
                chunks.push(Chunk {
                    article_id: article.id.clone(),
                    ordinal: chunks.len(),
                    title: article.title.clone(),
                    url: article.url.clone(),
                    tags: article.tags.clone(),
                    heading: heading.clone(),
                    text: std::mem::take(current),
                    asks: asks.clone(),
                });
            }
        };
        for block in blocks {
            if !current.is_empty() && current.len() + block.len() > MAX_CHUNK_CHARS {
                flush(&mut current);
            }
            if !current.is_empty() {
                current.push_str("\n\n");
            }
            current.push_str(&block);
        }
        flush(&mut current);
    }
    chunks
}

/// The part of a body between two headings.
#[derive(Default)]
struct Section {
    heading: Option<String>,
    blocks: Vec<String>,
    asks: Vec<String>,
}

/// The line (from 1) of an HTML comment the body never closes. Everything
/// after it would be hidden from customers, so an article with one is
/// refused rather than silently cut short.
pub fn unclosed_comment(body: &str) -> Option<usize> {
    sections(body).1
}

/// The body's sections, and the line of a comment left open. HTML comments
/// are not for customers and never reach a chunk's text; a
/// `customers ask:` one gives its section's asks.
fn sections(body: &str) -> (Vec<Section>, Option<usize>) {
    let mut sections = vec![Section::default()];
    let mut block = String::new();
    let mut in_fence = false;
    // Inside a comment: whether it lists asks, and the line it opened on.
    let mut comment: Option<(bool, usize)> = None;
    for (number, line) in (1..).zip(body.lines()) {
        let trimmed = line.trim();
        if let Some((asks, _)) = comment {
            let (content, closed) = match trimmed.split_once("-->") {
                Some((content, _)) => (content.trim(), true),
                None => (trimmed, false),
            };
            if let Some(ask) = content.strip_prefix("- ").map(str::trim).filter(|a| asks && !a.is_empty()) {
                sections.last_mut().expect("there is always a section").asks.push(ask.to_owned());
            }
            if closed {
                comment = None;
            }
            continue;
        }
        if trimmed.starts_with("```") {
            in_fence = !in_fence;
        }
        if !in_fence && let Some(opened) = trimmed.strip_prefix("<!--") {
            end_block(&mut block, &mut sections);
            let asks = opened.trim_start().to_lowercase().starts_with(ASKS_MARKER);
            if !opened.contains("-->") {
                comment = Some((asks, number));
            }
        } else if !in_fence && let Some(heading) = trimmed.strip_prefix('#') {
            end_block(&mut block, &mut sections);
            let heading = heading.trim_start_matches('#').trim().to_owned();
            sections.push(Section { heading: Some(heading), ..Section::default() });
        } else if !in_fence && trimmed.is_empty() {
            end_block(&mut block, &mut sections);
        } else {
            if !block.is_empty() {
                block.push('\n');
            }
            block.push_str(line.trim_end());
        }
    }
    end_block(&mut block, &mut sections);
    sections.retain(|s| !s.blocks.is_empty());
    (sections, comment.map(|(_, line)| line))
}

/// Ends the block being read. A list item or table row continues the
/// list or table before it, and a list joins the line that introduces it.
fn end_block(block: &mut String, sections: &mut [Section]) {
    let text = std::mem::take(block);
    if text.is_empty() {
        return;
    }
    let Some(Section { blocks, .. }) = sections.last_mut() else { return };
    let joins_previous = is_list_or_table(&text)
        && blocks.last().is_some_and(|prev: &String| is_list_or_table(prev) || prev.trim_end().ends_with(':'));
    match blocks.last_mut() {
        Some(prev) if joins_previous => {
            prev.push_str("\n\n");
            prev.push_str(&text);
        }
        _ => blocks.push(text),
    }
}

fn is_list_or_table(block: &str) -> bool {
    let first = block.trim_start();
    first.starts_with("- ")
        || first.starts_with("* ")
        || first.starts_with('|')
        || first.split_once(". ").is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::articles::parse_article;

    fn chunks(body: &str) -> Vec<Chunk> {
        chunk_article(&parse_article("a", &format!("---\ntitle: Refunds\n---\n{body}")).unwrap())
    }

    #[test]
    fn headings_start_chunks_and_the_title_travels_with_each() {
        let c = chunks("# Refunds\nIntro.\n\n## How long?\nAbout a week.\n\n## Where to?\nYour card.");
        let headings: Vec<_> = c.iter().map(|c| c.heading.as_deref()).collect();
        assert_eq!(headings, [Some("Refunds"), Some("How long?"), Some("Where to?")]);
        assert_eq!(c[1].embedding_text(), "Refunds: How long?\nAbout a week.");
        assert_eq!(c.iter().map(|c| c.ordinal).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn a_list_stays_with_the_sentence_that_introduces_it() {
        let long = "word ".repeat(178);
        let c = chunks(&format!("## Steps\n{long}\n\nDo this:\n\n1. First.\n\n2. Second.\n\n- a\n- b"));
        assert_eq!(c.len(), 2, "{c:#?}");
        assert!(c[1].text.starts_with("Do this:") && c[1].text.ends_with("- b"), "{}", c[1].text);
    }

    #[test]
    fn a_customers_ask_comment_gives_the_sections_asks_and_no_comment_reaches_the_text() {
        let body = "## How long?\n<!-- customers ask:\n- how many days\n- return window?\n-->\nThirty days.\n\n\
                    <!-- a note for editors -->\n<!-- and one\n- over lines -->\n\n## Where to?\nYour card.";
        let c = chunks(body);
        assert_eq!(c.len(), 2, "{c:#?}");
        assert_eq!(c[0].text, "Thirty days.");
        assert_eq!(c[0].asks, ["how many days", "return window?"]);
        assert_eq!(c[0].questions().collect::<Vec<_>>(), ["Refunds: How long?", "how many days", "return window?"]);
        assert!(c[1].asks.is_empty() && c[1].text == "Your card.", "{c:#?}");
    }

    #[test]
    fn a_comment_left_open_is_found_by_its_line() {
        assert_eq!(
            unclosed_comment("## Hours\nNine to five.\n<!-- customers ask:\n- when are you open\n\n## Phone\nCall us."),
            Some(3)
        );
        assert_eq!(unclosed_comment("<!-- a note -->\nText.\n<!-- two\nlines -->"), None);
        assert_eq!(unclosed_comment("```\n<!--\n```\nText."), None, "inside a code fence it is text");
    }

    #[test]
    fn long_sections_split_at_block_boundaries() {
        let para = "sentence ".repeat(60);
        let c = chunks(&format!("## Long\n{para}\n\n{para}\n\n{para}"));
        assert!(c.len() >= 2 && c.iter().all(|c| c.text.len() <= MAX_CHUNK_CHARS), "{c:#?}");
    }
}
