//! `template.yaml` as CloudFormation would deploy it, for the parts the local estate needs: parameters,
//! conditions and the intrinsic functions (`Ref`, `Fn::Sub`, `Fn::GetAtt`, `Fn::If`, `Fn::Join`, `Fn::Select`,
//! `Fn::Split`, `Fn::FindInMap`, `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`) resolved for one stack — its name, partition,
//! account, region and parameter values — with the physical names CloudFormation and SAM give resources.
//! An intrinsic or a reference it cannot resolve is an error naming it, never a guess.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Why a template cannot be read or resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(pub String);

fn fail<T>(message: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(message.into()))
}

/// Suffix of the names CloudFormation generates (a random string in AWS).
pub const GENERATED_SUFFIX: &str = "LOCAL";

/// The stack a template is resolved for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSettings {
    pub stack_name: String,
    pub partition: String,
    pub account: String,
    pub region: String,
    /// Parameter values given at deploy time (the rest take their defaults). A `CommaDelimitedList` is given as
    /// its comma-separated text.
    pub parameters: BTreeMap<String, String>,
    /// Physical names of resources the template leaves to CloudFormation (e.g. the ledger table).
    pub physical_names: BTreeMap<String, String>,
}

/// A template resolved for one stack.
#[derive(Debug, Clone)]
pub struct Stack {
    template: Value,
    pub settings: StackSettings,
    conditions: BTreeMap<String, bool>,
}

impl Stack {
    /// Reads `template` (YAML, long-form intrinsics) and evaluates its conditions for `settings`.
    pub fn new(template: &str, settings: StackSettings) -> Result<Self, TemplateError> {
        let template: Value = serde_yaml_ng::from_str(template).map_err(|e| TemplateError(e.to_string()))?;
        let mut stack = Self { template, settings, conditions: BTreeMap::new() };
        let definitions = stack.template["Conditions"].as_object().cloned().unwrap_or_default();
        for name in definitions.keys() {
            let value = stack.condition(name, &definitions, 0)?;
            stack.conditions.insert(name.clone(), value);
        }
        Ok(stack)
    }

    fn condition(&self, name: &str, definitions: &Map<String, Value>, depth: usize) -> Result<bool, TemplateError> {
        if depth > 16 {
            return fail(format!("condition {name} refers to itself"));
        }
        let Some(definition) = definitions.get(name) else { return fail(format!("no condition {name}")) };
        self.truth(definition, definitions, depth + 1)
    }

    fn truth(&self, value: &Value, definitions: &Map<String, Value>, depth: usize) -> Result<bool, TemplateError> {
        let Some((function, argument)) = single(value) else {
            return fail(format!("a condition must be a function, not {value}"));
        };
        let each = |list: &Value| -> Result<Vec<bool>, TemplateError> {
            list.as_array()
                .ok_or_else(|| TemplateError(format!("{function} takes a list")))?
                .iter()
                .map(|v| self.truth(v, definitions, depth))
                .collect()
        };
        match function {
            "Fn::Equals" => {
                let [a, b] = argument.as_array().map(Vec::as_slice).unwrap_or_default() else {
                    return fail("Fn::Equals takes two values");
                };
                Ok(self.resolve(a)? == self.resolve(b)?)
            }
            "Fn::Not" => Ok(!each(argument)?.first().copied().unwrap_or(false)),
            "Fn::And" => Ok(each(argument)?.iter().all(|b| *b)),
            "Fn::Or" => Ok(each(argument)?.iter().any(|b| *b)),
            "Condition" => match argument.as_str() {
                Some(name) => self.condition(name, definitions, depth),
                None => fail("Condition takes a name"),
            },
            other => fail(format!("{other} is not a condition function")),
        }
    }

    /// Whether the condition `name` holds for this stack.
    pub fn holds(&self, name: &str) -> Result<bool, TemplateError> {
        self.conditions.get(name).copied().ok_or_else(|| TemplateError(format!("no condition {name}")))
    }

    /// The template as read.
    pub fn template(&self) -> &Value {
        &self.template
    }

    /// The resources of one type, by logical id.
    pub fn resources_of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.template["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(move |(_, resource)| resource["Type"] == kind)
            .map(|(id, resource)| (id.as_str(), resource))
    }

