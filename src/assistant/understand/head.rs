//! A linear softmax head over sentence embeddings, trained at start-up on
//! the example phrasings: a linear probe reads MiniLM's embedding space
//! better than nearest neighbours do (`eval` compares the two), and costs
//! one small matrix-vector product per message.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};

use super::UnderstandError;

/// Unit vectors have tiny logits; scaling them lets the optimiser reach
/// confident weights in few steps (a temperature, learnt into the weights).
const INPUT_SCALE: f64 = 10.0;
const STEPS: usize = 300;
const LEARNING_RATE: f64 = 0.05;
/// Keeps the weights small, so confidence stays honest on unseen wording.
const WEIGHT_DECAY: f64 = 0.01;

#[derive(Clone)]
pub struct LinearHead {
    /// Row-major `[classes, dimension]`, with the input scale folded in.
    weights: Vec<f32>,
    bias: Vec<f32>,
    dimension: usize,
}

impl LinearHead {
    /// Trains on `vectors` (row-major, `dimension` wide) labelled `labels`
    /// (class indices below `classes`), by full-batch AdamW on cross entropy.
    pub fn train(vectors: &[f32], dimension: usize, labels: &[u32], classes: usize) -> Result<Self, UnderstandError> {
        let fail = |e: candle_core::Error| UnderstandError::Invalid(format!("training a classifier head failed: {e}"));
        let n = labels.len();
        let x =
            (Tensor::from_slice(vectors, (n, dimension), &Device::Cpu).map_err(fail)? * INPUT_SCALE).map_err(fail)?;
        let y = Tensor::from_slice(labels, n, &Device::Cpu).map_err(fail)?;
        let w = Var::zeros((classes, dimension), DType::F32, &Device::Cpu).map_err(fail)?;
        let b = Var::zeros(classes, DType::F32, &Device::Cpu).map_err(fail)?;
        let params = ParamsAdamW { lr: LEARNING_RATE, weight_decay: WEIGHT_DECAY, ..ParamsAdamW::default() };
        let mut optimiser = AdamW::new(vec![w.clone(), b.clone()], params).map_err(fail)?;
        for _ in 0..STEPS {
            let logits = x.matmul(&w.t().map_err(fail)?).map_err(fail)?.broadcast_add(&b).map_err(fail)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y).map_err(fail)?;
            optimiser.backward_step(&loss).map_err(fail)?;
        }
        let weights =
            (w.as_tensor() * INPUT_SCALE).map_err(fail)?.flatten_all().map_err(fail)?.to_vec1().map_err(fail)?;
        let bias = b.as_tensor().to_vec1().map_err(fail)?;
        Ok(Self { weights, bias, dimension })
    }

    /// Class probabilities for one unit-length embedding.
    pub fn probabilities(&self, query: &[f32]) -> Vec<f64> {
        let logits: Vec<f64> = self
            .weights
            .chunks_exact(self.dimension)
            .zip(&self.bias)
            .map(|(row, b)| f64::from(row.iter().zip(query).map(|(w, q)| w * q).sum::<f32>() + b))
            .collect();
        softmax(&logits)
    }
}

fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::MIN, f64::max);
    let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_learns_separable_classes_and_says_how_sure_it_is() {
        // Two classes along two axes of a 3-d space.
        let vectors = [1.0, 0.0, 0.0, 0.9, 0.1, 0.0, 0.0, 1.0, 0.0, 0.1, 0.9, 0.0];
        let head = LinearHead::train(&vectors, 3, &[0, 0, 1, 1], 2).unwrap();
        let p = head.probabilities(&[0.95, 0.05, 0.0]);
        assert!(p[0] > 0.9, "{p:?}");
        let unsure = head.probabilities(&[0.7, 0.7, 0.0]);
        assert!((unsure[0] - 0.5).abs() < 0.2, "between the classes it is unsure: {unsure:?}");
    }
}
