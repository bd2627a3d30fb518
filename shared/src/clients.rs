//! The one place that builds AWS SDK clients: WorkSpaces, AppStream, Thin Client, DynamoDB and EventBridge,
//! from one `aws_config` load. Standard retry mode, operation timeouts derived from the Lambda deadline,
//! endpoint overrides through the standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables
//! (the SDK reads them), and the Thin Client host-prefix fix for custom endpoints.
//!
//! Building clients does no network IO, so it is safe in a Lambda's init phase.

use crate::pacing::Pacer;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut, InterceptorContext,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::endpoint_config::EndpointUrl;
use std::time::Duration;

/// Attempts per operation (first try included) in the SDK's standard retry mode.
pub const MAX_ATTEMPTS: u32 = 5;
/// Time kept back from the Lambda deadline for bookkeeping after the last AWS call.
pub const DEADLINE_RESERVE: Duration = Duration::from_secs(2);
/// Upper bound of one operation including its retries.
pub const MAX_OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Lower bound, so a nearly spent invocation still gets a meaningful attempt.
pub const MIN_OPERATION_TIMEOUT: Duration = Duration::from_secs(1);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The retry policy used for every client.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// Timeouts for an invocation with `remaining` time before its deadline: one operation (with retries) may
/// use what is left minus [`DEADLINE_RESERVE`], capped at [`MAX_OPERATION_TIMEOUT`]; one attempt a third.
pub fn timeouts_for(remaining: Duration) -> TimeoutConfig {
    let operation = remaining.saturating_sub(DEADLINE_RESERVE).clamp(MIN_OPERATION_TIMEOUT, MAX_OPERATION_TIMEOUT);
    let attempt = (operation / 3).max(MIN_OPERATION_TIMEOUT);
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_timeout(operation)
        .operation_attempt_timeout(attempt)
        .build()
}

/// Loads the shared SDK configuration from the environment (region, credentials, endpoint overrides).
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(default_https_client())
        .retry_config(retry_config())
        .timeout_config(timeouts_for(MAX_OPERATION_TIMEOUT + DEADLINE_RESERVE))
        .load()
        .await
}

/// Every SDK client the product uses, built from one configuration.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub workspaces: aws_sdk_workspaces::Client,
    pub appstream: aws_sdk_appstream::Client,
    /// Application Auto Scaling: only read, to detect pools and fleets another owner scales.
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    pub thinclient: aws_sdk_workspacesthinclient::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// AWS Organizations: only read, to find the accounts of the organisational units a policy targets.
    pub organizations: aws_sdk_organizations::Client,
}

impl AwsClients {
    /// Loads configuration from the environment and builds every client.
    pub async fn from_env() -> Self {
        Self::from_sdk_config(&load_sdk_config().await)
    }

    /// Builds every client from one configuration, all sending through one [`Pacer`] (each operation at the
    /// rate its service allows; see [`crate::pacing`]) over the configuration's HTTP client (the SDK's default
    /// HTTPS client when it names none).
    pub fn from_sdk_config(config: &SdkConfig) -> Self {
        Self::over(config, base_http_client(config))
    }

