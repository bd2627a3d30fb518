//! The benchmark estates: `n` pools + fleets (half each) with image builders, images being exported, Thin Client
//! environments with devices and WorkSpaces in proportion, under the demo policy.

use super::BenchError;
use autopilot_functions::Function;
use autopilot_sim::LocalEstate;
use autopilot_sim::estate::{Estate, ImageSpec, Placement};
use autopilot_sim::generate::{Sizes, generate};
use serde::Serialize;
use std::collections::BTreeMap;

/// The policy every benchmark runs under (the demo's: every generated tag value is selected by it).
pub const POLICY: &str = include_str!("../../../sim/estates/demo-policy.yaml");

/// The benchmark's start: a Monday 10:00 in Berlin, inside the office schedules.
pub const START: &str = "2026-11-23T09:00:00Z";

/// What an estate of scale `n` holds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scale {
    /// Pools + fleets.
    pub n: u32,
    pub pools: u32,
    pub fleets: u32,
    pub builders: u32,
    /// Images with an export requested (one export task each).
    pub exports: u32,
    pub environments: u32,
    pub devices: u32,
    pub workspaces: u32,
}

impl Scale {
    /// The proportions: per 100 pools + fleets, 10 image builders, 1 export, 5 environments with 100 devices,
    /// and 100 WorkSpaces.
    pub fn of(n: u32) -> Scale {
        Scale {
            n,
            pools: n / 2,
            fleets: n - n / 2,
            builders: (n / 10).max(1),
            exports: (n / 100).max(1),
            environments: (n / 20).max(1),
            devices: n,
            workspaces: n,
        }
    }

    /// The resources a tick can see (everything listed above).
    pub fn resources(&self) -> u32 {
        self.pools + self.fleets + self.builders + self.exports + self.environments + self.devices + self.workspaces
    }

    /// The resources `function` reads in a tick.
    pub fn seen_by(&self, function: Function) -> u32 {
        match function {
            Function::PoolScaler => self.pools + self.fleets,
            Function::BuilderScheduler => self.builders,
            Function::ExportChaser => self.exports,
            Function::SoftwareSetRoller => self.environments + self.devices,
            Function::Remediator => self.workspaces + self.pools + self.fleets + self.builders,
        }
    }
}

/// The estate of `scale` (same seed, same estate).
pub fn estate(scale: Scale, seed: u64) -> Estate {
    let sizes = Sizes {
        pools: scale.pools,
        fleets: scale.fleets,
        builders: scale.builders,
        environments: scale.environments,
        devices: scale.devices,
        workspaces: scale.workspaces,
    };
    let mut estate = generate(sizes, seed);
    estate.start = START.into();
    for k in 0..scale.exports {
        estate.images.push(ImageSpec {
            name: export_image(k),
            state: "AVAILABLE".into(),
            tags: BTreeMap::new(),
            placement: Placement::default(),
        });
    }
    estate
}

fn export_image(k: u32) -> String {
    format!("release-{k:05}")
}

/// Stores the policy and has the export-chaser start one export per export image (`Export Requested`), so a
/// tick finds tasks in flight.
pub async fn prepare(local: &LocalEstate, scale: Scale) -> Result<(), BenchError> {
    let now = local.simulator.now();
    local.ledger().put_policy(POLICY, now).await?;
    let deps = local.deps_for(Function::ExportChaser.name());
    for k in 0..scale.exports {
        let event = serde_json::json!({
            "version": "0",
            "id": format!("bench-export-{k}"),
            "detail-type": "Export Requested",
            "source": "euc.autopilot",
            "account": "123456789012",
            "time": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "region": autopilot_sim::LOCAL_REGION,
            "resources": [],
            "detail": {
                "imageName": export_image(k),
                "amiName": format!("{}-ami", export_image(k)),
                "iamRoleArn": "arn:aws:iam::123456789012:role/AppStreamExportRole",
            }
        });
        Function::ExportChaser
            .invoke(&deps, event, std::time::Duration::from_secs(60))
            .await
            .map_err(|source| BenchError::RequestExport { export: k, source })?;
    }
    Ok(())
}
