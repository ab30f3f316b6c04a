//! A BERT-family sentence model (all-MiniLM-L6-v2 by default) run in-process
//! with candle on the CPU, mean-pooled over real tokens only and normalised.
//!
//! Documents are embedded in batches padded to their longest member; a
//! single query is not padded at all. The model's own `tokenizer.json` pads
//! everything to 128 tokens, which would make a short question cost as much
//! as a long one (and, pooled without the mask, would drown its meaning in
//! padding).

use std::{
    path::Path,
    time::{Duration, Instant},
};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::{EmbeddingError, MessageEmbedding, normalise};

/// all-MiniLM-L6-v2 was trained on up to 256 word pieces; longer input is cut.
const MAX_TOKENS: usize = 256;
/// A sentence shorter than this ("Hi.", "Thanks!") says too little to be
/// read on its own.
const MIN_SENTENCE_TOKENS: usize = 3;
/// Documents per forward pass: big enough to amortise, small enough that
/// padding to the longest in the batch wastes little.
const BATCH: usize = 16;

pub struct LocalModel {
    bert: BertModel,
    /// Pads a batch to its longest member.
    batch_tokenizer: Tokenizer,
    /// Never pads: one query is its own length.
    query_tokenizer: Tokenizer,
    pub(super) id: String,
    pub(super) dimension: usize,
}

/// How linear layers' weights sit in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightLayout {
    /// As in the file: `[out, in]`, repacked by the matrix library per call.
    AsStored,
    /// `[in, out]` in memory (see [`transposed_storage`]): what the service uses.
    Transposed,
}

/// Where one query's embedding time goes (`kb bench`).
#[derive(Debug, Clone, Copy)]
pub struct QueryTimings {
    pub tokens: usize,
    pub tokenize: Duration,
    pub forward: Duration,
    pub pool: Duration,
}

impl LocalModel {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, EmbeddingError> {
        Self::load_with_layout(dir, WeightLayout::Transposed)
    }

