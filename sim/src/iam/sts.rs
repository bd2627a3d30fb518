//! AWS STS `AssumeRole` for the spoke roles, as AWS answers it: the caller's identity policy must allow
//! `sts:AssumeRole` on the role, the role must exist in the target account (the estate's `spokes` say where
//! `spoke.yaml` is deployed) and trust the caller (the hub account's function roles, the external id when the
//! spoke requires one). The session it issues signs later requests as the spoke role of that account, with the
//! policies `spoke.yaml` gives it.

use super::policy::PolicyDocument;
use super::template::{Stack, StackSettings};
use super::{Grants, IamError, Principal, Refusal};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The spoke template every spoke role comes from.
pub const SPOKE_TEMPLATE: &str = include_str!("../../../spoke.yaml");

/// Where `spoke.yaml` is deployed in the estate: an account, its role's name and the external id its trust asks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpokeDeployment {
    pub account: String,
    #[serde(default = "default_role_name")]
    pub role_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

fn default_role_name() -> String {
    "EUCAutopilotSpoke".into()
}

/// Whom a spoke role trusts (with the external id, when the spoke asks for one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// `SpokeRole`: the hub stack's function roles.
    HubFunctions,
    /// `SpokeReaderRole`: any principal of the hub account (its own policy must allow the call).
    HubAccount,
}

/// The roles `spoke.yaml` creates: its resource id, the suffix of its name, whom it trusts.
const ROLES: [(&str, &str, Trust); 2] =
    [("SpokeRole", "", Trust::HubFunctions), ("SpokeReaderRole", "Reader", Trust::HubAccount)];

/// A deployed spoke role: what it trusts and what it may do.
#[derive(Debug)]
struct SpokeRole {
    arn: String,
    account: String,
    trust: Trust,
    external_id: Option<String>,
    documents: Vec<Value>,
    parsed: Vec<PolicyDocument>,
}

/// The spoke roles of the estate and the sessions issued for them.
#[derive(Debug, Default)]
pub struct Sessions {
    roles: BTreeMap<String, SpokeRole>,
    issued: Mutex<HashMap<String, Arc<Principal>>>,
    next: AtomicU64,
}

/// Credentials of an assumed role, as `AssumeRole` answers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub access_key: String,
    pub assumed_role_arn: String,
    pub assumed_role_id: String,
}

