//! Reply templates from `PROMPTS_DIR/replies/*.txt`, rendered with minijinja.
//! Wording belongs to the store, not to the code: every customer-facing
//! sentence the deterministic assistant says lives in those files.

use std::path::Path;

use minijinja::Environment;
use serde::Serialize;

/// Every template the assistant uses; start-up fails if one is missing or
/// does not compile, rather than a customer finding out mid-conversation.
pub const REQUIRED: &[&str] = &[
    "ai_disclosure",
    "suggest_article",
    "greeting",
    "verify_required",
    "order_status",
    "order_not_found",
    "no_orders",
    "order_change",
    "product_answer",
    "product_not_found",
    "knowledge_answer",
    "knowledge_overview",
    "unknown",
    "handoff",
    "handoff_already",
    "store_unavailable",
    "clarify",
    "clarify_article",
    "return_window",
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("template `{name}` is missing from {dir}")]
    Missing { name: &'static str, dir: String },
    #[error("template `{name}` does not compile: {source}")]
    Compile { name: String, source: minijinja::Error },
}

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn load(prompts_dir: &Path) -> Result<Self, TemplateError> {
        let dir = prompts_dir.join("replies");
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        for name in REQUIRED {
            let path = dir.join(format!("{name}.txt"));
            if !path.exists() {
                return Err(TemplateError::Missing { name, dir: dir.display().to_string() });
            }
            let source = std::fs::read_to_string(&path)
                .map_err(|source| TemplateError::Read { path: path.display().to_string(), source })?;
            env.add_template_owned(name.to_string(), source.trim_end().to_owned())
                .map_err(|source| TemplateError::Compile { name: name.to_string(), source })?;
        }
        Ok(Self { env })
    }

    /// Renders `name`. A template that fails at render time is a store
    /// wording bug: it is logged, and the customer gets a plain fallback.
    pub fn render(&self, name: &str, context: impl Serialize) -> String {
        let rendered = self.env.get_template(name).and_then(|t| t.render(context));
        match rendered {
            Ok(text) => text.trim().to_owned(),
            Err(error) => {
                tracing::error!(template = name, %error, "reply template failed to render");
                "Sorry, something went wrong on our side. You can ask to talk to a person at any time.".into()
            }
        }
    }
}