    /// [`Self::load`] with a chosen weight layout (`kb bench` compares them).
    pub fn load_with_layout(dir: &Path, layout: WeightLayout) -> Result<Self, EmbeddingError> {
        let load_err = |reason: String| EmbeddingError::Load { path: dir.display().to_string(), reason };
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| load_err(format!("{name}: {e}")));
        let config_bytes = read("config.json")?;
        let config: Config =
            serde_json::from_slice(&config_bytes).map_err(|e| load_err(format!("config.json: {e}")))?;
        let tokenizer_bytes = read("tokenizer.json")?;
        let mut query_tokenizer =
            Tokenizer::from_bytes(&tokenizer_bytes).map_err(|e| load_err(format!("tokenizer.json: {e}")))?;
        query_tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..TruncationParams::default() }))
            .map_err(|e| load_err(format!("tokenizer.json: {e}")))?;
        query_tokenizer.with_padding(None);
        let mut batch_tokenizer = query_tokenizer.clone();
        batch_tokenizer
            .with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..PaddingParams::default() }));

        let weights = dir.join("model.safetensors");
        let size = std::fs::metadata(&weights).map_err(|e| load_err(format!("model.safetensors: {e}")))?.len();
        let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu)?;
        for (name, tensor) in &mut tensors {
            let linear = tensor.rank() == 2 && name.ends_with(".weight") && !name.contains("embeddings");
            if linear && layout == WeightLayout::Transposed {
                *tensor = transposed_storage(tensor)?;
            }
        }
        let bert = BertModel::load(VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu), &config)?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let digest = crate::knowledge::articles::sha256_hex(
            &[config_bytes, tokenizer_bytes, size.to_le_bytes().to_vec()].concat(),
        );
        let id = format!("{name}@{}", &digest[..16]);
        Ok(Self { bert, batch_tokenizer, query_tokenizer, id, dimension: config.hidden_size })
    }

    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbeddingError> {
        self.embed_query_timed(text).map(|(vector, _)| vector)
    }

    /// [`Self::embed_query`], timing each stage.
    pub fn embed_query_timed(&self, text: &str) -> Result<(Vec<f32>, QueryTimings), EmbeddingError> {
        let started = Instant::now();
        let encoding = self.query_tokenizer.encode(text, true).map_err(|e| EmbeddingError::Tokenizer(e.to_string()))?;
        let tokenized = Instant::now();
        let ids = Tensor::new(encoding.get_ids(), &Device::Cpu)?.unsqueeze(0)?;
        let types = ids.zeros_like()?;
        let hidden = self.bert.forward(&ids, &types, None)?;
        let forwarded = Instant::now();
        // No padding, so every token is real: a plain mean is the masked mean.
        let vector = normalise(hidden.mean(1)?.squeeze(0)?.to_vec1()?);
        let timings = QueryTimings {
            tokens: encoding.get_ids().len(),
            tokenize: tokenized - started,
            forward: forwarded - tokenized,
            pool: forwarded.elapsed(),
        };
        Ok((vector, timings))
    }

    /// A customer's message: its embedding, and one per sentence pooled
    /// from the same forward pass over the whole message ("late chunking"),
    /// so each sentence keeps its context and costs no second pass.
    pub fn embed_message(&self, text: &str) -> Result<MessageEmbedding, EmbeddingError> {
        let mut read = self.embed_messages(&[text])?;
        Ok(read.remove(0))
    }

    /// [`Self::embed_message`] for several messages in one forward pass:
    /// each is padded to the longest and the padding masked out, so each
    /// reads as it would alone, while the model's weights are read once for
    /// all of them instead of once each (a short question's pass is bound by
    /// that, not by its arithmetic).
    pub fn embed_messages(&self, texts: &[&str]) -> Result<Vec<MessageEmbedding>, EmbeddingError> {
        let encodings = texts
            .iter()
            .map(|text| self.query_tokenizer.encode(*text, true))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EmbeddingError::Tokenizer(e.to_string()))?;
        let longest = encodings.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        let hidden = if encodings.len() == 1 {
            let ids = Tensor::new(encodings[0].get_ids(), &Device::Cpu)?.unsqueeze(0)?;
            self.bert.forward(&ids, &ids.zeros_like()?, None)?
        } else {
            let (mut ids, mut mask) = (Vec::with_capacity(texts.len() * longest), Vec::new());
            for encoding in &encodings {
                let real = encoding.get_ids();
                ids.extend(real.iter().copied().chain(std::iter::repeat_n(0, longest - real.len())));
                mask.extend((0..longest).map(|t| u32::from(t < real.len())));
            }
            let ids = Tensor::from_vec(ids, (texts.len(), longest), &Device::Cpu)?;
            let mask = Tensor::from_vec(mask, (texts.len(), longest), &Device::Cpu)?;
            self.bert.forward(&ids, &ids.zeros_like()?, Some(&mask))?
        };
        texts
            .iter()
            .zip(&encodings)
            .enumerate()
            .map(|(row, (text, encoding))| {
                let tokens = hidden.get(row)?.narrow(0, 0, encoding.get_ids().len())?;
                self.pool_message(text, encoding, &tokens)
            })
            .collect()
    }

    /// One message's vectors from its tokens' hidden states (padding cut off).
    fn pool_message(
        &self,
        text: &str,
        encoding: &tokenizers::Encoding,
        hidden: &Tensor,
    ) -> Result<MessageEmbedding, EmbeddingError> {
        // Only real tokens: a plain mean is the masked mean.
        let whole = normalise(hidden.mean(0)?.to_vec1()?);
        let spans = sentence_spans(text);
        if spans.len() < 2 {
            return Ok(MessageEmbedding { whole: whole.into(), sentences: Vec::new() });
        }
        let rows: Vec<Vec<f32>> = hidden.to_vec2()?;
        let mut sums = vec![(vec![0f32; self.dimension], 0usize); spans.len()];
        let special = encoding.get_special_tokens_mask();
        for (t, &(start, _)) in encoding.get_offsets().iter().enumerate() {
            if special[t] == 1 {
                continue;
            }
            if let Some(s) = spans.iter().position(|span| span.contains(&start)) {
                sums[s].0.iter_mut().zip(&rows[t]).for_each(|(a, b)| *a += b);
                sums[s].1 += 1;
            }
        }
        let sentences = sums
            .into_iter()
            .filter(|(_, tokens)| *tokens >= MIN_SENTENCE_TOKENS)
            .map(|(sum, tokens)| normalise(sum.into_iter().map(|x| x / tokens as f32).collect()))
            .collect();
        Ok(MessageEmbedding { whole: whole.into(), sentences })
    }

    pub fn embed_documents(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            vectors.extend(self.embed_batch(batch)?);
        }
        Ok(vectors)
    }

    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings =
            self.batch_tokenizer.encode_batch(inputs, true).map_err(|e| EmbeddingError::Tokenizer(e.to_string()))?;
        let rows = |f: fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor, candle_core::Error> {
            let rows = encodings.iter().map(|e| Tensor::new(f(e), &Device::Cpu)).collect::<Result<Vec<_>, _>>()?;
            Tensor::stack(&rows, 0)
        };
        let ids = rows(tokenizers::Encoding::get_ids)?;
        let mask = rows(tokenizers::Encoding::get_attention_mask)?;
        let hidden = self.bert.forward(&ids, &ids.zeros_like()?, Some(&mask))?;
        // Mean over real tokens only: padding must not dilute the meaning.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?;
        let pooled: Vec<Vec<f32>> = summed.broadcast_div(&counts)?.to_vec2()?;
        Ok(pooled.into_iter().map(normalise).collect())
    }
}