impl Sessions {
    /// The spoke roles `deployments` name, each resolved from `spoke.yaml` for its account, trusting the hub
    /// stack `hub_stack` in `hub_account`, in `regions`.
    pub fn new(
        deployments: &[SpokeDeployment],
        hub_account: &str,
        hub_stack: &str,
        regions: &[String],
        export_roles: &[String],
    ) -> Result<Self, IamError> {
        let mut roles = BTreeMap::new();
        for spoke in deployments {
            let settings = StackSettings {
                stack_name: "euc-autopilot-spoke".into(),
                partition: "aws".into(),
                account: spoke.account.clone(),
                region: regions.first().cloned().unwrap_or_else(|| "eu-central-1".into()),
                parameters: [
                    ("HubAccountId".to_owned(), hub_account.to_owned()),
                    ("HubStackName".to_owned(), hub_stack.to_owned()),
                    ("SpokeRoleName".to_owned(), spoke.role_name.clone()),
                    ("Regions".to_owned(), regions.join(",")),
                    ("ExternalId".to_owned(), spoke.external_id.clone().unwrap_or_default()),
                    ("ExportRoleArns".to_owned(), export_roles.join(",")),
                ]
                .into(),
                physical_names: BTreeMap::new(),
            };
            let stack = Stack::new(SPOKE_TEMPLATE, settings)?;
            for (resource, suffix, trust) in ROLES {
                let (_, role) = stack
                    .resources_of_type("AWS::IAM::Role")
                    .find(|(id, _)| *id == resource)
                    .ok_or_else(|| IamError::Identity(format!("spoke.yaml has no {resource}")))?;
                let mut documents = Vec::new();
                for policy in stack
                    .resolve(&role["Properties"]["Policies"])?
                    .unwrap_or(Value::Null)
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    documents.push(policy["PolicyDocument"].clone());
                }
                let parsed = super::parse(&documents, resource)?;
                let arn = format!("arn:aws:iam::{}:role/{}{suffix}", spoke.account, spoke.role_name);
                roles.insert(
                    arn.clone(),
                    SpokeRole {
                        arn,
                        account: spoke.account.clone(),
                        trust,
                        external_id: spoke.external_id.clone(),
                        documents,
                        parsed,
                    },
                );
            }
        }
        Ok(Self { roles, issued: Mutex::new(HashMap::new()), next: AtomicU64::new(1) })
    }

    /// A session issued earlier, by its access key.
    pub fn session(&self, key: &str) -> Option<Arc<Principal>> {
        self.issued.lock().unwrap_or_else(PoisonError::into_inner).get(key).cloned()
    }

    /// Every issued session (for the authorisation matrix).
    pub fn all(&self) -> Vec<Arc<Principal>> {
        self.issued.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    /// The role's trust decides (the caller's identity policy was checked already): the role must be deployed,
    /// trust the caller (the hub's function roles; for the reader role, any principal of the hub account), and be
    /// given its external id when it asks for one.
    pub fn assume(
        &self,
        caller: &Principal,
        hub_account: &str,
        hub_stack: &str,
        input: &BTreeMap<String, String>,
    ) -> Result<Issued, Refusal> {
        let role_arn = input.get("RoleArn").map(String::as_str).unwrap_or_default();
        let session = input.get("RoleSessionName").map(String::as_str).unwrap_or_default();
        let denied = || Refusal::Denied {
            message: format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                caller.arn
            ),
        };
        let role = self.roles.get(role_arn).ok_or_else(denied)?;
        let trusted_role = format!("arn:aws:iam::{hub_account}:role/{hub_stack}-");
        let trusted = match role.trust {
            Trust::HubFunctions => caller.role_arn.starts_with(&trusted_role),
            Trust::HubAccount => true,
        };
        if caller.account != hub_account || !trusted {
            return Err(denied());
        }
        if role.external_id.is_some() && role.external_id.as_ref() != input.get("ExternalId") {
            return Err(denied());
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let role_name = role.arn.rsplit('/').next().unwrap_or_default();
        let principal = Principal {
            key: format!("ASIASPOKE{}{n:07}", role.account),
            arn: format!("arn:aws:sts::{}:assumed-role/{role_name}/{session}", role.account),
            role_arn: role.arn.clone(),
            account: role.account.clone(),
            grants: Grants::Policies { documents: role.documents.clone(), parsed: role.parsed.clone() },
        };
        let issued = Issued {
            access_key: principal.key.clone(),
            assumed_role_arn: principal.arn.clone(),
            assumed_role_id: format!("AROASPOKE{}:{session}", role.account),
        };
        self.issued.lock().unwrap_or_else(PoisonError::into_inner).insert(principal.key.clone(), Arc::new(principal));
        Ok(issued)
    }
}

/// The awsQuery (XML) answer to `AssumeRole`: credentials valid for an hour of wall-clock time (the SDK's
/// credentials cache runs on the wall clock, not on the estate's).
pub fn assume_role_response(issued: &Issued) -> String {
    let expiration =
        (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!(
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
<AssumeRoleResult><AssumedRoleUser><AssumedRoleId>{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser>\
<Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>local</SecretAccessKey>\
<SessionToken>local-session</SessionToken><Expiration>{expiration}</Expiration></Credentials></AssumeRoleResult>\
<ResponseMetadata><RequestId>00000000-0000-4000-8000-000000000000</RequestId></ResponseMetadata></AssumeRoleResponse>",
        xml_escape(&issued.assumed_role_id),
        xml_escape(&issued.assumed_role_arn),
        xml_escape(&issued.access_key),
    )
}

/// The awsQuery (XML) answer to `GetCallerIdentity`.
pub fn caller_identity_response(arn: &str, account: &str) -> String {
    format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult>\
<Arn>{}</Arn><UserId>AIDALOCAL</UserId><Account>{}</Account></GetCallerIdentityResult>\
<ResponseMetadata><RequestId>00000000-0000-4000-8000-000000000000</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
        xml_escape(arn),
        xml_escape(account),
    )
}

/// The awsQuery (XML) error document.
pub fn error_response(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
<Code>{}</Code><Message>{}</Message></Error><RequestId>00000000-0000-4000-8000-000000000000</RequestId></ErrorResponse>",
        xml_escape(code),
        xml_escape(message)
    )
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
