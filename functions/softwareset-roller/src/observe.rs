//! The observe step: environments (with their tags, through the ledger's tag cache), software sets, and the
//! devices of the rings being gated.
//!
//! API fact: `ListDevices` returns summaries without `softwareSetUpdateStatus` or `softwareSetComplianceStatus`
//! (only `GetDevice` has them), and it cannot filter by environment. So the devices are listed once, and the
//! devices of the environments being gated are fetched one by one (with bounded concurrency) only when their
//! details can change the gate's verdict ([`crate::gate::needs_details`]).

use crate::gate::{DeviceView, figures, needs_details, summary_figures};
use crate::machine::{RingObservation, Rollout, Status, supported};
use crate::window::UpdateWindow;
use autopilot_shared::clients::AwsClients;
use autopilot_shared::error::{AutopilotError, ObserveError};
use autopilot_shared::ledger::Ledger;
use autopilot_shared::lookups::{CONCURRENCY, Coverage, TagLookup, cached_tags};
use autopilot_shared::policy::RolloutPolicy;
use autopilot_shared::resource::{Place, ResourceKind};
use autopilot_shared::runtime::classified;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU32;

/// The kinds whose tags the softwareset-roller caches (its tag-change rule names their service).
pub const CACHED_TAGS: [ResourceKind; 1] = [ResourceKind::Environment];

fn instant(value: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    value.and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos()))
}

/// One environment as the roller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentView {
    pub id: String,
    pub name: String,
    pub arn: String,
    pub desired_software_set_id: Option<String>,
    /// USE_DESIRED or USE_LATEST.
    pub update_mode: String,
    /// When its devices take a new set.
    pub window: UpdateWindow,
    pub tags: BTreeMap<String, String>,
}

impl autopilot_shared::policy::ResourceView for EnvironmentView {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
    fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// One software set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftwareSetView {
    pub id: String,
    pub arn: String,
    pub version: String,
    pub released_at: Option<DateTime<Utc>>,
    pub supported_until: Option<DateTime<Utc>>,
    /// VALIDATED or NOT_VALIDATED.
    pub validation_status: String,
}

/// Every environment (one paginated `ListEnvironments` pass, without tags), and the calls made.
pub async fn list_environments(
    aws: &AwsClients,
) -> Result<(Vec<aws_sdk_workspacesthinclient::types::EnvironmentSummary>, u32), ObserveError> {
    let (mut found, mut calls, mut token) = (Vec::new(), 0u32, None);
    loop {
        calls += 1;
        let page = aws
            .thinclient
            .list_environments()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| ObserveError::sdk("environments", &e))?;
        found.extend(page.environments().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok((found, calls));
        }
    }
}

/// Every environment with its tags (read through the ledger's tag cache, so a tick asks only for what changed
/// or is due), and the calls made. `region`: where an environment whose ARN names none is.
pub async fn environments(
    aws: &AwsClients,
    ledger: &Ledger,
    now: DateTime<Utc>,
    region: &str,
) -> Result<(Vec<EnvironmentView>, u32), ObserveError> {
    let (found, listed) = list_environments(aws).await?;
    let wanted = found
        .into_iter()
        .filter_map(|e| {
            let arn = e.arn().unwrap_or_default().to_owned();
            let id = e.id().unwrap_or_default();
            match Place::of_arn(&arn, region).resource(ResourceKind::Environment, id) {
                Ok(resource) => Some(TagLookup { resource, target: arn, item: e }),
                Err(_) => {
                    tracing::warn!(%id, "environment with an unusable id or ARN: not rolled out to");
                    None
                }
            }
        })
        .collect();
    let calls = AtomicU32::new(listed);
    let tagged = cached_tags(aws, ledger, now, ResourceKind::Environment, wanted, Coverage::Kind, &calls).await?;
    let mut views: Vec<EnvironmentView> = tagged
        .into_iter()
        .map(|(_, e, tags)| EnvironmentView {
            id: e.id().unwrap_or_default().to_owned(),
            name: e.name().unwrap_or_default().to_owned(),
            arn: e.arn().unwrap_or_default().to_owned(),
            desired_software_set_id: e.desired_software_set_id().map(str::to_owned),
            update_mode: e.software_set_update_mode().map(|m| m.as_str().to_owned()).unwrap_or_default(),
            window: UpdateWindow::of(e.software_set_update_schedule(), e.maintenance_window()),
            tags,
        })
        .collect();
    views.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((views, calls.into_inner()))
}

/// Every software set, and the calls made.
pub async fn software_sets(aws: &AwsClients) -> Result<(Vec<SoftwareSetView>, u32), ObserveError> {
    let (mut found, mut calls, mut token) = (Vec::new(), 0u32, None);
    loop {
        calls += 1;
        let page = aws
            .thinclient
            .list_software_sets()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| ObserveError::sdk("software sets", &e))?;
        found.extend(page.software_sets().iter().map(|s| SoftwareSetView {
            id: s.id().unwrap_or_default().to_owned(),
            arn: s.arn().unwrap_or_default().to_owned(),
            version: s.version().unwrap_or_default().to_owned(),
            released_at: instant(s.released_at()),
            supported_until: instant(s.supported_until()),
            validation_status: s.validation_status().map(|v| v.as_str().to_owned()).unwrap_or_default(),
        }));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok((found, calls));
        }
    }
}