    /// `value` with every intrinsic function resolved; `None` for `Ref: AWS::NoValue` (and list items that
    /// resolve to it are dropped).
    pub fn resolve(&self, value: &Value) -> Result<Option<Value>, TemplateError> {
        match value {
            Value::Array(items) => {
                let mut resolved = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(item) = self.resolve(item)? {
                        resolved.push(item);
                    }
                }
                Ok(Some(Value::Array(resolved)))
            }
            Value::Object(map) => {
                if let Some((function, argument)) = single(value)
                    && (function == "Ref" || function.starts_with("Fn::"))
                {
                    return self.intrinsic(function, argument);
                }
                let mut resolved = Map::new();
                for (key, item) in map {
                    if let Some(item) = self.resolve(item)? {
                        resolved.insert(key.clone(), item);
                    }
                }
                Ok(Some(Value::Object(resolved)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    fn resolved(&self, value: &Value) -> Result<Value, TemplateError> {
        self.resolve(value)?.ok_or_else(|| TemplateError(format!("{value} resolves to no value here")))
    }

    fn intrinsic(&self, function: &str, argument: &Value) -> Result<Option<Value>, TemplateError> {
        let list = |n: usize| -> Result<&[Value], TemplateError> {
            argument
                .as_array()
                .map(Vec::as_slice)
                .filter(|items| items.len() == n)
                .ok_or_else(|| TemplateError(format!("{function} takes {n} arguments, not {argument}")))
        };
        match function {
            "Ref" => match argument.as_str() {
                Some("AWS::NoValue") => Ok(None),
                Some(name) => self.reference(name).map(Some),
                None => fail(format!("Ref takes a name, not {argument}")),
            },
            "Fn::GetAtt" => {
                let (id, attribute) = match argument {
                    Value::String(text) => text.split_once('.').unwrap_or((text, "")),
                    Value::Array(items) => match items.as_slice() {
                        [Value::String(id), Value::String(attribute)] => (id.as_str(), attribute.as_str()),
                        _ => return fail(format!("Fn::GetAtt takes [id, attribute], not {argument}")),
                    },
                    _ => return fail(format!("Fn::GetAtt takes [id, attribute], not {argument}")),
                };
                self.attribute(id, attribute).map(Some)
            }
            "Fn::Sub" => {
                let (text, variables) = match argument {
                    Value::String(text) => (text.as_str(), Map::new()),
                    Value::Array(items) => match items.as_slice() {
                        [Value::String(text), Value::Object(variables)] => (text.as_str(), variables.clone()),
                        _ => return fail(format!("Fn::Sub takes a string or [string, variables], not {argument}")),
                    },
                    _ => return fail(format!("Fn::Sub takes a string, not {argument}")),
                };
                self.substitute(text, &variables).map(|s| Some(Value::String(s)))
            }
            "Fn::If" => {
                let [condition, then, otherwise] = list(3)? else { return fail("Fn::If takes three arguments") };
                let Some(name) = condition.as_str() else { return fail("Fn::If names a condition") };
                if self.holds(name)? { self.resolve(then) } else { self.resolve(otherwise) }
            }
            "Fn::FindInMap" => {
                let [map, first, second] = list(3)? else { return fail("Fn::FindInMap takes three arguments") };
                let (first, second) = (text(&self.resolved(first)?), text(&self.resolved(second)?));
                let found = &self.template()["Mappings"][text(map)][&first][&second];
                if found.is_null() {
                    return fail(format!("Fn::FindInMap: no {map}.{first}.{second} in Mappings"));
                }
                Ok(Some(found.clone()))
            }
            "Fn::Join" => {
                let [separator, items] = list(2)? else { return fail("Fn::Join takes two arguments") };
                let separator = separator.as_str().unwrap_or_default();
                let items = self.resolved(items)?;
                let parts: Vec<String> = items.as_array().into_iter().flatten().map(text).collect();
                Ok(Some(Value::String(parts.join(separator))))
            }
            "Fn::Split" => {
                let [separator, source] = list(2)? else { return fail("Fn::Split takes two arguments") };
                let separator = separator.as_str().unwrap_or(",");
                let source = text(&self.resolved(source)?);
                Ok(Some(Value::Array(source.split(separator).map(|s| Value::String(s.to_owned())).collect())))
            }
            "Fn::Select" => {
                let [index, items] = list(2)? else { return fail("Fn::Select takes two arguments") };
                let index: usize =
                    text(&self.resolved(index)?).parse().map_err(|_| TemplateError("Fn::Select index".into()))?;
                let items = self.resolved(items)?;
                items
                    .get(index)
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| TemplateError(format!("Fn::Select {index} out of range")))
            }
            other => fail(format!("{other} is not an intrinsic function the local estate resolves")),
        }
    }

    fn substitute(&self, text: &str, variables: &Map<String, Value>) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { return fail(format!("unclosed ${{ in {text}")) };
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = variables.get(name) {
                out.push_str(&text_of(&self.resolved(value)?));
            } else if let Some((id, attribute)) = name.split_once('.').filter(|_| !name.starts_with("AWS::")) {
                out.push_str(&text_of(&self.attribute(id, attribute)?));
            } else {
                out.push_str(&text_of(&self.reference(name)?));
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn reference(&self, name: &str) -> Result<Value, TemplateError> {
        let s = &self.settings;
        let pseudo = match name {
            "AWS::Partition" => Some(s.partition.clone()),
            "AWS::Region" => Some(s.region.clone()),
            "AWS::AccountId" => Some(s.account.clone()),
            "AWS::StackName" => Some(s.stack_name.clone()),
            "AWS::URLSuffix" => Some("amazonaws.com".to_owned()),
            "AWS::StackId" => Some(format!(
                "arn:{}:cloudformation:{}:{}:stack/{}/{GENERATED_SUFFIX}",
                s.partition, s.region, s.account, s.stack_name
            )),
            _ => None,
        };
        if let Some(value) = pseudo {
            return Ok(Value::String(value));
        }
        if let Some(parameter) = self.template["Parameters"].get(name) {
            let given = s.parameters.get(name).cloned();
            let value = given.or_else(|| parameter.get("Default").map(text)).unwrap_or_default();
            return Ok(match parameter["Type"].as_str() {
                Some("CommaDelimitedList") => {
                    Value::Array(value.split(',').map(|v| Value::String(v.trim().to_owned())).collect())
                }
                _ => Value::String(value),
            });
        }
        let Some(resource) = self.template["Resources"].get(name) else {
            return fail(format!("Ref {name}: no parameter or resource of that name"));
        };
        let kind = resource["Type"].as_str().unwrap_or_default();
        Ok(Value::String(match kind {
            "AWS::SQS::Queue" => {
                format!(
                    "https://sqs.{}.amazonaws.com/{}/{}",
                    s.region,
                    s.account,
                    self.physical_name(name, "QueueName")?
                )
            }
            "AWS::SNS::Topic" => self.arn_of(name, kind)?,
            "AWS::IAM::ManagedPolicy" => self.arn_of(name, kind)?,
            _ => self.physical_name(name, name_property(kind))?,
        }))
    }

    /// The name CloudFormation gives a resource: its name property when the template sets one, the name the
    /// settings give, or `<stack>-<logical id>-LOCAL`.
    pub fn physical_name(&self, id: &str, property: &str) -> Result<String, TemplateError> {
        let resource = &self.template["Resources"][id];
        if let Some(given) = resource["Properties"].get(property) {
            return Ok(text_of(&self.resolved(given)?));
        }
        Ok(self
            .settings
            .physical_names
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("{}-{id}-{GENERATED_SUFFIX}", self.settings.stack_name)))
    }

    fn arn_of(&self, id: &str, kind: &str) -> Result<String, TemplateError> {
        let s = &self.settings;
        let (p, r, a) = (&s.partition, &s.region, &s.account);
        let name = self.physical_name(id, name_property(kind))?;
        Ok(match kind {
            "AWS::DynamoDB::Table" => format!("arn:{p}:dynamodb:{r}:{a}:table/{name}"),
            "AWS::Events::EventBus" => format!("arn:{p}:events:{r}:{a}:event-bus/{name}"),
            "AWS::SQS::Queue" => format!("arn:{p}:sqs:{r}:{a}:{name}"),
            "AWS::SNS::Topic" => format!("arn:{p}:sns:{r}:{a}:{name}"),
            "AWS::IAM::ManagedPolicy" => format!("arn:{p}:iam::{a}:policy/{name}"),
            "AWS::IAM::Role" => format!("arn:{p}:iam::{a}:role/{name}"),
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => format!("arn:{p}:lambda:{r}:{a}:function:{name}"),
            other => return fail(format!("no ARN known for {id} of type {other}")),
        })
    }

    fn attribute(&self, id: &str, attribute: &str) -> Result<Value, TemplateError> {
        let Some(resource) = self.template["Resources"].get(id) else {
            return fail(format!("Fn::GetAtt {id}.{attribute}: no resource of that name"));
        };
        let kind = resource["Type"].as_str().unwrap_or_default();
        Ok(Value::String(match attribute {
            "Arn" => self.arn_of(id, kind)?,
            "QueueName" | "Name" => self.physical_name(id, name_property(kind))?,
            other => return fail(format!("Fn::GetAtt {id}.{other}: not an attribute the local estate knows")),
        }))
    }
}

/// The property that names a resource of `kind`.
fn name_property(kind: &str) -> &'static str {
    match kind {
        "AWS::DynamoDB::Table" => "TableName",
        "AWS::Events::EventBus" => "Name",
        "AWS::SQS::Queue" => "QueueName",
        "AWS::SNS::Topic" => "TopicName",
        "AWS::IAM::ManagedPolicy" => "ManagedPolicyName",
        "AWS::IAM::Role" => "RoleName",
        "AWS::Serverless::Function" | "AWS::Lambda::Function" => "FunctionName",
        _ => "Name",
    }
}

/// The one key of a single-key mapping.
fn single(value: &Value) -> Option<(&str, &Value)> {
    let map = value.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.iter().next().map(|(k, v)| (k.as_str(), v))
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A scalar as text; a list as CloudFormation joins it where a string is wanted.
fn text_of(value: &Value) -> String {
    match value {
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => text(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEMPLATE: &str = r#"
Parameters:
  Roles: { Type: CommaDelimitedList, Default: "" }
  Prefix: { Type: String, Default: "p/" }
Conditions:
  HasRoles: { Fn::Not: [{ Fn::Equals: [{ Fn::Join: ["", { Ref: Roles }] }, ""] }] }
  Both: { Fn::And: [{ Condition: HasRoles }, { Fn::Equals: [{ Ref: Prefix }, "p/"] }] }
Resources:
  Table: { Type: AWS::DynamoDB::Table }
  Bus: { Type: AWS::Events::EventBus, Properties: { Name: { Fn::Sub: "bus-${AWS::StackName}" } } }
"#;

    fn settings(parameters: &[(&str, &str)]) -> StackSettings {
        StackSettings {
            stack_name: "s".into(),
            partition: "aws".into(),
            account: "1".into(),
            region: "r".into(),
            parameters: parameters.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
            physical_names: [("Table".to_owned(), "ledger".to_owned())].into(),
        }
    }

    #[test]
    fn intrinsics_resolve_for_the_stack() {
        let stack = Stack::new(TEMPLATE, settings(&[])).unwrap();
        let value = json!({
            "a": { "Fn::GetAtt": ["Table", "Arn"] },
            "b": { "Fn::Sub": "${Table.Arn}/index/*" },
            "c": { "Fn::GetAtt": ["Bus", "Arn"] },
            "d": { "Fn::If": ["HasRoles", { "Ref": "Roles" }, { "Ref": "AWS::NoValue" }] },
            "e": [{ "Ref": "AWS::NoValue" }, { "Fn::Sub": ["${x}-${!Literal}-${AWS::Region}", { "x": { "Ref": "Prefix" } }] }],
            "f": { "Ref": "Table" },
        });
        assert_eq!(
            stack.resolve(&value).unwrap(),
            Some(json!({
                "a": "arn:aws:dynamodb:r:1:table/ledger",
                "b": "arn:aws:dynamodb:r:1:table/ledger/index/*",
                "c": "arn:aws:events:r:1:event-bus/bus-s",
                "e": ["p/-${Literal}-r"],
                "f": "ledger",
            }))
        );
        assert!(!stack.holds("HasRoles").unwrap());
        let with_roles = Stack::new(TEMPLATE, settings(&[("Roles", "arn:a,arn:b")])).unwrap();
        assert!(with_roles.holds("Both").unwrap());
        assert_eq!(
            with_roles.resolve(&json!({ "Fn::If": ["HasRoles", { "Ref": "Roles" }, "no"] })).unwrap(),
            Some(json!(["arn:a", "arn:b"]))
        );
    }

    #[test]
    fn what_cannot_be_resolved_is_an_error() {
        let stack = Stack::new(TEMPLATE, settings(&[])).unwrap();
        assert!(stack.resolve(&json!({ "Ref": "Missing" })).unwrap_err().0.contains("Missing"));
        assert!(stack.resolve(&json!({ "Fn::GetAtt": ["Table", "StreamArn"] })).is_err());
        assert!(stack.resolve(&json!({ "Fn::ImportValue": "x" })).is_err());
        assert!(stack.resolve(&json!({ "Fn::If": ["Nope", 1, 2] })).is_err());
    }
}
