use std::path::PathBuf;

use spotkit_core::Timestamp;
use spotkit_core::advisor::{EvictionBand, Offering};
use spotkit_core::compute::Priority;
use spotkit_core::orchestrator::PoolMachine;

use super::*;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/pools")
        .join(name)
}

fn offering(size: &str, region: &str, vcpus: u32, memory_gib: f64, spot: f64) -> Offering {
    Offering {
        size: size.to_string(),
        region: region.to_string(),
        os: Os::Linux,
        vcpus,
        memory_gib,
        spot_price: Some(spot),
        payg_price: Some(spot * 8.0),
        band: Some(EvictionBand::FiveToTen),
        placement: None,
        spot_capable: true,
    }
}

fn catalog() -> Vec<Offering> {
    vec![
        offering("Standard_D4s_v5", "eastus", 4, 16.0, 0.03),
        offering("Standard_D8s_v5", "eastus2", 8, 32.0, 0.05),
        offering("Standard_D2s_v5", "eastus", 2, 8.0, 0.01),
        offering("Standard_E4s_v5", "centralus", 4, 32.0, 0.04),
        offering("Standard_D16s_v5", "centralus", 16, 64.0, 0.2),
        offering("Standard_D4s_v5", "westeurope", 4, 16.0, 0.02),
    ]
}

fn no_advisor(_: &Requirements) -> Advice {
    panic!("explicit candidates must not ask the advisor")
}

fn parse(text: &str) -> Result<PoolSpec, PoolError> {
    let cat = catalog();
    parse_pool(text, Path::new("pool.toml"), rank_catalog(&cat))
}

const MINIMAL: &str = r#"
name = "batch"
resource_group = "rg"
[target]
vms = 3
[[candidates]]
size = "Standard_D4s_v5"
region = "eastus"
[template]
image = "Canonical:ubuntu-24_04-lts:server:latest"
"#;

#[test]
fn the_delete_example_parses_with_its_baseline_and_twelve_candidates() {
    let spec = load_pool(&example("delete-multi-region.toml"), no_advisor).unwrap();
    assert_eq!(spec.name, "render");
    assert_eq!(spec.target, Target::Vms(30));
    assert_eq!(spec.baseline.split(30), (20, 10));
    assert_eq!(spec.candidates.len(), 12);
    let regions: BTreeSet<_> = spec.candidates.iter().map(|c| &c.offering.region).collect();
    assert_eq!(regions.len(), 3);
    assert_eq!(spec.eviction_policy, EvictionPolicy::Delete);
    assert!(spec.on_demand_fallback);
    assert_eq!(spec.limits.max_surge, 3);
    assert_eq!(spec.max_share, 0.34);
    assert_eq!(spec.unavailable_ttl, Duration::from_secs(180));
    assert_eq!(spec.template.tags["team"], "graphics");
    assert_eq!(spec.template.user_assigned_identities.len(), 1);
    let user_data = base64::engine::general_purpose::STANDARD
        .decode(spec.template.user_data.as_deref().unwrap())
        .unwrap();
    assert!(
        String::from_utf8(user_data)
            .unwrap()
            .starts_with("#cloud-config")
    );
    // The spec drives the core as it is.
    let mut m = PoolMachine::new(spec, Timestamp::from_unix_secs(1), 1);
    let _ = m.handle(
        spotkit_core::orchestrator::Input::Tick,
        Timestamp::from_unix_secs(1),
    );
    let a = m.handle(
        spotkit_core::orchestrator::Input::Observed(vec![]),
        Timestamp::from_unix_secs(1),
    );
    assert_eq!(a.len(), 20, "bounded by max_concurrent_operations");
    assert_eq!(m.status().planned_creates, 30);
}