/// The same matrix, stored transposed. A linear layer multiplies by its
/// weight's transpose; stored this way that transpose is contiguous, and
/// the matrix library reads it in place instead of repacking every weight
/// on every call, which was more than half of a short query's time.
fn transposed_storage(weight: &Tensor) -> Result<Tensor, candle_core::Error> {
    weight.t()?.contiguous()?.t()
}

/// Byte ranges of the sentences of `text`: split after `.`, `!` or `?`
/// followed by a space, and at line breaks.
fn sentence_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_space = chars.peek().is_none_or(|(_, n)| n.is_whitespace());
        if c == '\n' || (matches!(c, '.' | '!' | '?') && next_is_space) {
            let end = i + c.len_utf8();
            if !text[start..end].trim().is_empty() {
                spans.push(start..end);
            }
            start = end;
        }
    }
    if !text[start..].trim().is_empty() {
        spans.push(start..text.len());
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::sentence_spans;

    #[test]
    fn messages_split_into_sentences_at_stops_and_line_breaks() {
        let text = "Hi there. The zip broke on day one!\nWhat now? v1.5 is fine";
        let sentences: Vec<&str> = sentence_spans(text).into_iter().map(|r| text[r].trim()).collect();
        assert_eq!(sentences, ["Hi there.", "The zip broke on day one!", "What now?", "v1.5 is fine"]);
        assert_eq!(sentence_spans("where is my order").len(), 1);
        // Several bytes a character, stops at the very end, nothing but stops.
        let text = "Très déçu! 🥾 cassée… Remboursement?";
        let sentences: Vec<&str> = sentence_spans(text).into_iter().map(|r| text[r].trim()).collect();
        assert_eq!(sentences, ["Très déçu!", "🥾 cassée… Remboursement?"]);
        assert_eq!(sentence_spans("?!. \n"), vec![std::ops::Range { start: 0, end: 3 }]);
        assert!(sentence_spans("").is_empty());
    }
}
