//! Understanding from meaning: the message's sentence embedding against
//! labelled example phrasings (`prompts/understanding/intents.yaml` and
//! `signals.yaml`), by nearest neighbours. The embedding is the one the
//! turn already made for retrieval: classifying costs dot products, not a
//! second forward pass.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
};

use serde::Serialize;

use super::{Intent, Signal, UnderstandError, head::LinearHead, words::WordIndex};
use crate::knowledge::embeddings::Embedder;

/// The knobs of the classifier, chosen on `eval/messages.yaml` only
/// (`eval --tune` sweeps them); `messages-holdout.yaml` checks the choice.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Params {
    /// Linear heads trained on the examples, or nearest neighbours.
    pub method: Method,
    /// Linear: a message escalates when the chance that it is routine
    /// falls below this.
    pub routine_below: f64,
    /// A class's score is the mean similarity of its `k` nearest examples.
    pub k: usize,
    /// Softmax temperature turning class scores into a confidence.
    pub temperature: f64,
    /// A signal fires when its examples are this much nearer than the
    /// nearest routine ones (negative: a little farther still fires, since
    /// missing an escalation costs more than a needless one).
    pub signal_margin: f64,
    /// The margin for damaged goods, which share their words (the product,
    /// the box, the delivery) with routine order questions.
    pub damaged_margin: f64,
    /// ...and at least this near in absolute terms.
    pub signal_floor: f64,
    /// Neighbours: how much of an example's similarity comes from the words
    /// the message shares with it, the rest from meaning.
    pub word_weight: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Linear,
    Neighbours,
}

impl Default for Params {
    fn default() -> Self {
        // `eval --tune` on messages.yaml: neighbours beat the linear heads
        // on escalation recall at every false-escalation rate tried, and
        // blending in the words beat meaning alone on every figure.
        Self {
            method: Method::Neighbours,
            routine_below: 0.5,
            k: 5,
            temperature: 0.03,
            signal_margin: -0.02,
            damaged_margin: 0.0,
            signal_floor: 0.20,
            word_weight: 0.60,
        }
    }
}

/// What one example teaches: the intent it shows, the signal it carries,
/// or both ("delete my account" is account help that must reach a person).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Label {
    intent: Option<Intent>,
    signal: Option<Signal>,
}

impl Label {
    fn intent(intent: Intent) -> Self {
        // A request for a person carries that signal, and so does anger.
        let signal = match intent {
            Intent::HumanRequest => Some(Signal::HumanRequested),
            Intent::Complaint => Some(Signal::NegativeSentiment),
            _ => None,
        };
        Self { intent: Some(intent), signal }
    }

    fn signal(signal: Signal) -> Self {
        // ...and the other way round; damaged or wrong goods want a remedy
        // (a return, a replacement, a refund); a sensitive topic says
        // nothing of the intent.
        let intent = match signal {
            Signal::HumanRequested => Some(Intent::HumanRequest),
            Signal::NegativeSentiment => Some(Intent::Complaint),
            Signal::DamagedGoods => Some(Intent::ReturnRefund),
            Signal::SensitiveTopic => None,
        };
        Self { intent, signal: Some(signal) }
    }
}

/// The example phrasings, as written.
#[derive(Debug, Clone)]
pub struct Examples {
    texts: Vec<String>,
    labels: Vec<Label>,
}

impl Examples {
    pub fn load(prompts_dir: &Path) -> Result<Self, UnderstandError> {
        let read = |name: &str| -> Result<(PathBuf, String), UnderstandError> {
            let path = prompts_dir.join("understanding").join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| UnderstandError::read(&path, e))?;
            Ok((path, text))
        };
        let (path, text) = read("intents.yaml")?;
        let intents: HashMap<Intent, Vec<String>> =
            serde_yaml::from_str(&text).map_err(|e| UnderstandError::parse(&path, e))?;
        let (path, text) = read("signals.yaml")?;
        let signals: HashMap<Signal, Vec<String>> =
            serde_yaml::from_str(&text).map_err(|e| UnderstandError::parse(&path, e))?;
        let mut pairs: Vec<(String, Label)> = Vec::new();
        let mut intents: Vec<_> = intents.into_iter().collect();
        intents.sort_by_key(|(i, _)| *i);
        for (intent, texts) in intents {
            pairs.extend(texts.into_iter().map(|t| (t, Label::intent(intent))));
        }
        for signal in Signal::PRECEDENCE {
            for text in signals.get(&signal).cloned().unwrap_or_default() {
                // A phrasing listed under an intent and a signal is one
                // example of both, not a routine example against its signal.
                match pairs.iter_mut().find(|(t, _)| *t == text) {
                    Some((_, label)) => label.signal = label.signal.or(Some(signal)),
                    None => pairs.push((text, Label::signal(signal))),
                }
            }
        }
        pairs.retain(|(t, _)| !t.trim().is_empty());
        if pairs.is_empty() {
            return Err(UnderstandError::Invalid("no example phrasings in intents.yaml and signals.yaml".into()));
        }
        let (texts, labels) = pairs.into_iter().unzip();
        Ok(Self { texts, labels })
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Names exactly what a classifier is made of: the model and every example.
    fn fingerprint(&self, model_id: &str) -> String {
        let mut all = model_id.to_owned();
        for (text, label) in self.texts.iter().zip(&self.labels) {
            all.push('\u{1f}');
            all.push_str(&format!("{label:?}"));
            all.push('\u{1f}');
            all.push_str(text);
        }
        crate::knowledge::articles::sha256_hex(all.as_bytes())
    }
}

