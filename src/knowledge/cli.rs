//! The knowledge-base commands: `kb import`, `kb reindex`, `kb eval` and
//! `kb bench`. They print for a person at a terminal, with progress bars.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};

use super::{
    KnowledgeBase, Ranking,
    embeddings::{fetch, local::LocalModel},
    eval,
};
use crate::{config::Settings, db::Db};

pub fn bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(&format!("{label} [{{bar:30}}] {{pos}}/{{len}} {{msg}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

async fn open(settings: &Settings) -> anyhow::Result<KnowledgeBase> {
    let db = Db::connect(&settings.database_url).await?;
    db.migrate().await?;
    Ok(super::startup::open(settings, db, true).await?)
}

/// `kb import`: the same idempotent import the service runs at start.
pub async fn import(settings: &Settings) -> anyhow::Result<()> {
    let kb = open(settings).await?;
    let progress = bar("importing");
    let report = kb.import_dir(&settings.knowledge_dir, &progress).await?;
    progress.finish_and_clear();
    for problem in &report.skipped {
        println!("skipped {}: {}", problem.file, problem.reason);
    }
    println!(
        "imported {}: {} new, {} updated, {} unchanged, {} skipped",
        settings.knowledge_dir.display(),
        report.created.len(),
        report.updated.len(),
        report.unchanged,
        report.skipped.len()
    );
    Ok(())
}

/// `kb reindex`: rebuilds the vector index from the database.
pub async fn reindex(settings: &Settings) -> anyhow::Result<()> {
    let kb = open(settings).await?;
    let progress = bar("re-embedding");
    let count = kb.reindex(true, &progress).await?;
    progress.finish_and_clear();
    let mode = if kb.dense().is_some() { "dense + lexical" } else { "lexical only" };
    println!("re-indexed {count} published articles ({mode})");
    Ok(())
}

/// A knowledge base over `KNOWLEDGE_DIR` alone, in a scratch directory: the
/// evaluation and benchmark never touch the service's own data. The model
/// still comes from (or is fetched once into) the real `DATA_DIR`.
pub async fn scratch(settings: &Settings, scratch: &Path) -> anyhow::Result<(KnowledgeBase, Duration)> {
    let mut settings = settings.clone();
    if settings.embedding_model_dir.is_none() {
        let dir = fetch::default_model_dir(&settings.data_dir);
        fetch::ensure_model(&dir, true).await?;
        settings.embedding_model_dir = Some(dir);
    }
    settings.data_dir = scratch.to_owned();
    settings.database_url = format!("sqlite://{}/kb.db", scratch.display());
    let kb = open(&settings).await?;
    let started = Instant::now();
    kb.import_dir(&settings.knowledge_dir, &ProgressBar::hidden()).await?;
    Ok((kb, started.elapsed()))
}

/// `kb eval`: recall@1, recall@3 and MRR of each ranking over labelled sets.
pub async fn evaluate(settings: &Settings, sets: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (kb, _) = scratch(settings, dir.path()).await?;
    for path in sets {
        let cases = eval::load_cases(path).map_err(anyhow::Error::msg)?;
        println!("{}: {} questions over {}", path.display(), cases.len(), settings.knowledge_dir.display());
        println!("  {:<8} {:>9} {:>9} {:>6} {:>9}", "ranking", "recall@1", "recall@3", "MRR", "answered");
        let rankings = [
            ("lexical", Ranking::Lexical),
            ("sparse", Ranking::Sparse),
            ("dense", Ranking::Dense),
            ("rrf", Ranking::Rrf),
            ("hybrid", Ranking::Hybrid),
        ];
        for (name, ranking) in rankings {
            if ranking != Ranking::Lexical && kb.dense().is_none() {
                println!("  {name:<8} (no embedding model)");
                continue;
            }
            let s = eval::evaluate(&kb, &cases, ranking).await?;
            println!("  {name:<8} {:>9.3} {:>9.3} {:>6.3} {:>9.3}", s.recall_at_1, s.recall_at_3, s.mrr, s.answered);
        }
    }
    Ok(())
}

/// `kb bench`: import throughput, then the latency of whole retrievals
/// (query embedding included) and of their parts.
pub async fn bench(settings: &Settings, cases: &Path, rounds: usize) -> anyhow::Result<()> {
    let cases = eval::load_cases(cases).map_err(anyhow::Error::msg)?;
    let dir = tempfile::tempdir()?;
    let (kb, import_time) = scratch(settings, dir.path()).await?;
    let chunks = kb.lexical_index().chunks().len();
    println!(
        "import: {} articles, {chunks} chunks in {:.0} ms ({:.1} chunks/s, embedding included)",
        kb.article_count(),
        import_time.as_secs_f64() * 1e3,
        chunks as f64 / import_time.as_secs_f64()
    );
    let questions: Vec<&str> = cases.iter().map(|c| c.question.as_str()).collect();
    let report = |name: &str, mut samples: Vec<Duration>| {
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
        println!("{name:<28} p50 {:>7.2} ms   p99 {:>7.2} ms   (n={})", at(0.5), at(0.99), samples.len());
    };
    let time = |samples: &mut Vec<Duration>, started: Instant| samples.push(started.elapsed());

    let mut lexical = Vec::new();
    for _ in 0..rounds {
        for q in &questions {
            let started = Instant::now();
            kb.search_ranked(q, None, 3, Ranking::Lexical).await?;
            time(&mut lexical, started);
        }
    }
    report("lexical search", lexical);
    let Some(dense) = kb.dense() else {
        println!("no embedding model: dense figures skipped");
        return Ok(());
    };
    let (mut embed, mut hybrid) = (Vec::new(), Vec::new());
    let (mut tokenize, mut forward, mut pool, mut tokens) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for _ in 0..rounds {
        for q in &questions {
            let started = Instant::now();
            match dense.embedder().local() {
                Some(model) => {
                    let (_, timings) = model.embed_query_timed(q)?;
                    tokenize.push(timings.tokenize);
                    forward.push(timings.forward);
                    pool.push(timings.pool);
                    tokens += timings.tokens;
                }
                None => drop(dense.embedder().embed_query((*q).to_owned()).await?),
            }
            time(&mut embed, started);
            let started = Instant::now();
            kb.search_ranked(q, None, 3, Ranking::Hybrid).await?;
            time(&mut hybrid, started);
        }
    }
    report("query embedding alone", embed);
    if !forward.is_empty() {
        println!("  of which ({:.1} tokens per question on average):", tokens as f64 / forward.len() as f64);
        report("  tokenizer", tokenize);
        report("  model forward pass", forward);
        report("  pooling + normalising", pool);
    }
    report("hybrid retrieval (whole)", hybrid);
    compare_weight_layouts(settings, &questions, rounds)?;
    if let Some(model) = dense.embedder().local() {
        compare_batch_sizes(model, &questions, rounds)?;
    }
    Ok(())
}

/// What a message costs when it shares its forward pass with others, as the
/// service's batcher lets messages that arrive together do: every batch size
/// in turn within each round, so all see the same machine.
fn compare_batch_sizes(model: &LocalModel, questions: &[&str], rounds: usize) -> anyhow::Result<()> {
    const SIZES: [usize; 6] = [1, 2, 4, 8, 16, 32];
    let mut per_message: Vec<Vec<f64>> = vec![Vec::new(); SIZES.len()];
    for _ in 0..rounds {
        for (samples, size) in per_message.iter_mut().zip(SIZES) {
            for batch in questions.chunks(size).filter(|b| b.len() == size) {
                let started = Instant::now();
                model.embed_messages(batch)?;
                samples.push(started.elapsed().as_secs_f64() * 1e3 / size as f64);
            }
        }
    }
    println!("one message's share of a batched forward pass, p50 (questions in file order):");
    let alone = median(&mut per_message[0]);
    for (samples, size) in per_message.iter_mut().zip(SIZES) {
        let share = median(samples);
        println!("  batch of {size:>2}: {share:>6.2} ms a message ({:.2}x one alone)", alone / share);
    }
    Ok(())
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The local model's forward pass with its weights as stored in the file
/// and as the service holds them, question by question in turn, so both see
/// the same machine: a ratio that survives a noisy neighbour.
fn compare_weight_layouts(settings: &Settings, questions: &[&str], rounds: usize) -> anyhow::Result<()> {
    use super::embeddings::local::WeightLayout;
    let dir = settings.embedding_model_dir.clone().unwrap_or_else(|| fetch::default_model_dir(&settings.data_dir));
    if settings.embeddings != crate::config::EmbeddingsMode::Local || !fetch::is_complete(&dir) {
        return Ok(());
    }
    let (stored, transposed) = (LocalModel::load_with_layout(&dir, WeightLayout::AsStored)?, LocalModel::load(&dir)?);
    let (mut as_stored, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for q in questions {
            as_stored.push(stored.embed_query_timed(q)?.1.forward);
            ours.push(transposed.embed_query_timed(q)?.1.forward);
        }
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    let (before, after) = (median(as_stored), median(ours));
    println!(
        "forward pass p50, weights as stored {before:.2} ms vs transposed in memory {after:.2} ms ({:.2}x faster)",
        before / after
    );
    Ok(())
}
