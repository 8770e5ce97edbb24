//! The real spot traces (skypilot-org/spot-traces, NSDI'24 "Can't Be Late", Wu et al.) as the
//! trace benchmarks see them: trace sets (folders), files loaded with spotkit-sim's
//! [`CapacityTrace`], and the stated mapping of each file onto an Azure region, size and price.
//!
//! The mapping is a modelling choice, not a measurement: AWS/GCP zone -> the Azure region in the
//! same geography, instance type -> the Azure size with the same accelerator or shape, prices from
//! /work/shared/azure/prices-sample.md Table 1 (SkyPilot's Azure catalog, about 2024-08, Linux,
//! USD/h). Sizes missing from that table are scaled linearly by vCPU or GPU count within their
//! family from a size that is there (the sample's rule 2).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use spotkit_sim::cloud::{CapacityTrace, TracePolarity};

/// How the 0/1 files read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum OneMeans {
    /// 1 = no spot capacity (the paper's simulator: `spot_available = not trace[tick]`).
    Unavailable,
    /// 1 = spot capacity available.
    Available,
}

impl OneMeans {
    pub fn polarity(self) -> TracePolarity {
        match self {
            Self::Unavailable => TracePolarity::OneIsUnavailable,
            Self::Available => TracePolarity::OneIsAvailable,
        }
    }
}

/// An Azure offering a trace file stands for.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AzureOffering {
    pub region: &'static str,
    pub size: String,
    pub payg_per_hour: f64,
    pub spot_per_hour: f64,
    /// The source zone, kept so two zones of one region stay apart.
    pub source_zone: String,
}

impl AzureOffering {
    pub fn label(&self) -> String {
        format!("{}/{} ({})", self.region, self.size, self.source_zone)
    }
}

/// One trace file with its mapping.
#[derive(Clone, Debug)]
pub struct TraceFile {
    /// Path relative to the traces dir.
    pub relative: String,
    /// Source instance type as in the file name (`v100_1`, `intel_64`, `c3-88`).
    pub instance_type: String,
    /// Nodes per file: 1 for 0/1 files, 4 or 16 for count files.
    pub nodes: u32,
    pub offering: AzureOffering,
}

/// A folder of trace files recorded together.
#[derive(Clone, Debug)]
pub struct TraceSet {
    /// Path relative to the traces dir (`availability/1-node/aws-02-15-2023`).
    pub name: String,
    pub files: Vec<TraceFile>,
}

