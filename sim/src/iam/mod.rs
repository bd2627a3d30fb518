//! What AWS would refuse, refused: every request to the simulated services and to the embedded DynamoDB is
//! authorised against the policy of the identity that signed it, as `template.yaml` defines that identity's
//! role (resolved for the estate's partition, account and region), before anything runs.
//!
//! - [`template`]: the template resolved for a stack (parameters, conditions, intrinsic functions);
//! - [`policy`]: policy documents and AWS's evaluation logic;
//! - [`request`]: what AWS authorises for a request (actions from the Service Authorization Reference,
//!   resource ARNs, condition keys).
//!
//! Identities are named by the access key id a request is signed with (the SigV4 `Credential`): each function's
//! binary name (`pool-scaler`, …) is that function's execution role; `operator` is the `OperatorPolicy` an
//! operator attaches to run `autopilot plan | audit | config`; `admin` may do anything (an administrator: the
//! simulated people, test set-up). Any other key is refused as AWS refuses an unknown one.

pub mod policy;
pub mod request;
pub mod sts;
pub mod template;

use policy::{Context, Decision, PolicyDocument};
use request::{AuthRequest, ServiceRequest, Target};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use template::{GENERATED_SUFFIX, Stack, StackSettings};

/// The deployment template every local identity's policy comes from.
pub const TEMPLATE: &str = include_str!("../../../template.yaml");

/// The stack name the local estate is "deployed" as (the README's suggested name).
pub const LOCAL_STACK: &str = "euc-autopilot";

/// Access key of the operator identity (`OperatorPolicy`).
pub const OPERATOR: &str = "operator";
/// Access key of the administrator identity (no restriction).
pub const ADMIN: &str = "admin";

/// Why an identity cannot be built from the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    #[error("{0}")]
    Identity(String),
}

/// What an identity may do.
#[derive(Debug, Clone)]
enum Grants {
    /// An administrator: every action on every resource.
    Everything,
    /// The identity-based policies of its role, resolved, and as parsed.
    Policies { documents: Vec<Value>, parsed: Vec<PolicyDocument> },
}

/// An identity requests are signed as.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The access key id that names it.
    pub key: String,
    /// Its ARN as AWS shows it in errors (an assumed-role session).
    pub arn: String,
    /// Its role's ARN (`aws:PrincipalArn`).
    pub role_arn: String,
    pub account: String,
    grants: Grants,
}

/// A request refused before it ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No or an unknown credential: AWS's `MissingAuthenticationTokenException` / `UnrecognizedClientException`.
    #[error("{code}: {message}")]
    Unauthenticated { code: &'static str, message: String },
    /// The identity's policies do not allow it: `AccessDeniedException`.
    #[error("AccessDeniedException: {message}")]
    Denied { message: String },
    /// The simulator cannot tell what AWS would authorise (a gap to fix, never a silent allow).
    #[error("{0}")]
    Unmapped(#[from] request::MappingError),
}

/// One authorisation decided, as the comparison with an independent evaluator needs it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Authorization {
    /// The access key (identity) that asked.
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub context: Context,
}

/// The identities of the local estate and the authorisations decided so far.
#[derive(Debug)]
pub struct Authorizer {
    principals: BTreeMap<String, Arc<Principal>>,
    /// The spoke roles of the estate's other accounts and the sessions assumed in them.
    sessions: sts::Sessions,
    partition: String,
    default_region: String,
    /// The stack's `OrganizationId` (empty: none).
    organization: String,
    /// The ledger table's partition key attribute (`dynamodb:LeadingKeys`).
    partition_key: String,
    /// Names of the stack's resources the functions need (table, bus, role prefix).
    pub names: StackNames,
    log: Mutex<HashMap<Authorization, Decision>>,
}

/// The partition key attribute of the stack's ledger table, from its `KeySchema`.
fn partition_key(stack: &Stack) -> Result<String, IamError> {
    let schema = &stack.template()["Resources"]["LedgerTable"]["Properties"]["KeySchema"];
    schema
        .as_array()
        .into_iter()
        .flatten()
        .find(|key| key["KeyType"] == "HASH")
        .and_then(|key| key["AttributeName"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| IamError::Identity("the LedgerTable of template.yaml has no HASH key in its KeySchema".into()))
}

/// Physical names of the local stack's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackNames {
    pub stack: String,
    pub table: String,
    pub event_bus: String,
    /// `AUTOPILOT_ROLE_NAME`: the prefix of every function role's name.
    pub role_prefix: String,
}

