//! Large estates for tests and benchmarks: `autopilot estate generate --pools N --fleets N --builders N
//! --environments N --devices N --workspaces N --seed S` writes an estate file with realistic variety.

use crate::estate::{
    BuilderSpec, Demand, DeviceGroupSpec, EnvironmentSpec, Estate, FleetSpec, ImageSpec, Placement, PoolSpec,
    SoftwareSetSpec, WindowSpec, WorkspaceSpec,
};
use crate::iam::sts::SpokeDeployment;
use crate::rng::Rng;
use std::collections::BTreeMap;

/// How many of each resource to generate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sizes {
    pub pools: u32,
    pub fleets: u32,
    pub builders: u32,
    pub environments: u32,
    /// Devices in total, spread over the environments.
    pub devices: u32,
    pub workspaces: u32,
}

const ZONES: [&str; 4] = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney"];

fn office_profile(peak: f64) -> Vec<f64> {
    let shape = [
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.3, 0.8, 1.0, 1.0, 0.95, 0.85, 0.95, 1.0, 0.95, 0.8, 0.5, 0.2, 0.1, 0.05,
        0.0, 0.0, 0.0,
    ];
    shape.iter().map(|s| (s * peak).round()).collect()
}

fn tags(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

/// Generates an estate; the same sizes and seed give the same file.
pub fn generate(sizes: Sizes, seed: u64) -> Estate {
    let mut rng = Rng::new(seed);
    let teams = ["sales", "support", "finance", "engineering", "hr"];
    let mut estate = Estate::from_yaml("{}").unwrap_or_else(|_| empty());
    for n in 0..sizes.pools {
        let team = teams[n as usize % teams.len()];
        let peak = 10.0 + (rng.unit() * 90.0).round();
        estate.workspaces_pools.push(PoolSpec {
            id: format!("wspool-{:09x}", rng.next_u64() % 0xf_ffff_ffff),
            name: format!("{team}-pool-{n:05}"),
            state: "RUNNING".into(),
            running_mode: "AUTO_STOP".into(),
            desired_user_sessions: (peak / 2.0) as u32,
            directory_id: "d-9067a1b2c3".into(),
            bundle_id: "wsb-0123456789".into(),
            tags: tags(&[("autopilot/capacity", team.to_owned())]),
            demand: Some(Demand {
                timezone: ZONES[n as usize % ZONES.len()].into(),
                weekday: office_profile(peak),
                weekend: None,
                noise: 0.1,
                session_minutes: 60,
            }),
            errors: Vec::new(),
            application_autoscaling: n % 50 == 49,
            placement: Placement::default(),
        });
    }
    for n in 0..sizes.fleets {
        let team = teams[n as usize % teams.len()];
        let multi = n % 3 == 2;
        let peak = 5.0 + (rng.unit() * 45.0).round();
        estate.fleets.push(FleetSpec {
            name: format!("{team}-fleet-{n:05}"),
            fleet_type: if n % 4 == 3 { "ALWAYS_ON".into() } else { "ON_DEMAND".into() },
            state: "RUNNING".into(),
            instance_type: "stream.standard.medium".into(),
            max_sessions_per_instance: if multi { 10 } else { 1 },
            desired: (peak / 2.0) as u32,
            image: Some("golden-2026-11".into()),
            tags: tags(&[("autopilot/capacity", team.to_owned())]),
            demand: Some(Demand {
                timezone: ZONES[n as usize % ZONES.len()].into(),
                weekday: office_profile(peak),
                weekend: None,
                noise: 0.1,
                session_minutes: 60,
            }),
            errors: Vec::new(),
            application_autoscaling: n % 50 == 49,
            placement: Placement::default(),
        });
    }
    for n in 0..sizes.builders {
        estate.image_builders.push(BuilderSpec {
            name: format!("builder-{n:05}"),
            state: if n % 3 == 0 { "RUNNING".into() } else { "STOPPED".into() },
            instance_type: "stream.standard.large".into(),
            state_minutes: None,
            tags: tags(&[("autopilot/builder", "golden-image".into())]),
            work: None,
            placement: Placement::default(),
        });
    }
    estate.images.push(ImageSpec {
        name: "golden-2026-11".into(),
        state: "AVAILABLE".into(),
        tags: BTreeMap::new(),
        placement: Placement::default(),
    });
    if sizes.environments > 0 {
        estate.software_sets = vec![
            SoftwareSetSpec {
                id: "100".into(),
                version: "2026.10.1".into(),
                released_at: "2026-10-06T00:00:00Z".into(),
                supported_until: Some("2027-03-31T00:00:00Z".into()),
                validation_status: "VALIDATED".into(),
            },
            SoftwareSetSpec {
                id: "101".into(),
                version: "2026.11.1".into(),
                released_at: "2026-11-17T00:00:00Z".into(),
                supported_until: Some("2027-03-31T00:00:00Z".into()),
                validation_status: "VALIDATED".into(),
            },
        ];
    }
    let rings = ["canary", "early", "broad"];
    for n in 0..sizes.environments {
        let id = format!("env{n:05}");
        estate.environments.push(EnvironmentSpec {
            id: id.clone(),
            name: format!("site-{n:05}"),
            desired_software_set_id: Some("100".into()),
            software_set_update_mode: "USE_DESIRED".into(),
            software_set_update_schedule: "USE_MAINTENANCE_WINDOW".into(),
            maintenance_window: Some(WindowSpec {
                days: vec!["SATURDAY".into(), "SUNDAY".into()],
                start: "01:00".into(),
                end: "05:00".into(),
            }),
            desktop_endpoint: None,
            activation_code: None,
            tags: tags(&[("autopilot/ring", rings[(n as usize).min(rings.len() - 1)].to_owned())]),
            placement: Placement::default(),
        });
        let share = sizes.devices / sizes.environments + u32::from(n < sizes.devices % sizes.environments);
        if share > 0 {
            estate.devices.push(DeviceGroupSpec {
                environment: id,
                count: share,
                current_software_set_id: "100".into(),
                never_update: share / 50,
                not_reporting: share / 40,
                apply_minutes: 20,
                name_prefix: None,
                tags: BTreeMap::new(),
            });
        }
    }
    for n in 0..sizes.workspaces {
        estate.workspaces.push(WorkspaceSpec {
            id: format!("ws-{:09x}", rng.next_u64() % 0xf_ffff_ffff),
            directory_id: "d-9067a1b2c3".into(),
            user: format!("user{n:05}"),
            bundle_id: "wsb-0123456789".into(),
            state: "AVAILABLE".into(),
            connected: rng.chance(0.3),
            tags: BTreeMap::new(),
            unhealthy_after_minutes: rng.chance(0.02).then(|| (rng.unit() * 600.0) as u32),
            recovers_on_reboot: !rng.chance(0.2),
            faults: Vec::new(),
            placement: Placement::default(),
        });
    }
    estate
}

fn empty() -> Estate {
    Estate {
        account: "123456789012".into(),
        region: "eu-central-1".into(),
        start: crate::estate::DEFAULT_START.into(),
        workspaces_pools: Vec::new(),
        workspaces: Vec::new(),
        workspace_groups: Vec::new(),
        fleets: Vec::new(),
        image_builders: Vec::new(),
        images: Vec::new(),
        environments: Vec::new(),
        software_sets: Vec::new(),
        devices: Vec::new(),
        faults: Default::default(),
        export_role_arns: None,
        spokes: Vec::new(),
        organization: None,
    }
}

/// Spreads a generated estate over `accounts` accounts (`100000000001`, …) × `regions`: each resource in turn goes
/// to the next account × region, every account gets a spoke (the hub's functions may assume its role), and the
/// estate's own account stays the hub's. With one account and no regions nothing changes.
pub fn spread(estate: &mut Estate, accounts: u32, regions: &[String]) {
    if accounts == 0 || (accounts == 1 && regions.is_empty()) {
        return;
    }
    let regions = if regions.is_empty() { vec![estate.region.clone()] } else { regions.to_vec() };
    let ids: Vec<String> = (1..=u64::from(accounts)).map(|n| format!("{:012}", 100_000_000_000 + n)).collect();
    let places: Vec<(String, String)> =
        ids.iter().flat_map(|a| regions.iter().map(move |r| (a.clone(), r.clone()))).collect();
    let mut next = 0_usize;
    let mut place = |placement: &mut Placement| {
        let (account, region) = places[next % places.len()].clone();
        next += 1;
        *placement = Placement { account: Some(account), region: Some(region) };
    };
    estate.workspaces_pools.iter_mut().for_each(|p| place(&mut p.placement));
    estate.fleets.iter_mut().for_each(|f| place(&mut f.placement));
    estate.image_builders.iter_mut().for_each(|b| place(&mut b.placement));
    estate.images.iter_mut().for_each(|i| place(&mut i.placement));
    estate.environments.iter_mut().for_each(|e| place(&mut e.placement));
    // A directory lives in one account and region: its WorkSpaces go with it.
    let mut directories: BTreeMap<String, Placement> = BTreeMap::new();
    let mut by_directory = |directory: &str| {
        let placement = directories.entry(directory.to_owned()).or_insert_with(|| {
            let mut placement = Placement::default();
            place(&mut placement);
            placement
        });
        placement.clone()
    };
    for group in &mut estate.workspace_groups {
        group.placement = by_directory(&group.directory_id);
    }
    for workspace in &mut estate.workspaces {
        workspace.placement = by_directory(&workspace.directory_id);
    }
    estate.spokes = ids
        .into_iter()
        .map(|account| SpokeDeployment { account, role_name: "EUCAutopilotSpoke".into(), external_id: None })
        .collect();
}