    /// Builds every client from one configuration, sending through a [`Pacer`] of their own over `http` (the
    /// process's one HTTP client, shared by the clients of every account and region).
    pub fn over(config: &SdkConfig, http: SharedHttpClient) -> Self {
        let pacer = Pacer::new();
        let config = config.to_builder().http_client(pacer.http_client(http)).build();
        let config = &config;
        macro_rules! built {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(config).retry_classifier(pacer.classifier()).build(),
                )
            };
        }
        let thinclient = aws_sdk_workspacesthinclient::config::Builder::from(config)
            .interceptor(StripHostPrefixForCustomEndpoint)
            .retry_classifier(pacer.classifier())
            .build();
        Self {
            workspaces: built!(aws_sdk_workspaces),
            autoscaling: built!(aws_sdk_applicationautoscaling),
            appstream: aws_sdk_appstream::Client::from_conf(
                aws_sdk_appstream::config::Builder::from(config)
                    .retry_classifier(AppStreamRequestLimitExceeded)
                    .retry_classifier(pacer.classifier())
                    .build(),
            ),
            thinclient: aws_sdk_workspacesthinclient::Client::from_conf(thinclient),
            dynamodb: built!(aws_sdk_dynamodb),
            eventbridge: built!(aws_sdk_eventbridge),
            organizations: built!(aws_sdk_organizations),
        }
    }

    /// The same clients for WorkSpaces, AppStream, Thin Client and Application Auto Scaling, refusing every
    /// operation that is not a read ([`RefuseMutations`]); DynamoDB and EventBridge are kept as they are.
    pub fn read_only(&self) -> Self {
        macro_rules! guarded {
            ($sdk:ident, $client:expr) => {
                $sdk::Client::from_conf($client.config().to_builder().interceptor(RefuseMutations).build())
            };
        }
        Self {
            workspaces: guarded!(aws_sdk_workspaces, self.workspaces),
            appstream: guarded!(aws_sdk_appstream, self.appstream),
            autoscaling: guarded!(aws_sdk_applicationautoscaling, self.autoscaling),
            thinclient: guarded!(aws_sdk_workspacesthinclient, self.thinclient),
            dynamodb: self.dynamodb.clone(),
            eventbridge: self.eventbridge.clone(),
            organizations: guarded!(aws_sdk_organizations, self.organizations),
        }
    }

    /// The same clients with operation timeouts derived from an invocation's remaining time. Cheap: no IO.
    pub fn with_deadline(&self, remaining: Duration) -> Self {
        let timeouts = timeouts_for(remaining);
        // An invocation with at least the longest operation time left (a fresh Lambda invocation of this stack)
        // asks for the timeouts the clients were built with: nothing to rebuild.
        if self.workspaces.config().timeout_config() == Some(&timeouts) {
            return self.clone();
        }
        // Rebuilding from a client's own config keeps its interceptors and retry classifiers.
        macro_rules! rebuilt {
            ($sdk:ident, $client:expr) => {
                $sdk::Client::from_conf($client.config().to_builder().timeout_config(timeouts.clone()).build())
            };
        }
        Self {
            workspaces: rebuilt!(aws_sdk_workspaces, self.workspaces),
            appstream: rebuilt!(aws_sdk_appstream, self.appstream),
            autoscaling: rebuilt!(aws_sdk_applicationautoscaling, self.autoscaling),
            thinclient: rebuilt!(aws_sdk_workspacesthinclient, self.thinclient),
            dynamodb: rebuilt!(aws_sdk_dynamodb, self.dynamodb),
            eventbridge: rebuilt!(aws_sdk_eventbridge, self.eventbridge),
            organizations: rebuilt!(aws_sdk_organizations, self.organizations),
        }
    }
}

/// The configuration's HTTP client, unpaced: the SDK's default HTTPS client when it names none.
pub fn base_http_client(config: &SdkConfig) -> SharedHttpClient {
    config.http_client().unwrap_or_else(default_https_client)
}

/// A plain-HTTP client (hyper 1, no TLS) for the local estate's loopback endpoints.
pub fn loopback_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_http()
}

/// The HTTPS client every AWS request goes through (hyper 1, rustls with *ring*, proxy settings from the
/// environment), built explicitly so that the [`Pacer`] can wrap it and so that the SDK crates need not build
/// their default TLS stack (aws-lc, a C library: about 30 of the 530 CPU-seconds of the tool's cold build). No IO until
/// the first request.
fn default_https_client() -> SharedHttpClient {
    use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig, tls};
    Builder::new().build_with_connector_fn(move |settings, runtime_components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = runtime_components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// Whether an operation only reads (its name starts with `Describe`, `List` or `Get`).
pub fn is_read_only(operation: &str) -> bool {
    ["Describe", "List", "Get"].iter().any(|prefix| operation.starts_with(prefix))
}

/// Refuses, before anything is sent, every operation that is not [`is_read_only`]: `autopilot plan` runs the
/// functions' real code with clients that cannot change the estate, whatever that code asks for.
#[derive(Debug, Clone, Copy)]
pub struct RefuseMutations;

impl Intercept for RefuseMutations {
    fn name(&self) -> &'static str {
        "RefuseMutations"
    }

    // Not `read_before_execution`: a client interceptor sees that hook before the operation's own
    // configuration (which names it) is applied.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map(Metadata::name).unwrap_or_default();
        if is_read_only(operation) {
            Ok(())
        } else {
            Err(format!("{operation} refused: these clients only read").into())
        }
    }
}