/// The stack the local estate runs as: the estate's account and region, the local table name, and the export
/// roles the estate's exports pass.
pub fn local_settings(
    account: &str,
    region: &str,
    table: &str,
    export_roles: &[String],
    organization: Option<&str>,
) -> StackSettings {
    StackSettings {
        stack_name: LOCAL_STACK.into(),
        partition: "aws".into(),
        account: account.into(),
        region: region.into(),
        parameters: [
            ("ExportRoleArns".to_owned(), export_roles.join(",")),
            ("OrganizationId".to_owned(), organization.unwrap_or_default().to_owned()),
        ]
        .into(),
        physical_names: [("LedgerTable".to_owned(), table.to_owned())].into(),
    }
}

impl Authorizer {
    /// Every identity of `stack`: one per function (by its binary name), the operator, the administrator.
    pub fn for_stack(stack: &Stack) -> Result<Self, IamError> {
        let s = &stack.settings;
        let mut principals = BTreeMap::new();
        let globals = stack.resolve(&stack.template()["Globals"]["Function"]["Policies"])?.unwrap_or(Value::Null);
        for (id, function) in stack.resources_of_type("AWS::Serverless::Function") {
            let binary = function["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap_or(id).to_owned();
            let policies = stack.resolve(&function["Properties"]["Policies"])?.unwrap_or(Value::Null);
            let mut documents = Vec::new();
            for policy in listed(&globals).into_iter().chain(listed(&policies)) {
                if policy.get("Statement").is_none() {
                    return Err(IamError::Identity(format!(
                        "{id}: only inline policy statements are evaluated locally, not {policy}"
                    )));
                }
                documents.push(policy.clone());
            }
            let role = format!("{}-{id}Role-{GENERATED_SUFFIX}", s.stack_name);
            let session = stack.physical_name(id, "FunctionName")?;
            principals.insert(
                binary.clone(),
                Arc::new(principal(
                    &binary,
                    s,
                    &role,
                    &session,
                    Grants::Policies { parsed: parse(&documents, id)?, documents },
                )),
            );
        }
        let operator = stack
            .resources_of_type("AWS::IAM::ManagedPolicy")
            .find(|(id, _)| *id == "OperatorPolicy")
            .ok_or_else(|| IamError::Identity("template.yaml has no OperatorPolicy".into()))?;
        let document = stack.resolve(&operator.1["Properties"]["PolicyDocument"])?.unwrap_or(Value::Null);
        let documents = vec![document];
        principals.insert(
            OPERATOR.into(),
            Arc::new(principal(
                OPERATOR,
                s,
                "EUCAutopilotOperator",
                "operator",
                Grants::Policies { parsed: parse(&documents, "OperatorPolicy")?, documents },
            )),
        );
        principals.insert(ADMIN.into(), Arc::new(principal(ADMIN, s, "Admin", "admin", Grants::Everything)));
        let names = StackNames {
            stack: s.stack_name.clone(),
            table: stack.physical_name("LedgerTable", "TableName")?,
            event_bus: stack.physical_name("EventBus", "Name")?,
            role_prefix: format!("{}-", s.stack_name),
        };
        Ok(Self {
            principals,
            sessions: sts::Sessions::default(),
            partition: s.partition.clone(),
            default_region: s.region.clone(),
            organization: s.parameters.get("OrganizationId").cloned().unwrap_or_default(),
            partition_key: partition_key(stack)?,
            names,
            log: Mutex::new(HashMap::new()),
        })
    }

    /// The local estate's identities: `template.yaml` as the stack [`LOCAL_STACK`] in `account` and `region`.
    pub fn local(
        account: &str,
        region: &str,
        table: &str,
        export_roles: &[String],
        organization: Option<&str>,
    ) -> Result<Self, IamError> {
        Self::for_stack(&Stack::new(TEMPLATE, local_settings(account, region, table, export_roles, organization))?)
    }

    /// The same identities, with the spoke roles `spokes` deployed in the estate's other accounts (their policies
    /// from `spoke.yaml`, trusting this stack's function roles), in `regions`.
    pub fn with_spokes(
        mut self,
        spokes: &[sts::SpokeDeployment],
        regions: &[String],
        export_roles: &[String],
    ) -> Result<Self, IamError> {
        let hub_account = self.principals.get(OPERATOR).map(|p| p.account.clone()).unwrap_or_default();
        self.sessions = sts::Sessions::new(spokes, &hub_account, &self.names.stack, regions, export_roles)?;
        Ok(self)
    }

    /// `AssumeRole` as `caller`: allowed by its identity policy and by the role's trust, a new session.
    pub fn assume_role(
        &self,
        caller: &Principal,
        input: &BTreeMap<String, String>,
        region: &str,
    ) -> Result<sts::Issued, Refusal> {
        let request = json!({ "RoleArn": input.get("RoleArn").cloned().unwrap_or_default() });
        self.authorize(
            caller,
            &ServiceRequest { service: "sts", operation: "AssumeRole", input: &request, path: None },
            Some(region),
        )?;
        let hub_account = self.principals.get(OPERATOR).map(|p| p.account.clone()).unwrap_or_default();
        self.sessions.assume(caller, &hub_account, &self.names.stack, input)
    }

    /// The identity named by access key `key` (a role of the stack, or a session assumed in a spoke).
    pub fn principal(&self, key: &str) -> Option<Arc<Principal>> {
        self.principals.get(key).cloned().or_else(|| self.sessions.session(key))
    }

    /// Every identity of the stack, by access key.
    pub fn principals(&self) -> impl Iterator<Item = &Principal> {
        self.principals.values().map(Arc::as_ref)
    }

    /// The identity that signed a request, and the region it was signed for, from its `Authorization` header.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<(Arc<Principal>, String), Refusal> {
        let Some(header) = authorization else {
            return Err(Refusal::Unauthenticated {
                code: "MissingAuthenticationTokenException",
                message: "Request is missing Authentication Token".into(),
            });
        };
        let scope = sigv4_scope(header).ok_or_else(|| Refusal::Unauthenticated {
            code: "IncompleteSignatureException",
            message: format!("Authorization header requires a Credential parameter: {}", clip(header)),
        })?;
        let principal = self.principal(scope.access_key).ok_or_else(|| Refusal::Unauthenticated {
            code: "UnrecognizedClientException",
            message: "The security token included in the request is invalid.".into(),
        })?;
        Ok((principal, scope.region.to_owned()))
    }

