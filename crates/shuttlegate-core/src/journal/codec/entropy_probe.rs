//! The residual entropy the packed layout leaves (ignored; run by hand with
//! `cargo test -p shuttlegate-core --lib entropy_probe -- --ignored --nocapture`): the floor any
//! coder of these residuals could reach, which docs/journal.md quotes against the size targets.

use super::column::integer_column;
use super::*;
use crate::journal::synth::{CompactStyle, Motion, compact_batch_as};
use rand::SeedableRng;

/// `cargo test --lib entropy_probe -- --ignored --nocapture`: zero-order entropy of the
/// residuals the packed layout writes, i.e. what an ideal entropy coder would spend on them.
#[test]
#[ignore = "a measurement, not a check"]
fn print_residual_entropy() {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(9);
    let cases = [CompactStyle::Counts, CompactStyle::Decimals]
        .into_iter()
        .flat_map(|style| [(style, Motion::Swing), (style, Motion::Idle)]);
    for (style, m) in cases {
        let mut counts: Vec<std::collections::HashMap<i64, u64>> = vec![Default::default(); 6];
        let rows = 300 * 100;
        for i in 0..300 {
            let b = compact_batch_as(&mut rng, ("d", "s", Some(i), 0), 100, m, style);
            let BatchForm::Compact(c) = &b.form else {
                unreachable!()
            };
            for (k, column_counts) in counts.iter_mut().enumerate() {
                let col: Vec<f32> = (0..100).map(|r| c.samples[r * 6 + k]).collect();
                let (_, ks) = integer_column(&col).expect("integer column");
                let (_, _, residuals) = packed::choose_predictor(&ks);
                for d in &residuals {
                    *column_counts.entry(*d).or_default() += 1;
                }
            }
        }
        // Bits per residual under each column's own distribution, spread over the rows.
        let bits: f64 = counts
            .iter()
            .map(|c| {
                let n = c.values().sum::<u64>() as f64;
                let per_residual: f64 = c
                    .values()
                    .map(|&x| -(x as f64 / n) * (x as f64 / n).log2())
                    .sum();
                per_residual * n / rows as f64
            })
            .sum();
        println!(
            "{style:?} {m:?}: residual entropy {:.2} B/sample (ideal coder, zero-order)",
            bits / 8.0
        );
    }
}