/// Every folder under `traces_dir` that holds `.json` trace files, sorted by name.
pub fn discover(traces_dir: &Path) -> anyhow::Result<Vec<TraceSet>> {
    let mut folders = Vec::new();
    collect_folders(traces_dir, traces_dir, &mut folders)?;
    if folders.is_empty() {
        bail!(
            "no trace files (*.json) under {}: pass --traces-dir pointing at a checkout of \
             skypilot-org/spot-traces (default ../shared/traces from the repository root)",
            traces_dir.display()
        );
    }
    folders.sort();
    folders
        .into_iter()
        .map(|(name, mut files)| {
            files.sort();
            let nodes = nodes_of(&name);
            let files = files
                .into_iter()
                .map(|file| {
                    let relative = format!("{name}/{file}");
                    let stem = file.trim_end_matches(".json");
                    let (zone, instance_type) = stem.split_once('_').with_context(|| {
                        format!("trace file {relative}: expected ZONE_TYPE.json")
                    })?;
                    let offering = map_offering(zone, instance_type)
                        .with_context(|| format!("trace file {relative}: no Azure mapping"))?;
                    Ok(TraceFile {
                        relative,
                        instance_type: instance_type.to_owned(),
                        nodes,
                        offering,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(TraceSet { name, files })
        })
        .collect()
}

fn collect_folders(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, Vec<String>)>,
) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading traces dir {}", dir.display()))?;
    let mut files = Vec::new();
    let mut subdirs: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if path.is_dir() {
            subdirs.push(path);
        } else if path.extension().is_some_and(|ext| ext == "json") {
            files.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    if !files.is_empty() {
        let name = dir
            .strip_prefix(root)
            .unwrap_or(dir)
            .to_string_lossy()
            .into_owned();
        out.push((name, files));
    }
    subdirs.sort();
    for sub in subdirs {
        collect_folders(root, &sub, out)?;
    }
    Ok(())
}

/// `16-node` -> 16, `4-node` -> 4, anything else (the 0/1 files) -> 1.
fn nodes_of(set_name: &str) -> u32 {
    set_name
        .split('/')
        .find_map(|part| part.strip_suffix("-node").and_then(|n| n.parse().ok()))
        .unwrap_or(1)
}

/// Loads one file: 0/1 files read with `one_means` and scaled by `scale_01`, count files as counts.
pub fn load(
    traces_dir: &Path,
    file: &TraceFile,
    one_means: OneMeans,
    scale_01: u32,
    start_offset: Duration,
) -> anyhow::Result<CapacityTrace> {
    let (polarity, scale) = if file.nodes == 1 {
        (one_means.polarity(), scale_01)
    } else {
        (TracePolarity::Count, 1)
    };
    Ok(CapacityTrace::load(
        traces_dir,
        &file.relative,
        polarity,
        scale,
        start_offset,
    )?)
}

/// AWS/GCP zone -> Azure region (same geography).
fn azure_region(zone: &str) -> Option<&'static str> {
    // AWS zones end in a letter (`us-east-1a`), GCP zones in `-letter` (`us-central1-a`).
    let region = zone
        .strip_suffix(|c: char| c.is_ascii_lowercase())
        .map(|r| r.trim_end_matches('-'))?;
    Some(match region {
        "us-east-1" | "us-east1" => "eastus",
        "us-east-2" => "eastus2",
        "us-west-2" => "westus2",
        "us-central1" => "centralus",
        _ => return None,
    })
}

/// (PAYG, spot) USD/h from prices-sample.md Table 1 for the base sizes.
fn base_price(region: &str, size: &str) -> Option<(f64, f64)> {
    Some(match (size, region) {
        ("NC6s_v3", "eastus") => (3.06, 0.3978),
        ("NC6s_v3", "eastus2") => (3.06, 0.404_838),
        ("NC6s_v3", "westus2") => (3.06, 0.353_43),
        ("NC6s_v3", "centralus") => (3.458, 0.394_212),
        ("NC4as_T4_v3", "eastus") => (0.526, 0.062_699),
        ("NC4as_T4_v3", "eastus2") => (0.526, 0.057_86),
        ("NC4as_T4_v3", "westus2") => (0.526, 0.061_595),
        ("NC4as_T4_v3", "centralus") => (0.594, 0.065_34),
        ("E4s_v5", "eastus") => (0.252, 0.027_72),
        ("E4s_v5", "eastus2") => (0.252, 0.032_76),
        ("E4s_v5", "westus2") => (0.252, 0.032_76),
        ("E4s_v5", "centralus") => (0.285, 0.031_35),
        ("F4s_v2", "eastus") => (0.169, 0.018_59),
        ("F4s_v2", "eastus2") => (0.169, 0.021_97),
        ("F4s_v2", "westus2") => (0.169, 0.021_97),
        ("F4s_v2", "centralus") => (0.204, 0.022_44),
        _ => return None,
    })
}

/// Source instance type -> (Azure size, base size in the price table, multiple of the base).
fn azure_size(instance_type: &str) -> Option<(&'static str, &'static str, f64)> {
    Some(match instance_type {
        // p3.2xlarge, 1 V100 -> NC6s_v3, 1 V100.
        "v100_1" => ("Standard_NC6s_v3", "NC6s_v3", 1.0),
        // p3.16xlarge, 8 V100 -> NC24s_v3, 4 V100 (the largest NCv3), 4 x NC6s_v3.
        "v100_8" => ("Standard_NC24s_v3", "NC6s_v3", 4.0),
        // p2.xlarge, 1 K80 -> NC4as_T4_v3 (Azure's K80 sizes are retired; T4 is the entry GPU).
        "k80_1" => ("Standard_NC4as_T4_v3", "NC4as_T4_v3", 1.0),
        // p2.16xlarge, 16 K80 -> NC64as_T4_v3, 4 T4, 16 x NC4as_T4_v3 by vCPU.
        "k80_8" => ("Standard_NC64as_T4_v3", "NC4as_T4_v3", 16.0),
        // r5.16xlarge, 64 vCPU / 512 GiB -> E64s_v5, 16 x E4s_v5.
        "intel_64" => ("Standard_E64s_v5", "E4s_v5", 16.0),
        // c3-highcpu-88 -> F72s_v2 (the largest Fsv2), 18 x F4s_v2.
        "c3-88" => ("Standard_F72s_v2", "F4s_v2", 18.0),
        _ => return None,
    })
}

fn map_offering(zone: &str, instance_type: &str) -> Option<AzureOffering> {
    let region = azure_region(zone)?;
    let (size, base, multiple) = azure_size(instance_type)?;
    let (payg, spot) = base_price(region, base)?;
    Some(AzureOffering {
        region,
        size: size.to_owned(),
        payg_per_hour: payg * multiple,
        spot_per_hour: spot * multiple,
        source_zone: zone.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_and_types_map_to_azure_offerings() {
        let offering = map_offering("us-east-1a", "v100_1").unwrap();
        assert_eq!(offering.region, "eastus");
        assert_eq!(offering.size, "Standard_NC6s_v3");
        assert!((offering.spot_per_hour - 0.3978).abs() < 1e-12);
        assert_eq!(
            map_offering("us-central1-b", "c3-88").unwrap().region,
            "centralus"
        );
        assert_eq!(
            map_offering("us-west-2b", "v100_8").unwrap().payg_per_hour,
            12.24
        );
        assert!(map_offering("eu-west-1a", "v100_1").is_none());
        assert_eq!(nodes_of("availability/16-node/aws-08-27-2023"), 16);
        assert_eq!(nodes_of("preemption/1-node/x"), 1);
    }
}