/// One scored signal, for the admin preview and the decision record.
#[derive(Debug, Clone, Serialize)]
pub struct SignalScore {
    pub signal: Signal,
    /// Linear: the signal's probability. Neighbours: how much nearer its
    /// examples are than the nearest routine ones.
    pub score: f64,
    pub fired: bool,
}

/// A nearby example, to show why a message was read as it was.
#[derive(Debug, Clone, Serialize)]
pub struct Neighbour {
    pub text: String,
    pub intent: Option<Intent>,
    pub signal: Option<Signal>,
    pub similarity: f64,
}

/// What the examples say of one message.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub intent: Intent,
    pub confidence: f64,
    pub signals: Vec<SignalScore>,
    pub neighbours: Vec<Neighbour>,
}

/// The examples embedded by one model, ready to compare messages against.
pub struct Classifier {
    examples: Examples,
    trained: Arc<Trained>,
    pub params: Params,
}

/// What the examples become once embedded: their vectors and two heads,
/// one for the intent and one for the signal (class 0: none).
struct Trained {
    /// Row-major, one unit vector per example.
    vectors: Vec<f32>,
    dimension: usize,
    words: WordIndex,
    labels: Vec<Label>,
    /// Trained on first use: only `Method::Linear` needs them, and the
    /// service runs neighbours, so a start-up does not pay for training.
    heads: OnceLock<Option<Heads>>,
}

struct Heads {
    intent: LinearHead,
    signal: LinearHead,
}

/// Classifiers already made in this process, by fingerprint: every test
/// app (and a restart of the service in one process) reuses them.
static MADE: Mutex<Option<HashMap<String, Arc<Trained>>>> = Mutex::new(None);

