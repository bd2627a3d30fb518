//! IAM identity-based policies and their evaluation, as AWS documents it: an explicit `Deny` wins, then any
//! `Allow`, and anything not allowed is denied (implicitly). Actions match case-insensitively with `*` and `?`;
//! resources case-sensitively; conditions with AWS's operators, `…IfExists`, and the `ForAnyValue` /
//! `ForAllValues` set qualifiers. A policy that uses what this evaluator does not know (an operator, policy
//! variables) is refused when it is loaded, never guessed at.

use serde_json::Value;
use std::collections::BTreeMap;

/// Why a policy document cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {reason}")]
pub struct PolicyError {
    pub place: String,
    pub reason: String,
}

fn error(place: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError { place: place.to_owned(), reason: reason.into() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action` or `NotAction`, `Resource` or `NotResource`: patterns, or everything but them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Patterns {
    Any(Vec<String>),
    AllBut(Vec<String>),
}

/// A condition operator (without its `IfExists` suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    ArnEquals,
    ArnNotEquals,
    ArnLike,
    ArnNotLike,
    Bool,
    Null,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
}

impl Operator {
    fn parse(name: &str) -> Option<Self> {
        use Operator::*;
        Some(match name {
            "StringEquals" => StringEquals,
            "StringNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" => StringLike,
            "StringNotLike" => StringNotLike,
            "ArnEquals" => ArnEquals,
            "ArnNotEquals" => ArnNotEquals,
            "ArnLike" => ArnLike,
            "ArnNotLike" => ArnNotLike,
            "Bool" => Bool,
            "Null" => Null,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            _ => return None,
        })
    }

    /// The negated operators are true for a key the request does not carry.
    fn is_negated(self) -> bool {
        use Operator::*;
        matches!(
            self,
            StringNotEquals | StringNotEqualsIgnoreCase | StringNotLike | ArnNotEquals | ArnNotLike | NumericNotEquals
        )
    }

    /// Whether one request value matches one policy value (for a negated operator: whether it matches the
    /// positive form; the negation is applied over the whole set).
    fn matches(self, request: &str, policy: &str) -> bool {
        use Operator::*;
        match self {
            StringEquals | StringNotEquals => request == policy,
            StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => request.eq_ignore_ascii_case(policy),
            StringLike | StringNotLike => glob(policy, request, Case::Sensitive),
            ArnEquals | ArnNotEquals | ArnLike | ArnNotLike => arn_like(policy, request),
            Bool => request.eq_ignore_ascii_case(policy),
            // decided on the key's presence alone, in `Condition::holds`
            Null => false,
            NumericEquals | NumericNotEquals => numbers(request, policy).is_some_and(|(r, p)| r == p),
            NumericLessThan => numbers(request, policy).is_some_and(|(r, p)| r < p),
            NumericLessThanEquals => numbers(request, policy).is_some_and(|(r, p)| r <= p),
            NumericGreaterThan => numbers(request, policy).is_some_and(|(r, p)| r > p),
            NumericGreaterThanEquals => numbers(request, policy).is_some_and(|(r, p)| r >= p),
        }
    }
}

fn numbers(request: &str, policy: &str) -> Option<(f64, f64)> {
    Some((request.parse().ok()?, policy.parse().ok()?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    operator: Operator,
    if_exists: bool,
    qualifier: Option<SetQualifier>,
    /// Lower case: condition key names are case-insensitive.
    key: String,
    values: Vec<String>,
}

impl Condition {
    fn holds(&self, context: &Context) -> bool {
        let present = context.get(&self.key);
        if self.operator == Operator::Null {
            // `Null: true` holds when the key is absent, `false` when it is present.
            let wants_absent = self.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            return wants_absent == present.is_none();
        }
        let Some(request) = present else {
            // A key the request does not carry: only `…IfExists`, the negated operators and ForAllValues hold.
            return self.if_exists || self.operator.is_negated() || self.qualifier == Some(SetQualifier::ForAllValues);
        };
        let positive = |value: &str| self.values.iter().any(|policy| self.operator.matches(value, policy));
        match (self.qualifier, self.operator.is_negated()) {
            (Some(SetQualifier::ForAllValues), false) => request.iter().all(|v| positive(v)),
            (Some(SetQualifier::ForAnyValue), true) => request.iter().any(|v| !positive(v)),
            // A negated operator without a qualifier: no request value may match any policy value.
            (Some(SetQualifier::ForAllValues) | None, true) => request.iter().all(|v| !positive(v)),
            (Some(SetQualifier::ForAnyValue) | None, false) => request.iter().any(|v| positive(v)),
        }
    }
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    actions: Patterns,
    resources: Patterns,
    conditions: Vec<Condition>,
}

/// A request's condition keys and their values; key names in lower case.
pub type Context = BTreeMap<String, Vec<String>>;

impl Statement {
    fn applies(&self, action: &str, resource: &str, context: &Context) -> bool {
        let action_matches = match &self.actions {
            Patterns::Any(patterns) => patterns.iter().any(|p| glob(p, action, Case::Insensitive)),
            Patterns::AllBut(patterns) => !patterns.iter().any(|p| glob(p, action, Case::Insensitive)),
        };
        let resource_matches = match &self.resources {
            Patterns::Any(patterns) => patterns.iter().any(|p| glob(p, resource, Case::Sensitive)),
            Patterns::AllBut(patterns) => !patterns.iter().any(|p| glob(p, resource, Case::Sensitive)),
        };
        action_matches && resource_matches && self.conditions.iter().all(|c| c.holds(context))
    }
}

/// An identity-based policy document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyDocument {
    pub statements: Vec<Statement>,
}

/// The outcome of evaluating a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Decision {
    Allowed,
    /// No statement allows it.
    ImplicitDeny,
    /// A `Deny` statement matches it.
    ExplicitDeny,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allowed
    }
}

/// Evaluates `action` on `resource` with `context` against every statement of `policies`.
pub fn evaluate(policies: &[PolicyDocument], action: &str, resource: &str, context: &Context) -> Decision {
    let mut allowed = false;
    for statement in policies.iter().flat_map(|p| &p.statements) {
        if statement.applies(action, resource, context) {
            match statement.effect {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => allowed = true,
            }
        }
    }
    if allowed { Decision::Allowed } else { Decision::ImplicitDeny }
}

fn strings(value: &Value, place: &str) -> Result<Vec<String>, PolicyError> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(error(place, format!("{other} is not a string"))),
    };
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

fn patterns(statement: &Value, positive: &str, negative: &str, place: &str) -> Result<Patterns, PolicyError> {
    match (statement.get(positive), statement.get(negative)) {
        (Some(value), None) => Ok(Patterns::Any(strings(value, &format!("{place}.{positive}"))?)),
        (None, Some(value)) => Ok(Patterns::AllBut(strings(value, &format!("{place}.{negative}"))?)),
        (Some(_), Some(_)) => Err(error(place, format!("both {positive} and {negative}"))),
        (None, None) => Err(error(place, format!("neither {positive} nor {negative}"))),
    }
}

fn conditions(value: Option<&Value>, place: &str) -> Result<Vec<Condition>, PolicyError> {
    let Some(value) = value else { return Ok(Vec::new()) };
    let Some(map) = value.as_object() else { return Err(error(place, "Condition is not an object")) };
    let mut found = Vec::new();
    for (name, keys) in map {
        let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else {
            (None, name.as_str())
        };
        let (base, if_exists) = rest.strip_suffix("IfExists").map_or((rest, false), |base| (base, true));
        let operator = Operator::parse(base)
            .ok_or_else(|| error(place, format!("condition operator {name} is not one this evaluator knows")))?;
        let Some(keys) = keys.as_object() else { return Err(error(place, format!("{name} is not an object"))) };
        for (key, values) in keys {
            let values = strings(values, &format!("{place}.Condition.{name}.{key}"))?;
            if values.iter().any(|v| v.contains("${")) {
                return Err(error(place, format!("{name}.{key}: policy variables are not supported")));
            }
            found.push(Condition { operator, if_exists, qualifier, key: key.to_ascii_lowercase(), values });
        }
    }
    Ok(found)
}

impl PolicyDocument {
    /// Reads a policy document (intrinsic functions already resolved). `place` names it in errors.
    pub fn parse(document: &Value, place: &str) -> Result<Self, PolicyError> {
        let statements = match document.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => return Err(error(place, "no Statement")),
        };
        let mut parsed = Vec::new();
        for (index, statement) in statements.into_iter().enumerate() {
            let sid = statement.get("Sid").and_then(Value::as_str).map(str::to_owned);
            let place = format!("{place}.Statement[{}]", sid.clone().unwrap_or_else(|| index.to_string()));
            let effect = match statement.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                other => return Err(error(&place, format!("Effect {other:?} is neither Allow nor Deny"))),
            };
            if statement.get("Principal").is_some() || statement.get("NotPrincipal").is_some() {
                return Err(error(&place, "an identity-based policy names no Principal"));
            }
            let resources = patterns(statement, "Resource", "NotResource", &place)?;
            if let Patterns::Any(list) | Patterns::AllBut(list) = &resources
                && list.iter().any(|r| r.contains("${"))
            {
                return Err(error(&place, "policy variables in Resource are not supported"));
            }
            parsed.push(Statement {
                sid,
                effect,
                actions: patterns(statement, "Action", "NotAction", &place)?,
                resources,
                conditions: conditions(statement.get("Condition"), &place)?,
            });
        }
        Ok(Self { statements: parsed })
    }

    /// Every action pattern the policy's statements name (for checks against the authorization reference).
    pub fn action_patterns(&self) -> impl Iterator<Item = &str> {
        self.statements.iter().flat_map(|s| match &s.actions {
            Patterns::Any(list) | Patterns::AllBut(list) => list.iter().map(String::as_str),
        })
    }
}

/// How a pattern compares letters: actions without case, resources and condition values exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Sensitive,
    Insensitive,
}

/// IAM's wildcard match: `*` any run of characters, `?` any one.
pub fn glob(pattern: &str, text: &str, case: Case) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let same = |a: u8, b: u8| match case {
        Case::Insensitive => a.eq_ignore_ascii_case(&b),
        Case::Sensitive => a == b,
    };
    // Iterative matching with backtracking to the last `*`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || same(pattern[p], text[t])) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// `ArnLike`: the six colon-separated parts match one by one (a wildcard does not cross a colon of the first
/// five).
fn arn_like(pattern: &str, arn: &str) -> bool {
    let split = |s: &str| s.splitn(6, ':').map(str::to_owned).collect::<Vec<_>>();
    let (pattern, arn) = (split(pattern), split(arn));
    pattern.len() == 6 && arn.len() == 6 && pattern.iter().zip(&arn).all(|(p, a)| glob(p, a, Case::Sensitive))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context(pairs: &[(&str, &str)]) -> Context {
        pairs.iter().map(|(k, v)| (k.to_ascii_lowercase(), vec![(*v).to_owned()])).collect()
    }

    fn decide(statements: Value, action: &str, resource: &str, pairs: &[(&str, &str)]) -> Decision {
        let policy = PolicyDocument::parse(&json!({ "Statement": statements }), "test").unwrap();
        evaluate(&[policy], action, resource, &context(pairs))
    }

    #[test]
    fn wildcards_match_as_iam_documents() {
        assert!(glob("workspaces:Describe*", "workspaces:describeworkspaces", Case::Insensitive));
        assert!(glob("arn:aws:appstream:*:1:fleet/*", "arn:aws:appstream:eu-central-1:1:fleet/a/b", Case::Sensitive));
        assert!(glob("a?c", "abc", Case::Sensitive));
        assert!(!glob("a?c", "ac", Case::Sensitive));
        assert!(!glob("arn:aws:x:::Fleet/*", "arn:aws:x:::fleet/a", Case::Sensitive));
        assert!(glob("*", "", Case::Sensitive));
        assert!(arn_like("arn:aws:iam::*:role/*", "arn:aws:iam::123:role/x/y"));
        assert!(!arn_like("arn:aws:iam::*", "arn:aws:iam::123:role/x"));
    }

    #[test]
    fn deny_wins_then_allow_then_implicit_deny() {
        let allow = json!({ "Effect": "Allow", "Action": "dynamodb:*", "Resource": "arn:t" });
        let deny = json!({ "Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*" });
        assert_eq!(decide(json!([allow, deny]), "dynamodb:GetItem", "arn:t", &[]), Decision::Allowed);
        assert_eq!(decide(json!([allow, deny]), "dynamodb:DeleteItem", "arn:t", &[]), Decision::ExplicitDeny);
        assert_eq!(decide(json!([allow]), "dynamodb:GetItem", "arn:u", &[]), Decision::ImplicitDeny);
        let not_action = json!({ "Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:u" });
        assert_eq!(decide(json!([not_action]), "dynamodb:GetItem", "arn:t", &[]), Decision::Allowed);
        assert_eq!(decide(json!([not_action]), "iam:PassRole", "arn:t", &[]), Decision::ImplicitDeny);
        assert_eq!(decide(json!([not_action]), "s3:GetObject", "arn:u", &[]), Decision::ImplicitDeny);
    }

    #[test]
    fn conditions_follow_the_operators_and_missing_keys() {
        let region = json!({ "Effect": "Allow", "Action": "a:B", "Resource": "*",
            "Condition": { "StringEquals": { "aws:RequestedRegion": "eu-central-1" } } });
        assert_eq!(decide(json!([region]), "a:B", "*", &[("aws:RequestedRegion", "eu-central-1")]), Decision::Allowed);
        assert_eq!(
            decide(json!([region]), "a:B", "*", &[("aws:requestedregion", "us-east-1")]),
            Decision::ImplicitDeny
        );
        assert_eq!(decide(json!([region]), "a:B", "*", &[]), Decision::ImplicitDeny);
        let not_equals = json!({ "Effect": "Allow", "Action": "a:B", "Resource": "*",
            "Condition": { "StringNotEquals": { "k": ["x", "y"] } } });
        assert_eq!(decide(json!([not_equals]), "a:B", "*", &[("k", "x")]), Decision::ImplicitDeny);
        assert_eq!(decide(json!([not_equals]), "a:B", "*", &[("k", "z")]), Decision::Allowed);
        assert_eq!(decide(json!([not_equals]), "a:B", "*", &[]), Decision::Allowed);
        let if_exists = json!({ "Effect": "Allow", "Action": "a:B", "Resource": "*",
            "Condition": { "StringLikeIfExists": { "k": "p-*" } } });
        assert_eq!(decide(json!([if_exists]), "a:B", "*", &[]), Decision::Allowed);
        assert_eq!(decide(json!([if_exists]), "a:B", "*", &[("k", "p-1")]), Decision::Allowed);
        assert_eq!(decide(json!([if_exists]), "a:B", "*", &[("k", "q-1")]), Decision::ImplicitDeny);
        let absent =
            json!({ "Effect": "Allow", "Action": "a:B", "Resource": "*", "Condition": { "Null": { "k": "true" } } });
        assert_eq!(decide(json!([absent]), "a:B", "*", &[]), Decision::Allowed);
        assert_eq!(decide(json!([absent]), "a:B", "*", &[("k", "v")]), Decision::ImplicitDeny);
        let bool_and_number = json!({ "Effect": "Allow", "Action": "a:B", "Resource": "*",
            "Condition": { "Bool": { "aws:SecureTransport": true }, "NumericLessThan": { "n": 10 } } });
        assert_eq!(
            decide(json!([bool_and_number]), "a:B", "*", &[("aws:SecureTransport", "true"), ("n", "9")]),
            Decision::Allowed
        );
        assert_eq!(
            decide(json!([bool_and_number]), "a:B", "*", &[("aws:SecureTransport", "true"), ("n", "10")]),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn set_qualifiers_compare_every_value() {
        let any = json!({ "Effect": "Allow", "Action": "a:B", "Resource": "*",
            "Condition": { "ForAnyValue:StringEquals": { "aws:TagKeys": ["a", "b"] } } });
        let all = json!({ "Effect": "Allow", "Action": "a:B", "Resource": "*",
            "Condition": { "ForAllValues:StringEquals": { "aws:TagKeys": ["a", "b"] } } });
        let keys = |values: &[&str]| -> Context {
            [("aws:tagkeys".to_owned(), values.iter().map(|v| (*v).to_owned()).collect())].into()
        };
        let run = |statement: &Value, values: &[&str]| {
            let policy = PolicyDocument::parse(&json!({ "Statement": [statement] }), "t").unwrap();
            evaluate(&[policy], "a:B", "*", &keys(values))
        };
        assert_eq!(run(&any, &["a", "z"]), Decision::Allowed);
        assert_eq!(run(&any, &["z"]), Decision::ImplicitDeny);
        assert_eq!(run(&all, &["a", "b"]), Decision::Allowed);
        assert_eq!(run(&all, &["a", "z"]), Decision::ImplicitDeny);
    }

    #[test]
    fn what_the_evaluator_does_not_know_is_refused() {
        let parse = |statement: Value| PolicyDocument::parse(&json!({ "Statement": [statement] }), "p");
        let unknown = parse(json!({ "Effect": "Allow", "Action": "a:B", "Resource": "*",
            "Condition": { "IpAddress": { "aws:SourceIp": "10.0.0.0/8" } } }));
        assert!(unknown.unwrap_err().reason.contains("IpAddress"));
        let variable = parse(json!({ "Effect": "Allow", "Action": "a:B", "Resource": "arn:x:${aws:username}" }));
        assert!(variable.unwrap_err().reason.contains("policy variables"));
        assert!(parse(json!({ "Effect": "Maybe", "Action": "a:B", "Resource": "*" })).is_err());
        assert!(parse(json!({ "Effect": "Allow", "Action": "a:B" })).is_err());
        assert!(parse(json!({ "Effect": "Allow", "Action": "a:B", "Resource": "*", "Principal": "*" })).is_err());
    }
}
