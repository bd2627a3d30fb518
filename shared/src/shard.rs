//! Many accounts and regions, hub and spoke. When the policy names `targets`, the hub's scheduled tick does no
//! work of its own: it finds its shards (account × region: listed accounts, and the accounts of listed
//! organisational units discovered now), and publishes one `Shard Tick` per shard on the project bus, ten to a
//! `PutEvents` call. EventBridge delivers each to the function as its own invocation, with the function's retry
//! policy and dead-letter queue: a shard is retried on its own and cannot delay, fail or starve another.
//!
//! A shard's invocation works in the spoke account through the spoke role, assumed with STS and cached until
//! shortly before its credentials expire; its clients (one set per account × region, one pacer each, all over
//! the one HTTP client of the process) live as long as the Lambda sandbox ([`Shards`]).
//!
//! Why events and not asynchronous `Invoke` per shard: the same rule, retry policy and dead-letter queue as every
//! other event the function takes; a shard tick is an event anyone can read in the bus's archive or replay; the
//! hub's role needs no `lambda:InvokeFunction` on itself; and ten shards cost one request instead of ten.

use crate::clients::AwsClients;
use crate::events::{AUTOPILOT_SOURCE, SHARD_TICK_DETAIL_TYPE, ScheduledTick, ShardTick};
use crate::policy::targets::{ShardTarget, Targets};
use crate::resource::Place;
use aws_config::SdkConfig;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

/// The most entries one `PutEvents` call takes.
pub const PUT_EVENTS_BATCH: usize = 10;

/// The role a shard's requests are made as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpokeRole {
    pub arn: String,
    pub external_id: Option<String>,
}

impl SpokeRole {
    /// The spoke role `name` in `account`.
    pub fn in_account(partition: &str, account: &str, name: &str, external_id: Option<String>) -> Self {
        Self { arn: format!("arn:{partition}:iam::{account}:role/{name}"), external_id }
    }

    /// The spoke's read-only role beside this one (`spoke.yaml`: `<SpokeRoleName>Reader`), which the hub
    /// account's operators may assume for `autopilot plan`.
    pub fn reader(&self) -> Self {
        Self { arn: format!("{}{READER_SUFFIX}", self.arn), external_id: self.external_id.clone() }
    }
}

/// The suffix of the spoke's read-only role's name.
pub const READER_SUFFIX: &str = "Reader";

/// Whether shards are worked (the functions: the spoke role) or only looked at (`autopilot plan`: the spoke's
/// read-only role, and clients that refuse every operation that is not a read before it is sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Operate,
    ReadOnly,
}

/// Clients per shard, built when first needed and kept for the life of the process.
#[derive(Debug, Clone)]
pub struct Shards {
    base: SdkConfig,
    http: SharedHttpClient,
    access: Access,
    cache: Arc<Mutex<HashMap<(Place, SpokeRole), Shard>>>,
    /// The accounts of the targeted units, as last listed for an event ([`Shards::unit_accounts`]).
    members: Arc<Mutex<Option<Members>>>,
}

/// The accounts of some units, listed at one instant.
#[derive(Debug, Clone)]
struct Members {
    at: DateTime<Utc>,
    units: Vec<String>,
    accounts: BTreeMap<String, Vec<String>>,
}

/// How long the units' accounts listed for an event serve the events after it (a tick's interval: an account
/// moved into or out of a unit is seen as soon as the next tick sees it).
pub const MEMBERS_KEPT: chrono::Duration = chrono::Duration::minutes(5);

/// One shard's clients and the credentials they sign with.
#[derive(Debug, Clone)]
struct Shard {
    clients: AwsClients,
    role: Arc<AssumedRole>,
}

/// How long before they expire assumed credentials are renewed.
const RENEW_BEFORE: std::time::Duration = std::time::Duration::from_secs(300);

/// The spoke role's credentials, assumed when first needed and again [`RENEW_BEFORE`] their expiry: one STS call
/// per shard and hour for every client of the shard, whatever the number of services and calls.
#[derive(Debug)]
struct AssumedRole {
    provider: aws_config::sts::AssumeRoleProvider,
    cached: tokio::sync::Mutex<Option<aws_credential_types::Credentials>>,
}

