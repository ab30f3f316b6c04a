//! Knowledge-base files: Markdown with a YAML front-matter block (PROTOCOL.md §5).

use std::path::Path;

use serde::Deserialize;

/// Files larger than this are refused: a knowledge article is prose, and a
/// huge file is almost certainly a mistake (an export, a binary).
pub(crate) const MAX_FILE_BYTES: u64 = 512 * 1024;

#[derive(Debug, Clone)]
pub struct Article {
    /// The file name without `.md`: stable across edits, used in citations.
    pub id: String,
    pub title: String,
    pub tags: Vec<String>,
    pub locale: String,
    pub url: Option<String>,
    pub body: String,
}

/// An article read from a file, with the hash of the file's bytes: import
/// compares it to decide whether the file changed since it last ran.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub article: Article,
    pub file_hash: String,
}

/// A file that was skipped, and why, so the operator can fix it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportProblem {
    pub file: String,
    pub reason: String,
}

#[derive(Deserialize)]
struct FrontMatter {
    title: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default = "default_locale")]
    locale: String,
    url: Option<String>,
}

fn default_locale() -> String {
    "en".into()
}

/// Loads every `*.md` file in `dir`, in name order. A bad file is reported
/// and skipped; it never stops the others from loading.
pub fn load_dir(dir: &Path) -> std::io::Result<(Vec<SourceFile>, Vec<ImportProblem>)> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    paths.sort();

    let mut articles = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match read_article(&path) {
            Ok(article) => articles.push(article),
            Err(reason) => problems.push(ImportProblem { file, reason }),
        }
    }
    Ok((articles, problems))
}

fn read_article(path: &Path) -> Result<SourceFile, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > MAX_FILE_BYTES {
        return Err(format!("file is {size} bytes; the limit is {MAX_FILE_BYTES}"));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let file_hash = sha256_hex(&bytes);
    let text = String::from_utf8(bytes).map_err(|_| "file is not UTF-8 text".to_owned())?;
    let id = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if !is_valid_id(&id) {
        return Err("the file name must be lowercase letters, digits and dashes (it becomes the article id)".into());
    }
    Ok(SourceFile { article: parse_article(&id, &text)?, file_hash })
}

/// Article ids are slugs: they appear in URLs and citations.
pub fn is_valid_id(id: &str) -> bool {
    (1..=100).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Why an article whose body leaves an HTML comment open is refused.
pub(crate) fn unclosed_comment_reason(line: usize) -> String {
    format!(
        "the HTML comment opened on line {line} of the body is never closed with `-->`: everything after it would be hidden"
    )
}

/// Parses one file's text; public to the crate so tests can feed it garbage.
pub(crate) fn parse_article(id: &str, text: &str) -> Result<Article, String> {
    if text.contains('\0') {
        return Err("file looks binary".into());
    }
    let text = text.trim_start_matches('\u{feff}');
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
        .ok_or("missing front matter: the file must start with a `---` line")?;
    let end = rest.find("\n---").ok_or("front matter is not closed by a `---` line")?;
    let (yaml, body) = (&rest[..end], &rest[end + 4..]);
    let front: FrontMatter = serde_yaml::from_str(yaml).map_err(|e| format!("bad front matter: {e}"))?;
    let body = body.trim_start_matches(['-', '\r', '\n']).trim().to_owned();
    if front.title.trim().is_empty() {
        return Err("front matter has an empty title".into());
    }
    if body.is_empty() {
        return Err("article body is empty".into());
    }
    if let Some(line) = super::chunking::unclosed_comment(&body) {
        return Err(unclosed_comment_reason(line));
    }
    Ok(Article {
        id: id.to_owned(),
        title: front.title.trim().to_owned(),
        tags: front.tags,
        locale: front.locale,
        url: front.url.filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_article_parses() {
        let a = parse_article("returns", "---\ntitle: Returns\ntags: [returns]\n---\nThirty days.\n").unwrap();
        assert_eq!((a.title.as_str(), a.body.as_str(), a.locale.as_str()), ("Returns", "Thirty days.", "en"));
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        for (text, reason) in [
            ("no front matter", "missing front matter"),
            ("---\ntitle: x\n", "not closed"),
            ("---\ntitle: [unclosed\n---\nbody", "bad front matter"),
            ("---\ntags: [a]\n---\nbody", "bad front matter"),
            ("---\ntitle: Empty\n---\n  \n", "body is empty"),
            ("---\ntitle: Bin\n---\n\0\0", "binary"),
            (
                "---\ntitle: Open\n---\nHours.\n<!-- customers ask:\n- when\n## Phone\nCall.",
                "line 2 of the body is never closed",
            ),
        ] {
            let err = parse_article("x", text).unwrap_err();
            assert!(err.contains(reason), "{text:?} gave {err:?}");
        }
    }
}
