//! The vector index contract, run against each implementation behind the
//! one trait: embedded Qdrant Edge always, a Qdrant server where
//! `QDRANT_URL` points at one.

use storefront_assistant::knowledge::{
    index::{IndexQuery, IndexedChunk, VectorIndex, edge::EdgeIndex, remote::RemoteIndex},
    sparse,
};

fn chunk(article_id: &str, ordinal: usize, dense: [f32; 4], text: &str) -> IndexedChunk {
    IndexedChunk {
        article_id: article_id.to_owned(),
        ordinal,
        dense: dense.to_vec(),
        sparse: sparse::document(text),
        fingerprint: format!("fp-{article_id}"),
    }
}

async fn honours_the_contract(index: &dyn VectorIndex) {
    let stored = index.prepare("test-model", 4, true).await.expect("prepare");
    assert!(stored.is_empty(), "a rebuilt index is empty");
    index
        .replace_article(
            "boots",
            vec![
                chunk("boots", 0, [1.0, 0.0, 0.0, 0.0], "waterproof leather hiking boots"),
                chunk("boots", 1, [0.9, 0.1, 0.0, 0.0], "boot laces and insoles"),
            ],
        )
        .await
        .unwrap();
    index.replace_article("tents", vec![chunk("tents", 0, [0.0, 1.0, 0.0, 0.0], "two person tent")]).await.unwrap();

    let near_boots = [0.95, 0.05, 0.0, 0.0];
    let dense = index.search(IndexQuery::Dense(&near_boots), 3).await.unwrap();
    assert_eq!((dense[0].article_id.as_str(), dense[0].ordinal), ("boots", 0));
    assert!(dense[0].similarity.unwrap() > 0.99);
    let words = index.search(IndexQuery::Sparse(&sparse::query("tent")), 3).await.unwrap();
    assert_eq!(words[0].article_id, "tents", "words rank by words: {words:?}");
    assert!(words[0].score > 0.0, "lexical scores are BM25, best first: {words:?}");
    assert!(words.windows(2).all(|w| w[0].score >= w[1].score), "{words:?}");
    let hybrid = index.search(IndexQuery::Rrf(&near_boots, &sparse::query("tent")), 3).await.unwrap();
    assert_eq!(hybrid.len(), 3, "fusion keeps candidates from both rankings: {hybrid:?}");

    // Replacing an article drops its old chunks; fingerprints come back on reopen.
    index.replace_article("boots", vec![chunk("boots", 0, [1.0, 0.0, 0.0, 0.0], "boots")]).await.unwrap();
    let all = index.search(IndexQuery::Dense(&near_boots), 10).await.unwrap();
    assert_eq!(all.iter().filter(|h| h.article_id == "boots").count(), 1, "{all:?}");
    index.delete_article("tents").await.unwrap();
    let stored = index.prepare("test-model", 4, false).await.unwrap();
    assert_eq!(stored.keys().collect::<Vec<_>>(), ["boots"]);
    assert_eq!(stored["boots"], "fp-boots");
}

#[tokio::test]
async fn the_embedded_index_honours_the_index_contract() {
    let dir = tempfile::tempdir().unwrap();
    honours_the_contract(&EdgeIndex::new(dir.path().join("index"))).await;
}

#[tokio::test]
async fn a_qdrant_server_honours_the_same_contract() {
    let Ok(url) = std::env::var("QDRANT_URL") else {
        eprintln!("notice: skipping the Qdrant server case, QDRANT_URL is not set");
        return;
    };
    let key = std::env::var("QDRANT_API_KEY").ok().map(storefront_assistant::config::Secret::new);
    honours_the_contract(&RemoteIndex::connect(&url, key.as_ref()).expect("a Qdrant client")).await;
}