impl AssumedRole {
    async fn credentials(&self) -> aws_credential_types::provider::Result {
        use aws_credential_types::provider::ProvideCredentials;
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref()
            && credentials.expiry().is_none_or(|at| at > std::time::SystemTime::now() + RENEW_BEFORE)
        {
            return Ok(credentials.clone());
        }
        let fresh = self.provider.provide_credentials().await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }
}

/// The shard's clients sign with the cached credentials.
#[derive(Debug, Clone)]
struct Assumed(Arc<AssumedRole>);

impl aws_credential_types::provider::ProvideCredentials for Assumed {
    fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(self.0.credentials())
    }
}

/// The spoke role of a shard could not be assumed (no such role, a trust that refuses the hub, a wrong external
/// id, STS unreachable): the shard's work cannot start.
#[derive(Debug, thiserror::Error)]
#[error("cannot assume {role} for {account} in {region}: {reason}")]
pub struct AssumeError {
    pub role: String,
    pub account: String,
    pub region: String,
    pub reason: String,
}

impl Shards {
    /// `base`: the hub's configuration (its credentials assume the spoke roles); `http`: the process's one HTTP
    /// client, unwrapped (each shard's clients wrap it in a pacer of their own).
    pub fn new(base: &SdkConfig, http: SharedHttpClient) -> Self {
        Self {
            base: base.clone(),
            http,
            access: Access::Operate,
            cache: Arc::new(Mutex::new(HashMap::new())),
            members: Arc::new(Mutex::new(None)),
        }
    }

    /// The accounts of `units` (each unit's, its child units' included), listed through Organizations unless
    /// they were listed for these units within [`MEMBERS_KEPT`] before `now`: an event from an account no
    /// target lists by itself is worked only if a targeted unit holds it.
    pub async fn unit_accounts(
        &self,
        organizations: &aws_sdk_organizations::Client,
        units: Vec<String>,
        now: DateTime<Utc>,
        calls: &mut u32,
    ) -> Result<BTreeMap<String, Vec<String>>, crate::error::AutopilotError> {
        let kept = self.members.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(kept) = kept.filter(|m| m.units == units && now >= m.at && now - m.at < MEMBERS_KEPT) {
            return Ok(kept.accounts);
        }
        let accounts = discover(organizations, units.iter().map(String::as_str), calls).await?;
        *self.members.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Members { at: now, units, accounts: accounts.clone() });
        Ok(accounts)
    }

    /// The same, but only looking: each shard through the spoke's read-only role, with read-only clients.
    pub fn read_only(self) -> Self {
        Self { access: Access::ReadOnly, ..self }
    }

    /// The clients of `place`, signing as `role` (session `session`, e.g. `euc-autopilot-pool-scaler`), with
    /// their credentials in hand: the role is assumed now if it is not yet (or its credentials are about to
    /// expire), and a refusal is the error, with STS's words.
    pub async fn clients(&self, place: &Place, role: &SpokeRole, session: &str) -> Result<AwsClients, AssumeError> {
        let role = match self.access {
            Access::Operate => role.clone(),
            Access::ReadOnly => role.reader(),
        };
        let shard = self.shard(place, &role, session).await;
        shard.role.credentials().await.map_err(|error| AssumeError {
            role: role.arn.clone(),
            account: place.account.clone(),
            region: place.region.clone(),
            reason: crate::error::message_chain(&error),
        })?;
        Ok(match self.access {
            Access::Operate => shard.clients,
            Access::ReadOnly => shard.clients.read_only(),
        })
    }

    async fn shard(&self, place: &Place, role: &SpokeRole, session: &str) -> Shard {
        let key = (place.clone(), role.clone());
        if let Some(shard) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return shard.clone();
        }
        let mut hub = self.base.to_builder().http_client(self.http.clone());
        // The STS client of the assume-role provider needs a clock and a sleep (a configuration loaded from the
        // environment has both; one built by hand may not, and the provider would panic without a clock).
        if self.base.time_source().is_none() {
            hub.set_time_source(Some(aws_smithy_async::time::SharedTimeSource::default()));
        }
        if self.base.sleep_impl().is_none() {
            hub.set_sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep());
        }
        let hub = hub.build();
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(role.arn.clone()).session_name(session);
        if let Some(external_id) = &role.external_id {
            builder = builder.external_id(external_id.clone());
        }
        // With the configuration given, `build` only assembles the STS request: nothing is sent here.
        let provider = builder.configure(&hub).build().await;
        let assumed = Arc::new(AssumedRole { provider, cached: tokio::sync::Mutex::new(None) });
        let config = self
            .base
            .to_builder()
            .region(aws_types::region::Region::new(place.region.clone()))
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(Assumed(
                assumed.clone(),
            )))
            // The credentials are cached by `AssumedRole`, once for all of the shard's clients.
            .identity_cache(aws_config::identity::IdentityCache::no_cache())
            .build();
        let shard = Shard { clients: AwsClients::over(&config, self.http.clone()), role: assumed };
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).entry(key).or_insert(shard).clone()
    }
}