/// AppStream signals throttling with `RequestLimitExceededException`, a code the SDK's standard classifier
/// does not know (it knows EC2's `RequestLimitExceeded`), and most operations do not even model it. Without
/// this classifier an AppStream throttle would fail the call instead of being retried with back-off. The code
/// is found in the raw error body, which works for both RPC v2 CBOR and JSON (CBOR text is plain UTF-8).
#[derive(Debug, Clone, Copy)]
pub struct AppStreamRequestLimitExceeded;

impl ClassifyRetry for AppStreamRequestLimitExceeded {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(response) = ctx.response() else { return RetryAction::NoActionIndicated };
        let throttled = response.status().as_u16() == 400
            && response
                .body()
                .bytes()
                .is_some_and(|body| body.windows(29).any(|w| w == b"RequestLimitExceededException"));
        if throttled { RetryAction::throttling_error() } else { RetryAction::NoActionIndicated }
    }

    fn name(&self) -> &'static str {
        "AppStreamRequestLimitExceeded"
    }
}

/// Every Thin Client operation carries the endpoint prefix `api.`, and the SDK prepends it even to a custom
/// endpoint: `http://127.0.0.1:4566` becomes `http://api.127.0.0.1:4566`. When (and only when) a custom
/// endpoint is configured, this interceptor removes the prefix again before the request is signed.
#[derive(Debug, Clone, Copy)]
pub struct StripHostPrefixForCustomEndpoint;

impl Intercept for StripHostPrefixForCustomEndpoint {
    fn name(&self) -> &'static str {
        "StripHostPrefixForCustomEndpoint"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(EndpointUrl(custom)) = cfg.load::<EndpointUrl>() else { return Ok(()) };
        if let Some(uri) = strip_host_prefix(context.request().uri(), custom, "api.") {
            context.request_mut().set_uri(uri.as_str())?;
        }
        Ok(())
    }
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// The request URI without `prefix` on its host, if the host is `prefix` + the custom endpoint's host.
pub fn strip_host_prefix(uri: &str, custom_endpoint: &str, prefix: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let endpoint_host = host_of(custom_endpoint);
    let stripped = rest.strip_prefix(prefix)?;
    stripped.starts_with(endpoint_host).then(|| format!("{scheme}://{stripped}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_removed_only_for_the_custom_endpoint_host() {
        let check = |uri: &str, endpoint: &str, expected: Option<&str>| {
            assert_eq!(strip_host_prefix(uri, endpoint, "api.").as_deref(), expected, "{uri} with {endpoint}");
        };
        check(
            "http://api.127.0.0.1:4566/environments",
            "http://127.0.0.1:4566",
            Some("http://127.0.0.1:4566/environments"),
        );
        check(
            "http://api.localhost:4566/devices?environmentId=e",
            "http://localhost:4566/",
            Some("http://localhost:4566/devices?environmentId=e"),
        );
        // a custom endpoint that itself starts with api. is left alone
        check("https://api.thinclient.example.com/environments", "https://api.thinclient.example.com", None);
        check("http://127.0.0.1:4566/environments", "http://127.0.0.1:4566", None);
    }

    #[test]
    fn timeouts_follow_the_deadline() {
        let t = timeouts_for(Duration::from_secs(14));
        assert_eq!(t.operation_timeout(), Some(Duration::from_secs(12)));
        assert_eq!(t.operation_attempt_timeout(), Some(Duration::from_secs(4)));
        assert_eq!(timeouts_for(Duration::from_secs(900)).operation_timeout(), Some(MAX_OPERATION_TIMEOUT));
        assert_eq!(timeouts_for(Duration::ZERO).operation_timeout(), Some(MIN_OPERATION_TIMEOUT));
    }
}
