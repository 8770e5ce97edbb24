//! Real spot-capacity traces (skypilot-org/spot-traces) read as capacity over time.
//!
//! A file is `{"metadata":{"gap_seconds":G},"data":[v0,v1,...]}`, one value per tick of G
//! seconds. The scenario states which file drives which offering and how its values read
//! ([`TracePolarity`]); the trace repeats when the simulation outlasts it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::scenario::{ScenarioError, TracePolarity};

/// A loaded trace.
#[derive(Clone, Debug, PartialEq)]
pub struct CapacityTrace {
    /// Where it was read from.
    pub path: PathBuf,
    /// Seconds per value.
    pub gap_seconds: u64,
    /// The raw values.
    pub values: Vec<u32>,
    /// How to read them.
    pub polarity: TracePolarity,
    /// VMs per available tick or counted instance.
    pub capacity_scale: u32,
    /// Trace time at the simulated start.
    pub start_offset: Duration,
}

#[derive(Deserialize)]
struct TraceFile {
    metadata: TraceMetadata,
    data: Vec<f64>,
}

#[derive(Deserialize)]
struct TraceMetadata {
    gap_seconds: f64,
}

impl CapacityTrace {
    /// Reads `traces_dir/file`.
    ///
    /// # Errors
    /// [`ScenarioError::Trace`] naming the path if it is missing or malformed.
    pub fn load(
        traces_dir: &Path,
        file: &str,
        polarity: TracePolarity,
        capacity_scale: u32,
        start_offset: Duration,
    ) -> Result<Self, ScenarioError> {
        let path = traces_dir.join(file);
        let failure = |message: String| ScenarioError::Trace {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(&path).map_err(|error| failure(error.to_string()))?;
        let parsed: TraceFile = serde_json::from_str(&text)
            .map_err(|error| failure(format!("not a spot-traces file: {error}")))?;
        if parsed.data.is_empty() || parsed.metadata.gap_seconds < 1.0 {
            return Err(failure("empty data or gap_seconds < 1".to_owned()));
        }
        let values = parsed
            .data
            .iter()
            .map(|value| {
                if value.is_finite() && *value >= 0.0 {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    Ok(value.round() as u32)
                } else {
                    Err(failure(format!("value {value} is not a count")))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let gap_seconds = parsed.metadata.gap_seconds.round() as u64;
        Ok(Self {
            path,
            gap_seconds,
            values,
            polarity,
            capacity_scale,
            start_offset,
        })
    }

    /// Spot VMs obtainable `elapsed` after the simulated start.
    #[must_use]
    pub fn capacity_at(&self, elapsed: Duration) -> u32 {
        let position = (elapsed + self.start_offset).as_secs() / self.gap_seconds;
        let len = self.values.len() as u64;
        let index = usize::try_from(position % len).unwrap_or(0);
        let value = self.values[index];
        match self.polarity {
            TracePolarity::OneIsUnavailable => u32::from(value == 0) * self.capacity_scale,
            TracePolarity::OneIsAvailable => u32::from(value != 0) * self.capacity_scale,
            TracePolarity::Count => value.saturating_mul(self.capacity_scale),
        }
    }

    /// How long the trace covers before it repeats.
    #[must_use]
    pub fn span(&self) -> Duration {
        Duration::from_secs(self.gap_seconds * self.values.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(values: Vec<u32>, polarity: TracePolarity) -> CapacityTrace {
        CapacityTrace {
            path: PathBuf::from("mem"),
            gap_seconds: 60,
            values,
            polarity,
            capacity_scale: 5,
            start_offset: Duration::ZERO,
        }
    }

    #[test]
    fn polarity_decides_what_one_means() {
        let unavailable = trace(vec![0, 1, 0], TracePolarity::OneIsUnavailable);
        assert_eq!(unavailable.capacity_at(Duration::from_secs(0)), 5);
        assert_eq!(unavailable.capacity_at(Duration::from_secs(61)), 0);
        let available = trace(vec![0, 1, 0], TracePolarity::OneIsAvailable);
        assert_eq!(available.capacity_at(Duration::from_secs(0)), 0);
        assert_eq!(available.capacity_at(Duration::from_secs(61)), 5);
        let count = trace(vec![3, 16], TracePolarity::Count);
        assert_eq!(count.capacity_at(Duration::from_secs(60)), 80);
    }

    #[test]
    fn trace_repeats_and_honours_the_offset() {
        let mut repeating = trace(vec![0, 1], TracePolarity::OneIsUnavailable);
        assert_eq!(repeating.capacity_at(Duration::from_secs(120)), 5);
        repeating.start_offset = Duration::from_secs(60);
        assert_eq!(repeating.capacity_at(Duration::ZERO), 0);
        assert_eq!(repeating.span(), Duration::from_secs(120));
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let error = CapacityTrace::load(
            Path::new("/nonexistent-traces"),
            "availability/x.json",
            TracePolarity::Count,
            1,
            Duration::ZERO,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("/nonexistent-traces/availability/x.json")
        );
    }
}