/// Held while examples are embedded: apps starting together wait for the
/// first one's classifier instead of each embedding thousands of examples.
static MAKING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Classifier {
    /// Embeds the examples with `embedder` (or reuses the vectors of an
    /// earlier run, in this process or in `cache_dir`).
    pub async fn build(
        examples: Examples,
        embedder: &Embedder,
        cache_dir: Option<&Path>,
    ) -> Result<Self, UnderstandError> {
        let dimension = embedder.dimension();
        let fingerprint = examples.fingerprint(embedder.model_id());
        let _making = MAKING.lock().await;
        let made = MADE.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_default().get(&fingerprint).cloned();
        if let Some(trained) = made {
            return Ok(Self { examples, trained, params: Params::default() });
        }
        let cache_file = cache_dir.map(|d| d.join(format!("understanding-{}.f32", &fingerprint[..16])));
        let vectors = match cache_file.as_deref().and_then(|f| read_vectors(f, examples.len() * dimension)) {
            Some(vectors) => vectors,
            None => {
                let rows =
                    embedder.embed_documents(examples.texts.clone()).await.map_err(UnderstandError::Embedding)?;
                if rows.len() != examples.len() || rows.iter().any(|r| r.len() != dimension) {
                    return Err(UnderstandError::Invalid("the model returned vectors of the wrong shape".into()));
                }
                let vectors: Vec<f32> = rows.into_iter().flatten().collect();
                if let Some(file) = &cache_file {
                    write_vectors(file, &vectors);
                }
                vectors
            }
        };
        let words = WordIndex::build(&examples.texts);
        let trained =
            Arc::new(Trained { vectors, dimension, words, labels: examples.labels.clone(), heads: OnceLock::new() });
        MADE.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_default().insert(fingerprint, trained.clone());
        Ok(Self { examples, trained, params: Params::default() })
    }

    /// The same examples and vectors with other knobs (`eval --tune`).
    pub fn clone_with(&self, params: Params) -> Self {
        Self { examples: self.examples.clone(), trained: self.trained.clone(), params }
    }

    pub fn example_count(&self) -> usize {
        self.examples.len()
    }

    /// Reads a message by its unit-length embedding, and the embeddings of
    /// its sentences: a complaint or a request for a person buried in a long
    /// message is plain in its own sentence, so a signal fires when it fires
    /// for the whole or for any sentence. The intent is the whole's. The
    /// words blended in are the whole message's (`text`), for every scan.
    pub fn judge(&self, text: &str, query: &[f32], sentences: &[Vec<f32>]) -> Judgement {
        let queries: Vec<&[f32]> = std::iter::once(query).chain(sentences.iter().map(Vec::as_slice)).collect();
        let words = (self.params.word_weight > 0.0).then(|| self.trained.words.similarities(text));
        let mut scans = self.scan(&queries, words.as_deref()).into_iter();
        let whole = scans.next().expect("one scan per query");
        let mut signals = self.signals(&whole, query);
        for (scan, sentence) in scans.zip(sentences) {
            for (mine, theirs) in signals.iter_mut().zip(self.signals(&scan, sentence)) {
                mine.score = mine.score.max(theirs.score);
                mine.fired |= theirs.fired;
            }
        }
        let intent_probabilities = match self.heads() {
            Some(heads) => heads.intent.probabilities(query),
            None => {
                let scores: Vec<f64> = whole.intents.iter().map(Nearest::mean).collect();
                let max = scores.iter().copied().fold(f64::MIN, f64::max);
                let weights: Vec<f64> = scores.iter().map(|s| ((s - max) / self.params.temperature).exp()).collect();
                let total: f64 = weights.iter().sum();
                weights.into_iter().map(|w| w / total).collect()
            }
        };
        let best = (0..intent_probabilities.len())
            .max_by(|&a, &b| intent_probabilities[a].total_cmp(&intent_probabilities[b]))
            .unwrap_or(Intent::ALL.len() - 1);
        let labels = &self.examples.labels;
        let neighbours = whole
            .neighbours
            .best
            .iter()
            .map(|&(similarity, i)| Neighbour {
                text: self.examples.texts[i].clone(),
                intent: labels[i].intent,
                signal: labels[i].signal,
                similarity,
            })
            .collect();
        Judgement { intent: Intent::ALL[best], confidence: intent_probabilities[best], signals, neighbours }
    }

    /// The heads, when the knobs ask for them and they could be trained.
    fn heads(&self) -> Option<&Heads> {
        match self.params.method {
            Method::Linear => self.trained.heads(),
            Method::Neighbours => None,
        }
    }

    /// The `k` nearest examples of every class, for each query: one pass
    /// over the examples for all of them (the whole message and its
    /// sentences), no sort. `words`: each example's word similarity, to
    /// blend in.
    fn scan(&self, queries: &[&[f32]], words: Option<&[f32]>) -> Vec<Scan> {
        let k = self.params.k;
        let w = self.params.word_weight;
        let mut scans: Vec<Scan> = queries
            .iter()
            .map(|_| Scan {
                intents: vec![Nearest::new(k); Intent::ALL.len()],
                signals: vec![Nearest::new(k); Signal::PRECEDENCE.len()],
                routine: Nearest::new(k),
                neighbours: Nearest::new(5),
            })
            .collect();
        for (i, row) in self.trained.vectors.chunks_exact(self.trained.dimension).enumerate() {
            let label = self.examples.labels[i];
            for (scan, query) in scans.iter_mut().zip(queries) {
                let meaning = f64::from(dot(row, query));
                let similarity = match words {
                    Some(words) => (1.0 - w) * meaning + w * f64::from(words[i]),
                    None => meaning,
                };
                if let Some(intent) = label.intent {
                    scan.intents[intent as usize].offer(similarity, i);
                }
                match label.signal {
                    Some(signal) => scan.signals[signal as usize].offer(similarity, i),
                    None => scan.routine.offer(similarity, i),
                }
                scan.neighbours.offer(similarity, i);
            }
        }
        scans
    }

    /// Every signal's score for one embedding (`scan` is its scan).
    fn signals(&self, scan: &Scan, query: &[f32]) -> Vec<SignalScore> {
        let Params { routine_below, signal_margin, damaged_margin, signal_floor, .. } = self.params;
        if let Some(heads) = self.heads() {
            let p = heads.signal.probabilities(query);
            // Escalate when "routine" is unlikely; the likeliest signal names why.
            let escalate = p[0] < routine_below;
            let likeliest = (1..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(1);
            return Signal::PRECEDENCE
                .iter()
                .map(|&signal| {
                    let class = signal as usize + 1;
                    SignalScore { signal, score: p[class], fired: escalate && class == likeliest }
                })
                .collect();
        }
        let routine = scan.routine.mean();
        Signal::PRECEDENCE
            .iter()
            .map(|&signal| {
                let nearest = scan.signals[signal as usize].mean();
                let margin = nearest - routine;
                let needed = if signal == Signal::DamagedGoods { damaged_margin } else { signal_margin };
                SignalScore { signal, score: margin, fired: margin > needed && nearest >= signal_floor }
            })
            .collect()
    }
}

/// The nearest examples of one embedding, by class.
struct Scan {
    intents: Vec<Nearest>,
    signals: Vec<Nearest>,
    /// Examples that carry no signal.
    routine: Nearest,
    /// Of any class, to show why a message was read as it was.
    neighbours: Nearest,
}

/// The `k` highest similarities offered so far, highest first.
#[derive(Clone)]
struct Nearest {
    k: usize,
    best: Vec<(f64, usize)>,
}

impl Nearest {
    fn new(k: usize) -> Self {
        Self { k: k.max(1), best: Vec::with_capacity(k.max(1) + 1) }
    }

    fn offer(&mut self, similarity: f64, index: usize) {
        if self.best.len() == self.k && self.best.last().is_some_and(|(s, _)| *s >= similarity) {
            return;
        }
        let at = self.best.partition_point(|(s, _)| *s >= similarity);
        self.best.insert(at, (similarity, index));
        self.best.truncate(self.k);
    }

    /// A class with no examples scores below any real similarity.
    fn mean(&self) -> f64 {
        if self.best.is_empty() {
            return -1.0;
        }
        self.best.iter().map(|(s, _)| s).sum::<f64>() / self.best.len() as f64
    }
}

impl Trained {
    fn heads(&self) -> Option<&Heads> {
        self.heads
            .get_or_init(|| match Heads::train(&self.vectors, self.dimension, &self.labels) {
                Ok(heads) => Some(heads),
                Err(error) => {
                    tracing::warn!(%error, "linear heads unavailable; reading by nearest neighbours");
                    None
                }
            })
            .as_ref()
    }
}

impl Heads {
    /// Enum order is class order: `Intent::ALL` and `Signal::PRECEDENCE`
    /// list their variants as declared, so `variant as usize` is the class.
    fn train(vectors: &[f32], dimension: usize, labels: &[Label]) -> Result<Self, UnderstandError> {
        let rows = |keep: &dyn Fn(&Label) -> Option<u32>| -> (Vec<f32>, Vec<u32>) {
            let mut xs = Vec::new();
            let mut ys = Vec::new();
            for (row, label) in vectors.chunks_exact(dimension).zip(labels) {
                if let Some(class) = keep(label) {
                    xs.extend_from_slice(row);
                    ys.push(class);
                }
            }
            (xs, ys)
        };
        let (xs, ys) = rows(&|l| l.intent.map(|i| i as u32));
        let intent = LinearHead::train(&xs, dimension, &ys, Intent::ALL.len())?;
        let (xs, ys) = rows(&|l| Some(l.signal.map_or(0, |s| s as u32 + 1)));
        let signal = LinearHead::train(&xs, dimension, &ys, Signal::PRECEDENCE.len() + 1)?;
        Ok(Self { intent, signal })
    }
}

/// `a · b` summed in sixteen lanes: a plain running sum must add in order,
/// which keeps the compiler from using vector instructions; the scan over
/// every example is this, thousands of times a message.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let ((a_blocks, a_tail), (b_blocks, b_tail)) = (a.as_chunks::<16>(), b.as_chunks::<16>());
    let mut lanes = [0f32; 16];
    for (x, y) in a_blocks.iter().zip(b_blocks) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

fn read_vectors(path: &Path, floats: usize) -> Option<Vec<f32>> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() != floats * 4 {
        return None;
    }
    Some(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// Best effort: without the file the next start embeds the examples again.
fn write_vectors(path: &Path, vectors: &[f32]) {
    let bytes: Vec<u8> = vectors.iter().flat_map(|v| v.to_le_bytes()).collect();
    let written = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| {
        let temp = path.with_extension("tmp");
        std::fs::write(&temp, bytes)?;
        std::fs::rename(temp, path)
    });
    if let Err(error) = written {
        tracing::warn!(%error, path = %path.display(), "could not cache the example vectors");
    }
}

#[cfg(test)]
mod tests {
    use super::dot;

    #[test]
    fn the_lane_wise_dot_product_is_the_dot_product() {
        for len in [0, 1, 15, 16, 17, 384, 390] {
            let a: Vec<f32> = (0..len).map(|i| ((i * 7 % 13) as f32 - 6.0) / 10.0).collect();
            let b: Vec<f32> = (0..len).map(|i| ((i * 5 % 11) as f32 - 5.0) / 10.0).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-4, "length {len}: {} vs {plain}", dot(&a, &b));
        }
    }
}