/// The shard ticks one hub tick fans out to: one per shard, each naming the function, the shard and the hub
/// tick it is a share of (pure).
pub fn shard_ticks<'a>(
    function: &'a str,
    schedule: &'a str,
    scheduled_at: DateTime<Utc>,
    targets: &'a Targets,
    discovered: &'a BTreeMap<String, Vec<String>>,
) -> impl Iterator<Item = ShardTick> + 'a {
    targets.shards(discovered).map(move |ShardTarget { place, dry_run }| ShardTick {
        function: function.to_owned(),
        account: place.account,
        region: place.region,
        schedule: schedule.to_owned(),
        scheduled_at,
        dry_run,
    })
}

/// The hub tick a shard tick stands for, placed in the shard: what the function's own tick handling receives.
pub fn as_tick(id: Option<String>, shard: &ShardTick) -> EventBridgeEvent<ScheduledTick> {
    // `EventBridgeEvent` is non-exhaustive: built through its JSON form.
    let event = serde_json::json!({
        "version": "0",
        "id": id,
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": shard.account,
        "time": shard.scheduled_at,
        "region": shard.region,
        "resources": [shard.schedule],
        "detail": {},
    });
    let mut tick: EventBridgeEvent<ScheduledTick> =
        serde_json::from_value(event).unwrap_or_else(|_| EventBridgeEvent::default());
    tick.id = id;
    tick
}

/// How a dispatch went: shard ticks accepted by EventBridge, rejected, and the calls it took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dispatched {
    pub accepted: u32,
    pub rejected: u32,
    pub calls: u32,
}

/// Publishes `ticks` on `bus`, [`PUT_EVENTS_BATCH`] to a call. A rejected entry or a failed call is counted,
/// never retried here: the hub tick fails retryably and its redelivery publishes again (each shard's work is
/// idempotent per hub tick).
pub async fn publish(
    eventbridge: &aws_sdk_eventbridge::Client,
    bus: Option<&str>,
    ticks: impl IntoIterator<Item = ShardTick>,
) -> Dispatched {
    let mut dispatched = Dispatched::default();
    let mut ticks = ticks.into_iter().peekable();
    while ticks.peek().is_some() {
        let chunk: Vec<ShardTick> = ticks.by_ref().take(PUT_EVENTS_BATCH).collect();
        let entries = chunk
            .iter()
            .map(|tick| {
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source(AUTOPILOT_SOURCE)
                    .detail_type(SHARD_TICK_DETAIL_TYPE)
                    .resources(tick.schedule.clone())
                    .detail(serde_json::to_string(tick).unwrap_or_default())
                    .set_event_bus_name(bus.map(str::to_owned))
                    .build()
            })
            .collect();
        dispatched.calls += 1;
        let size = chunk.len() as u32;
        match eventbridge.put_events().set_entries(Some(entries)).send().await {
            Ok(output) => {
                let failed = u32::try_from(output.failed_entry_count()).unwrap_or(size).min(size);
                dispatched.rejected += failed;
                dispatched.accepted += size - failed;
            }
            Err(error) => {
                tracing::warn!(error = %crate::error::sdk_error_message(&error), "could not publish shard ticks");
                dispatched.rejected += size;
            }
        }
    }
    dispatched
}

