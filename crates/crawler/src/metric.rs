//! The article-extraction-benchmark metric: word 4-gram shingles, per-page precision
//! and recall (normalised so long pages do not weigh more), averaged over pages, F1
//! from the averages. Tokens are runs of Unicode word characters, case kept.

use std::collections::HashMap;

/// True positives, false positives and false negatives of one page, normalised to sum 1.
pub fn shingle_match(truth: &str, predicted: &str) -> (f64, f64, f64) {
    let t = shingles(truth);
    let p = shingles(predicted);
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for (k, &tc) in &t {
        let pc = p.get(k).copied().unwrap_or(0);
        tp += tc.min(pc) as f64;
        fn_ += tc.saturating_sub(pc) as f64;
    }
    for (k, &pc) in &p {
        let tc = t.get(k).copied().unwrap_or(0);
        fp += pc.saturating_sub(tc) as f64;
    }
    let s = tp + fp + fn_;
    if s > 0.0 {
        (tp / s, fp / s, fn_ / s)
    } else {
        (0.0, 0.0, 0.0)
    }
}

fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        let word = c.is_alphanumeric() || c == '_' || is_mark(c);
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(&text[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

fn is_mark(c: char) -> bool {
    // Combining marks count as word characters in Python's `\w`.
    matches!(c as u32, 0x0300..=0x036F | 0x0900..=0x097F | 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E)
}

fn shingles(text: &str) -> HashMap<Vec<&str>, usize> {
    let toks = tokens(text);
    let mut m = HashMap::new();
    let n = 4;
    let count = if toks.len() >= n {
        toks.len() - n + 1
    } else {
        1
    };
    for i in 0..count {
        let end = (i + n).min(toks.len());
        let sh = toks[i..end].to_vec();
        if !sh.is_empty() {
            *m.entry(sh).or_insert(0) += 1;
        }
    }
    m
}

/// Precision, recall and F1 over pages, as the benchmark's `evaluate.py` computes them.
pub fn score(pages: &[(f64, f64, f64)]) -> (f64, f64, f64) {
    let precisions: Vec<f64> = pages
        .iter()
        .filter(|(tp, fp, _)| tp + fp > 0.0)
        .map(|&(tp, fp, fn_)| precision(tp, fp, fn_))
        .collect();
    let recalls: Vec<f64> = pages
        .iter()
        .filter(|(tp, _, fn_)| tp + fn_ > 0.0)
        .map(|&(tp, fp, fn_)| recall(tp, fp, fn_))
        .collect();
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let p = mean(&precisions);
    let r = mean(&recalls);
    let f1 = if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    };
    (p, r, f1)
}

fn precision(tp: f64, fp: f64, fn_: f64) -> f64 {
    if fp == 0.0 && fn_ == 0.0 {
        1.0
    } else if tp == 0.0 && fp == 0.0 {
        0.0
    } else {
        tp / (tp + fp)
    }
}

fn recall(tp: f64, fp: f64, fn_: f64) -> f64 {
    if fp == 0.0 && fn_ == 0.0 {
        1.0
    } else if tp == 0.0 && fn_ == 0.0 {
        0.0
    } else {
        tp / (tp + fn_)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_text_scores_one_and_disjoint_text_zero() {
        let a = "the quick brown fox jumps over the lazy dog";
        assert_eq!(shingle_match(a, a), (1.0, 0.0, 0.0));
        let (tp, fp, fn_) = shingle_match(a, "completely different words appear right here now");
        assert_eq!(tp, 0.0);
        assert!(fp > 0.0 && fn_ > 0.0);
        let (p, r, f1) = score(&[shingle_match(a, a), shingle_match(a, "")]);
        assert_eq!(p, 1.0);
        assert_eq!(r, 0.5);
        assert!((f1 - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn tokens_split_on_punctuation_like_python_word_regex() {
        assert_eq!(
            tokens("Hello, world! it's 2019_x"),
            vec!["Hello", "world", "it", "s", "2019_x"]
        );
    }
}