    /// Authorises `request` for `principal` in `region` (the estate's region when `None`): `Ok` when every
    /// authorisation it needs is allowed. Every decision is recorded ([`Self::decisions`]).
    pub fn authorize(
        &self,
        principal: &Principal,
        request: &ServiceRequest<'_>,
        region: Option<&str>,
    ) -> Result<(), Refusal> {
        if matches!(principal.grants, Grants::Everything) {
            return Ok(());
        }
        let region = region.unwrap_or(&self.default_region);
        let target = Target {
            partition: &self.partition,
            region,
            account: &principal.account,
            organization: &self.organization,
            partition_key: &self.partition_key,
        };
        let needed = request::authorizations(request, &target)?;
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        for needed in needed {
            let context = self.context(principal, region, &needed);
            let decision = self.decide(principal, &needed.action, &needed.resource, &context);
            log.insert(
                Authorization {
                    principal: principal.key.clone(),
                    action: needed.action.clone(),
                    resource: needed.resource.clone(),
                    context: needed.context.clone(),
                },
                decision,
            );
            if !decision.is_allowed() {
                return Err(Refusal::Denied { message: denial_message(principal, &needed, decision) });
            }
        }
        Ok(())
    }

    /// The request context: the service's condition keys and the global ones AWS adds.
    fn context(&self, principal: &Principal, region: &str, needed: &AuthRequest) -> Context {
        let mut context = needed.context.clone();
        context.insert("aws:requestedregion".into(), vec![region.to_owned()]);
        context.insert("aws:principalaccount".into(), vec![principal.account.clone()]);
        context.insert("aws:principalarn".into(), vec![principal.role_arn.clone()]);
        context
    }