#[test]
fn the_deallocate_example_parses_with_its_restart_settings() {
    let spec = load_pool(&example("deallocate.toml"), no_advisor).unwrap();
    assert_eq!(spec.eviction_policy, EvictionPolicy::Deallocate);
    assert_eq!(spec.restart_timeout, Duration::from_secs(7200));
    assert_eq!(spec.restart_backoff.base, Duration::from_secs(30));
    assert_eq!(spec.restart_backoff.max, Duration::from_secs(600));
    assert_eq!(spec.max_price, MaxPrice::UsdPerHour(0.08));
    assert_eq!(spec.limits.max_surge, 0);
    assert!(spec.template.image.contains("/galleries/"));
}

#[test]
fn the_vcpu_example_resolves_candidates_through_the_advisor() {
    let cat = catalog();
    let mut asked = None;
    let spec = load_pool(&example("vcpus-advisor.toml"), |req: &Requirements| {
        asked = Some(req.clone());
        advisor::rank(&cat, req)
    })
    .unwrap();
    let req = asked.unwrap();
    assert_eq!(req.min_vcpus, 4);
    assert_eq!(req.min_memory_gib, 16.0);
    assert_eq!(req.max_price, Some(0.10));
    assert_eq!(req.regions, vec!["eastus", "eastus2", "centralus"]);
    assert_eq!(spec.target, Target::Vcpus(256));
    assert_eq!(spec.eviction_block_scope, BlockScope::Region);
    // D2 (too small), D16 (above max price) and westeurope (region) are filtered out.
    let names: Vec<String> = spec
        .candidates
        .iter()
        .map(|c| c.offering.to_string())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| !n.contains("D2s") && !n.contains("D16") && !n.contains("westeurope"))
    );
    assert!(spec.candidates.windows(2).all(|w| w[0].rank < w[1].rank));
    assert!(
        spec.candidates
            .iter()
            .all(|c| c.vcpus >= 4 && c.spot_capable)
    );
}

