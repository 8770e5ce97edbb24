//! Spot Placement Score (FACTS.md section 4): how likely a spot deployment of a count of VMs
//! succeeds now, per size, region and (optionally) zone.
//!
//! `POST /subscriptions/{sub}/providers/Microsoft.Compute/locations/{region}/placementScores/spot/generate`
//! (api-version 2025-06-05) takes at most 8 regions and 5 sizes, so larger asks are split into
//! batches (the URL names the batch's first region). The service asks clients to cache answers
//! 15-30 min: each batch is cached by request for [`super::ArmClientOptions::placement_cache_ttl`]
//! (time from the client's clock). 429s wait `Retry-After` in the client.

use serde::{Deserialize, Serialize};
use spotkit_core::advisor::PlacementScore;

use super::client::ArmClient;
use super::error::ArmError;
use super::throttle::OperationClass;

/// The Spot Placement Score API version (stable).
pub const PLACEMENT_API_VERSION: &str = "2025-06-05";

/// Regions per call at most.
pub const REGIONS_PER_CALL: usize = 8;
/// Sizes per call at most.
pub const SIZES_PER_CALL: usize = 5;

/// One score.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementScoreRow {
    /// Size.
    pub sku: String,
    /// Region.
    pub region: String,
    /// Zone, when zones were asked for (`None` for a regional score).
    pub zone: Option<String>,
    /// The score.
    pub score: PlacementScore,
    /// Whether the subscription's quota covers the desired count.
    pub quota_available: bool,
}

/// `spotPlacementScoresInput`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SpotPlacementScoresInput {
    /// Regions.
    pub desired_locations: Vec<String>,
    /// Sizes.
    pub desired_sizes: Vec<ResourceSize>,
    /// VM count.
    pub desired_count: u32,
    /// Score per zone.
    pub availability_zones: bool,
}

/// `{ "sku": … }`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourceSize {
    /// Size name.
    pub sku: String,
}

/// The answer (it echoes the input).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpotPlacementScoresResponse {
    /// Scores.
    #[serde(default)]
    pub placement_scores: Vec<PlacementScoreWire>,
}

/// One score on the wire (`score` is a free string in the schema).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementScoreWire {
    /// Size.
    #[serde(default)]
    pub sku: String,
    /// Region.
    #[serde(default)]
    pub region: String,
    /// Zone (absent or empty if regional).
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// `High`, `Medium`, `Low`, `DataNotFoundOrStale`, `RestrictedSkuNotAvailable`.
    #[serde(default)]
    pub score: String,
    /// Quota covers the count.
    #[serde(default)]
    pub is_quota_available: bool,
}

/// The requests for `sizes` x `regions`: every region batch with every size batch.
#[must_use]
pub fn placement_batches(
    sizes: &[String],
    regions: &[String],
    desired_count: u32,
    availability_zones: bool,
) -> Vec<SpotPlacementScoresInput> {
    let mut out = Vec::new();
    for region_batch in regions.chunks(REGIONS_PER_CALL) {
        for size_batch in sizes.chunks(SIZES_PER_CALL) {
            out.push(SpotPlacementScoresInput {
                desired_locations: region_batch.to_vec(),
                desired_sizes: size_batch
                    .iter()
                    .map(|s| ResourceSize { sku: s.clone() })
                    .collect(),
                desired_count,
                availability_zones,
            });
        }
    }
    out
}

/// Scores for every size in every region (batched, cached). Scores the service spells in a way
/// we do not know are skipped with a warning.
///
/// # Errors
/// [`ArmError`] from a call (after the client's retries): 403 without the "Compute
/// Recommendations Role", 429 after retries, 400 for unknown sizes or regions.
pub async fn spot_placement_scores(
    client: &ArmClient,
    subscription: &str,
    sizes: &[String],
    regions: &[String],
    desired_count: u32,
    availability_zones: bool,
) -> Result<Vec<PlacementScoreRow>, ArmError> {
    let ttl = client.options().placement_cache_ttl;
    let mut rows = Vec::new();
    for input in placement_batches(sizes, regions, desired_count, availability_zones) {
        let path = format!(
            "/subscriptions/{subscription}/providers/Microsoft.Compute/locations/{}/placementScores/spot/generate?api-version={PLACEMENT_API_VERSION}",
            input.desired_locations[0]
        );
        let answer: SpotPlacementScoresResponse = client
            .post_json_cached(&path, &input, OperationClass::ArmQuery, ttl)
            .await?;
        for s in answer.placement_scores {
            let Some(score) = PlacementScore::parse(&s.score) else {
                tracing::warn!(sku = %s.sku, region = %s.region, score = %s.score, "unknown placement score; skipped");
                continue;
            };
            rows.push(PlacementScoreRow {
                sku: s.sku,
                region: s.region,
                zone: s.availability_zone.filter(|z| !z.trim().is_empty()),
                score,
                quota_available: s.is_quota_available,
            });
        }
    }
    Ok(rows)
}