/// The devices of `environments` as `ListDevices` summarises them (no update or compliance status), and the
/// calls made.
pub async fn device_summaries(
    aws: &AwsClients,
    environments: &BTreeSet<String>,
) -> Result<(Vec<DeviceView>, u32), ObserveError> {
    let (mut devices, mut calls, mut token) = (Vec::new(), 0u32, None);
    loop {
        calls += 1;
        let page = aws
            .thinclient
            .list_devices()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| ObserveError::sdk("devices", &e))?;
        devices.extend(
            page.devices().iter().filter(|d| d.environment_id().is_some_and(|e| environments.contains(e))).map(|d| {
                DeviceView {
                    id: d.id().unwrap_or_default().to_owned(),
                    environment_id: d.environment_id().unwrap_or_default().to_owned(),
                    status: d.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    current_software_set_id: d.current_software_set_id().map(str::to_owned),
                    update_status: None,
                    compliance_status: None,
                    last_posture_at: instant(d.last_posture_at()),
                }
            }),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    devices.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((devices, calls))
}

/// `summaries`' devices read one by one (`GetDevice`), with their update and compliance status.
pub async fn device_details(aws: &AwsClients, summaries: &[DeviceView]) -> Result<Vec<DeviceView>, ObserveError> {
    let devices = futures::stream::iter(summaries)
        .map(|summary| async move {
            let output = aws
                .thinclient
                .get_device()
                .id(&summary.id)
                .send()
                .await
                .map_err(|e| ObserveError::sdk("device", &e))?;
            Ok::<_, ObserveError>(output.device().map(|d| DeviceView {
                id: d.id().unwrap_or_default().to_owned(),
                environment_id: d.environment_id().unwrap_or_default().to_owned(),
                status: d.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                current_software_set_id: d.current_software_set_id().map(str::to_owned),
                update_status: d.software_set_update_status().map(|s| s.as_str().to_owned()),
                compliance_status: d.software_set_compliance_status().map(|s| s.as_str().to_owned()),
                last_posture_at: instant(d.last_posture_at()),
            }))
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let mut devices: Vec<DeviceView> = devices.into_iter().flatten().collect();
    devices.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(devices)
}

/// What a request or a tick observed: the environments, the software sets, and the account and region the
/// invocation acts in.
#[derive(Debug, Clone)]
pub struct Seen {
    pub envs: Vec<EnvironmentView>,
    pub sets: Vec<SoftwareSetView>,
    pub origin: Place,
}

impl Seen {
    /// Whether a software set (by id) is still supported at `now`.
    pub fn supported_lookup(&self, now: DateTime<Utc>) -> impl Fn(&str) -> bool + '_ {
        move |id: &str| self.sets.iter().find(|s| s.id == id).is_some_and(|s| supported(s.supported_until, now))
    }
}

/// The environments and software sets, and the calls made.
pub async fn estate(
    aws: &AwsClients,
    ledger: &Ledger,
    now: DateTime<Utc>,
    origin: Place,
) -> Result<(Seen, u32), AutopilotError> {
    let (envs, env_calls) = environments(aws, ledger, now, &origin.region).await.map_err(classified)?;
    let (sets, set_calls) = software_sets(aws).await.map_err(classified)?;
    Ok((Seen { envs, sets, origin }, env_calls + set_calls))
}

/// Every open rollout of the account and region worked (the ledger's scope: a shard steps only its own),
/// freshly read.
pub async fn open_rollouts(ledger: &Ledger) -> Result<Vec<(Rollout, u64)>, AutopilotError> {
    let listed = ledger.open_work_items::<Rollout>(crate::machine::KIND).await.map_err(classified)?;
    let mut rollouts = Vec::new();
    for (id, _) in listed {
        if let Some(fresh) = ledger.get_work_item::<Rollout>(crate::machine::KIND, &id).await.map_err(classified)? {
            rollouts.push((fresh.state, fresh.version));
        }
    }
    Ok(rollouts)
}

/// Observes the current ring of `rollout` (environments' desired sets from `environments`, devices fetched). A
/// failed device read is the rollout's own trouble ([`crate::act::Look::Unread`]), not the tick's.
pub async fn observe_ring(
    aws: &AwsClients,
    rollout: &Rollout,
    policy: &RolloutPolicy,
    environments: &BTreeMap<String, EnvironmentView>,
    now: DateTime<Utc>,
) -> Result<(Option<RingObservation>, u32), ObserveError> {
    let (Some(progress), Some(ring)) = (rollout.rings.get(rollout.current), policy.rings.get(rollout.current)) else {
        return Ok((None, 0));
    };
    if rollout.paused || rollout.status.is_final() {
        return Ok((None, 0));
    }
    let desired = progress
        .environments
        .iter()
        .map(|e| (e.id.clone(), environments.get(&e.id).and_then(|v| v.desired_software_set_id.clone())))
        .collect();
    if progress.applied_at.is_none() {
        // Not applied yet: only the desired sets matter (environments already on the target are not set again);
        // no device look-ups.
        return Ok((Some(RingObservation { desired, figures: Default::default() }), 0));
    }
    // While a ring bakes nothing is decided before the bake ends: no device look-ups (GetDevice is per device).
    let baking_until = progress.updated_at.map(|at| at + ring.bake);
    if rollout.status == Status::Baking && baking_until.is_some_and(|until| now < until) {
        return Ok((None, 0));
    }
    let ids = progress.environments.iter().map(|e| e.id.clone()).collect();
    let (summaries, calls) = device_summaries(aws, &ids).await?;
    let counted = summary_figures(&summaries, &rollout.target_set, &ring.gates, now);
    let from = progress.gate_from().unwrap_or(now);
    if !needs_details(&counted, &ring.gates, from, now) {
        return Ok((Some(RingObservation { desired, figures: counted }), calls));
    }
    let devices = device_details(aws, &summaries).await?;
    let reads = u32::try_from(summaries.len()).unwrap_or(u32::MAX);
    let figures = figures(&devices, &rollout.target_set, &ring.gates, now);
    Ok((Some(RingObservation { desired, figures }), calls.saturating_add(reads)))
}
