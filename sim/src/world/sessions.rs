//! The session events AWS sends to EventBridge as users start and end sessions, as the simulated world makes
//! them: `AppStream Session Notification` for fleet sessions and `WorkSpaces Access` for pool logins. Sessions
//! are counted, not named, so ids are made from the resource, the minute and the session's number in it.

use super::{Fleet, Pool};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// A fleet session's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Started,
    Ended,
}

impl Change {
    fn event_type(self) -> &'static str {
        match self {
            Change::Started => "SESSION_STARTED",
            Change::Ended => "SESSION_ENDED",
        }
    }
}

/// `AppStream Session Notification` for the `n`th session of `fleet` that changed at `at`.
pub fn notification(fleet: &Fleet, at: DateTime<Utc>, n: u64, change: Change) -> Value {
    let session = format!("{}-{}-{n}", fleet.name, at.timestamp() / 60);
    json!({
        "version": "0",
        "id": format!("session-{}-{session}", change.event_type().to_lowercase()),
        "detail-type": "AppStream Session Notification",
        "source": "aws.appstream",
        "account": fleet.account,
        "time": at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": fleet.region,
        "resources": [format!("arn:aws:appstream:{}:{}:fleet/{}", fleet.region, fleet.account, fleet.name)],
        "detail": {
            "fleetName": fleet.name,
            "stackName": format!("{}-stack", fleet.name),
            "sessionId": session,
            "userId": format!("user-{session}"),
            "eventType": change.event_type(),
        }
    })
}

/// `WorkSpaces Access` for the `n`th user who logged in to `pool` at `at`.
pub fn access(pool: &Pool, at: DateTime<Utc>, n: u64) -> Value {
    let session = format!("{}-{}-{n}", pool.id, at.timestamp() / 60);
    json!({
        "version": "0",
        "id": format!("access-{session}"),
        "detail-type": "WorkSpaces Access",
        "source": "aws.workspaces",
        "account": pool.account,
        "time": at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": pool.region,
        "resources": [format!("arn:aws:workspaces:{}:{}:workspacespool/{}", pool.region, pool.account, pool.id)],
        "detail": {
            "actionType": "successfulLogin",
            "workspacesClientProductName": "WorkSpaces Desktop Client",
            "loginTime": at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "directoryId": pool.directory_id,
            "workspaceId": pool.id,
            "clientPlatform": "Windows",
        }
    })
}