    fn decide(&self, principal: &Principal, action: &str, resource: &str, context: &Context) -> Decision {
        match &principal.grants {
            Grants::Everything => Decision::Allowed,
            Grants::Policies { parsed, .. } => policy::evaluate(parsed, action, resource, context),
        }
    }

    /// Every authorisation decided so far, each once.
    pub fn decisions(&self) -> Vec<(Authorization, Decision)> {
        let mut all: Vec<_> =
            self.log.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(a, d)| (a.clone(), *d)).collect();
        all.sort();
        all
    }

    /// The refusals decided so far, as `identity: action on resource`.
    pub fn refusals(&self) -> Vec<String> {
        self.decisions()
            .into_iter()
            .filter(|(_, d)| !d.is_allowed())
            .map(|(a, _)| format!("{}: {} on {}", a.principal, a.action, a.resource))
            .collect()
    }

    /// Every (action, resource, context) asked so far evaluated for every identity with policies — the
    /// refusals of one role's requests for the others included — with everything an independent evaluator
    /// needs: each identity's ARN and resolved policies, and the global context keys.
    pub fn matrix(&self) -> Value {
        let asked: std::collections::BTreeSet<(String, String, Context)> =
            self.decisions().into_iter().map(|(a, _)| (a.action, a.resource, a.context)).collect();
        let mut principals = serde_json::Map::new();
        let mut cases = Vec::new();
        for principal in self.principals.values().cloned().chain(self.sessions.all()) {
            let Grants::Policies { documents, .. } = &principal.grants else { continue };
            principals.insert(
                principal.key.clone(),
                json!({ "arn": principal.arn, "account": principal.account, "policies": documents }),
            );
            for (action, resource, service_context) in &asked {
                let needed = AuthRequest {
                    action: action.clone(),
                    resource: resource.clone(),
                    context: service_context.clone(),
                };
                let context = self.context(&principal, &self.default_region, &needed);
                let decision = self.decide(&principal, action, resource, &context);
                cases.push(json!({
                    "principal": principal.key, "action": action, "resource": resource,
                    "context": context, "decision": decision,
                }));
            }
        }
        json!({ "principals": principals, "cases": cases })
    }
}

fn listed(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn parse(documents: &[Value], place: &str) -> Result<Vec<PolicyDocument>, IamError> {
    documents
        .iter()
        .enumerate()
        .map(|(i, d)| PolicyDocument::parse(d, &format!("{place}.Policies[{i}]")).map_err(IamError::from))
        .collect()
}

fn principal(key: &str, s: &StackSettings, role: &str, session: &str, grants: Grants) -> Principal {
    Principal {
        key: key.to_owned(),
        arn: format!("arn:{}:sts::{}:assumed-role/{role}/{session}", s.partition, s.account),
        role_arn: format!("arn:{}:iam::{}:role/{role}", s.partition, s.account),
        account: s.account.clone(),
        grants,
    }
}

/// AWS's wording of a refusal.
fn denial_message(principal: &Principal, needed: &AuthRequest, decision: Decision) -> String {
    let on = if needed.resource == "*" { String::new() } else { format!(" on resource: {}", needed.resource) };
    let because = match decision {
        Decision::ExplicitDeny => "with an explicit deny in an identity-based policy".to_owned(),
        _ => format!("because no identity-based policy allows the {} action", needed.action),
    };
    format!("User: {} is not authorized to perform: {}{on} {because}", principal.arn, needed.action)
}

/// The parts of a SigV4 credential scope the authorizer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    pub access_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// `Credential=<key>/<date>/<region>/<service>/aws4_request` of an `Authorization: AWS4-HMAC-SHA256 …` header.
pub fn sigv4_scope(header: &str) -> Option<Scope<'_>> {
    let credential = header.split([' ', ',']).find_map(|part| part.trim().strip_prefix("Credential="))?;
    let mut parts = credential.split('/');
    let (access_key, _date, region, service) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (!access_key.is_empty()).then_some(Scope { access_key, region, service })
}

fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Authorizer {
        Authorizer::local(
            "123456789012",
            "eu-central-1",
            "ledger",
            &["arn:aws:iam::123456789012:role/Export".into()],
            None,
        )
        .unwrap()
    }

    fn request<'a>(service: &'a str, operation: &'a str, input: &'a Value) -> ServiceRequest<'a> {
        ServiceRequest { service, operation, input, path: None }
    }

    #[test]
    fn the_credential_scope_names_the_identity_and_region() {
        let header = "AWS4-HMAC-SHA256 Credential=pool-scaler/20261123/eu-central-1/dynamodb/aws4_request, SignedHeaders=host, Signature=abc";
        assert_eq!(
            sigv4_scope(header),
            Some(Scope { access_key: "pool-scaler", region: "eu-central-1", service: "dynamodb" })
        );
        assert_eq!(sigv4_scope("AWS4-HMAC-SHA256 SignedHeaders=host"), None);
        let authorizer = local();
        assert_eq!(authorizer.authenticate(Some(header)).unwrap().0.key, "pool-scaler");
        let unknown = authorizer.authenticate(Some("AWS4-HMAC-SHA256 Credential=local/1/r/s/aws4_request"));
        assert!(matches!(unknown, Err(Refusal::Unauthenticated { code: "UnrecognizedClientException", .. })));
        assert!(matches!(authorizer.authenticate(None), Err(Refusal::Unauthenticated { .. })));
    }

    #[test]
    fn each_function_may_do_what_its_role_grants_and_nothing_else() {
        let authorizer = local();
        let pool_scaler = authorizer.principal("pool-scaler").unwrap();
        let remediator = authorizer.principal("remediator").unwrap();
        let update = json!({ "Name": "sales-fleet", "ComputeCapacity": { "DesiredInstances": 4 } });
        assert_eq!(authorizer.authorize(&pool_scaler, &request("appstream", "UpdateFleet", &update), None), Ok(()));
        let refused = authorizer.authorize(&remediator, &request("appstream", "UpdateFleet", &update), None);
        let Err(Refusal::Denied { message }) = refused else { panic!("{refused:?}") };
        assert_eq!(
            message,
            "User: arn:aws:sts::123456789012:assumed-role/euc-autopilot-RemediatorFunctionRole-LOCAL/euc-autopilot-RemediatorFunction-LOCAL is not authorized to perform: appstream:UpdateFleet on resource: arn:aws:appstream:eu-central-1:123456789012:fleet/sales-fleet because no identity-based policy allows the appstream:UpdateFleet action"
        );
        // the ledger is the stack's table; another table is refused
        let get = json!({ "TableName": "ledger", "Key": {} });
        assert_eq!(authorizer.authorize(&pool_scaler, &request("dynamodb", "GetItem", &get), None), Ok(()));
        let other = json!({ "TableName": "other", "Key": {} });
        assert!(authorizer.authorize(&pool_scaler, &request("dynamodb", "GetItem", &other), None).is_err());
        // the administrator may do anything; decisions are recorded for the others only
        let admin = authorizer.principal(ADMIN).unwrap();
        assert_eq!(authorizer.authorize(&admin, &request("dynamodb", "GetItem", &other), None), Ok(()));
        assert_eq!(authorizer.refusals().len(), 2, "{:?}", authorizer.refusals());
    }

    #[test]
    fn only_the_configured_export_roles_may_be_passed_and_only_in_the_stacks_region() {
        let authorizer = local();
        let chaser = authorizer.principal("export-chaser").unwrap();
        let create = |role: &str| json!({ "ImageName": "i", "AmiName": "a", "IamRoleArn": role });
        let ours = create("arn:aws:iam::123456789012:role/Export");
        let theirs = create("arn:aws:iam::123456789012:role/Admin");
        assert_eq!(authorizer.authorize(&chaser, &request("appstream", "CreateExportImageTask", &ours), None), Ok(()));
        let refused = authorizer.authorize(&chaser, &request("appstream", "CreateExportImageTask", &theirs), None);
        assert!(matches!(refused, Err(Refusal::Denied { message }) if message.contains("iam:PassRole")));
        let elsewhere =
            authorizer.authorize(&chaser, &request("appstream", "CreateExportImageTask", &ours), Some("us-east-1"));
        assert!(elsewhere.is_err());
    }
}