#[test]
fn defaults_fill_what_a_minimal_file_leaves_out() {
    let spec = parse(MINIMAL).unwrap();
    let d = PoolSpec::new("batch", Target::Vms(3), spec.candidates.clone());
    assert_eq!(spec.limits, Limits::default());
    assert_eq!(spec.unavailable_ttl, d.unavailable_ttl);
    assert_eq!(spec.eviction_block_ttl, Duration::from_secs(1800));
    assert_eq!(spec.eviction_policy, EvictionPolicy::Delete);
    assert_eq!(spec.max_price, MaxPrice::CappedAtPayAsYouGo);
    assert!(!spec.on_demand_fallback);
    assert_eq!(spec.candidates[0].vcpus, 1);
    assert!(spec.candidates[0].spot_capable);
    assert_eq!(spec.template.resource_group, "rg");
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn errors_name_the_key_the_value_and_the_fix() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "name = \"batch\"",
            "name = \"Batch_1\"",
            &["key name", "Batch_1", "rename"],
        ),
        ("vms = 3", "vms = -3", &["target.vms", "-3", "from 0 to"]),
        (
            "vms = 3",
            "vms = 3\nvcpus = 8",
            &["target.vms and target.vcpus", "keep one"],
        ),
        (
            "vms = 3",
            "vcpus = 8",
            &["candidates[0].vcpus is required", "vcpus = 4"],
        ),
        (
            "name = \"batch\"",
            "name = \"batch\"\nmax_price = 0.123456",
            &["max_price", "0.123456", "at most 5 decimals"],
        ),
        (
            "name = \"batch\"",
            "name = \"batch\"\neviction_policy = \"stop\"",
            &["eviction_policy", "\"stop\"", "deallocate"],
        ),
        (
            "name = \"batch\"",
            "name = \"batch\"\nrestart_timeout = \"1h\"",
            &[
                "restart_timeout",
                "only to eviction_policy = \"deallocate\"",
            ],
        ),
        (
            "name = \"batch\"",
            "name = \"batch\"\nrestart_timeout = \"soon\"",
            &["restart_timeout", "not a duration", "30s"],
        ),
        (
            "name = \"batch\"",
            "name = \"batch\"\non_demand_fallback = true\n[limits]\nmax_surge = 0",
            &["on_demand_fallback", "max_surge >= 1"],
        ),
        (
            "region = \"eastus\"",
            "region = \"east us\"",
            &["candidates[0].region", "east us", "eastus"],
        ),
        (
            "size = \"Standard_D4s_v5\"",
            "size = \"D4s\"",
            &["candidates[0].size", "Standard_D4s_v5"],
        ),
        (
            "name = \"batch\"",
            "name = \"batch\"\n[placement]\nmax_share = 1.5",
            &["placement.max_share", "1.5", "0.5"],
        ),
        (
            "name = \"batch\"",
            "name = \"batch\"\n[placement]\neviction_block_scope = \"zone\"",
            &["eviction_block_scope", "zone", "\"region\""],
        ),
        (
            "name = \"batch\"",
            "name = \"batch\"\n[limits]\nmax_concurrent_operations = 0",
            &["limits.max_concurrent_operations", "from 1 to 500"],
        ),
        (
            "image = \"Canonical:ubuntu-24_04-lts:server:latest\"",
            "image = \"x\"\ntags = { spotkit-pool = \"other\" }",
            &["template.tags.spotkit-pool", "belong to the orchestrator"],
        ),
        (
            "image = \"Canonical:ubuntu-24_04-lts:server:latest\"",
            "image = \"x\"\nidentities = [\"my-identity\"]",
            &["template.identities[0]", "userAssignedIdentities"],
        ),
        (
            "name = \"batch\"",
            "name = \"batch\"\ncolour = \"blue\"",
            &["unknown field", "colour"],
        ),
        (
            "[[candidates]]\nsize = \"Standard_D4s_v5\"\nregion = \"eastus\"",
            "[advisor]\nmin_vcpus = 64",
            &["no offering matches", "too few vCPUs", "widen"],
        ),
        (
            "[template]",
            "[advisor]\nmin_vcpus = 2\n[template]",
            &["[[candidates]] and [advisor]", "not both"],
        ),
    ];
    for (from, to, needles) in cases {
        assert!(MINIMAL.contains(from), "{from}");
        // A table in `to` goes to the end, so that it does not swallow the keys after `from`.
        let text = match to.split_once("\n[") {
            Some((head, table)) if from.starts_with("name") => {
                format!("{}\n[{table}\n", MINIMAL.replacen(from, head, 1))
            }
            _ => MINIMAL.replacen(from, to, 1),
        };
        let msg = err(&text);
        for n in *needles {
            assert!(msg.contains(n), "{to:?}: {msg:?} lacks {n:?}");
        }
        assert!(msg.contains("pool.toml"), "{msg}");
    }
}

#[test]
fn missing_essentials_say_what_to_add() {
    let msg = err(
        "name = \"x\"\nresource_group = \"rg\"\n[template]\nimage = \"i\"\n[target]\nvms = 1\n",
    );
    assert!(msg.contains("key candidates is required"), "{msg}");
    let msg = err(&MINIMAL.replace("resource_group = \"rg\"\n", ""));
    assert!(msg.contains("resource_group is required"), "{msg}");
    let msg = err(&MINIMAL.replace("image = \"Canonical:ubuntu-24_04-lts:server:latest\"", ""));
    assert!(msg.contains("template.image is required"), "{msg}");
}

#[test]
fn duplicate_candidates_are_refused_ignoring_case() {
    let text =
        format!("{MINIMAL}\n[[candidates]]\nsize = \"standard_d4s_v5\"\nregion = \"EASTUS\"\n");
    // The appended table lands after [template]; TOML still attaches it to the root array.
    let msg = err(&text);
    assert!(msg.contains("listed twice"), "{msg}");
}

#[test]
fn regular_only_candidates_are_kept_for_baseline_and_fallback() {
    let text = MINIMAL.replace(
        "region = \"eastus\"",
        "region = \"eastus\"\nspot = false\npayg_price = 0.19",
    );
    let spec = parse(&text).unwrap();
    assert!(!spec.candidates[0].spot_capable);
    assert_eq!(spec.candidates[0].payg_price, Some(0.19));
    assert_eq!(spec.candidates.iter().filter(|c| c.spot_capable).count(), 0);
    let _ = Priority::Regular;
}