/// The accounts of each unit (and, recursively, of its child units), from AWS Organizations.
pub async fn discover(
    organizations: &aws_sdk_organizations::Client,
    units: impl Iterator<Item = &str>,
    calls: &mut u32,
) -> Result<BTreeMap<String, Vec<String>>, crate::error::AutopilotError> {
    let mut found = BTreeMap::new();
    for unit in units {
        let mut accounts = Vec::new();
        let mut pending = vec![unit.to_owned()];
        while let Some(parent) = pending.pop() {
            let mut pages = organizations.list_accounts_for_parent().parent_id(&parent).into_paginator().send();
            while let Some(page) = pages.next().await {
                *calls += 1;
                let page = page.map_err(|e| discovery_error(unit, &e))?;
                accounts.extend(
                    page.accounts()
                        .iter()
                        .filter(|a| a.status().is_none_or(|s| s.as_str() == "ACTIVE"))
                        .filter_map(|a| a.id().map(str::to_owned)),
                );
            }
            let mut children = organizations
                .list_children()
                .parent_id(&parent)
                .child_type(aws_sdk_organizations::types::ChildType::OrganizationalUnit)
                .into_paginator()
                .send();
            while let Some(page) = children.next().await {
                *calls += 1;
                let page = page.map_err(|e| discovery_error(unit, &e))?;
                pending.extend(page.children().iter().filter_map(|c| c.id().map(str::to_owned)));
            }
        }
        accounts.sort();
        accounts.dedup();
        found.insert(unit.to_owned(), accounts);
    }
    Ok(found)
}

fn discovery_error<
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
>(
    unit: &str,
    error: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> crate::error::AutopilotError {
    crate::error::AutopilotError::new(
        crate::error::sdk_error_class(error),
        format!(
            "could not list the accounts of {unit} (AWS Organizations): {}",
            crate::error::sdk_error_message(error)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::targets::Target;

    #[test]
    fn a_tick_becomes_one_shard_tick_per_account_and_region_and_each_reads_back_as_a_tick_in_its_shard() {
        let targets = Targets {
            role_name: "EUCAutopilotSpoke".into(),
            external_id: None,
            accounts: vec![Target {
                id: "111122223333".into(),
                regions: vec!["eu-central-1".into(), "eu-west-1".into()],
                dry_run: None,
            }],
            organizational_units: vec![],
            exclude: vec![],
        };
        let at = "2026-11-23T06:00:00Z".parse().unwrap();
        let discovered = BTreeMap::new();
        let ticks: Vec<ShardTick> =
            shard_ticks("pool-scaler", "arn:aws:scheduler:eu-central-1:999:schedule/x", at, &targets, &discovered)
                .collect();
        assert_eq!(ticks.len(), 2);
        let tick = as_tick(Some("id-1".into()), &ticks[1]);
        assert_eq!(tick.region.as_deref(), Some("eu-west-1"));
        assert_eq!(tick.account.as_deref(), Some("111122223333"));
        assert_eq!(
            crate::events::Input::tick_key(&tick),
            "arn:aws:scheduler:eu-central-1:999:schedule/x@2026-11-23T06:00:00+00:00"
        );
        // what is published parses back as the same shard tick
        let event = serde_json::json!({
            "version": "0", "id": "e-1", "detail-type": "Shard Tick", "source": "euc.autopilot",
            "account": "999999999999", "time": "2026-11-23T06:00:01Z", "region": "eu-central-1", "resources": [],
            "detail": serde_json::to_value(&ticks[0]).unwrap(),
        });
        match crate::events::parse(event).unwrap() {
            crate::events::Input::ShardTick(parsed) => assert_eq!(parsed.detail, ticks[0]),
            other => panic!("{other:?}"),
        }
    }
}
