//! The ledger table definition, in one place: used by the tests, the local tool and (as the same schema) by
//! `template.yaml`. On-demand billing, string `pk`/`sk`, TTL on `expires_at`, and one GSI for audit by resource.

use super::keys;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, SseSpecification, TimeToLiveSpecification,
};

/// Why the table could not be created.
#[derive(Debug, thiserror::Error)]
#[error("could not create ledger table {table}: {message}")]
pub struct CreateTableError {
    pub table: String,
    pub message: String,
}

fn attribute(name: &str) -> Result<AttributeDefinition, BuildError> {
    AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
}

fn key_element(name: &str, key_type: KeyType) -> Result<KeySchemaElement, BuildError> {
    KeySchemaElement::builder().attribute_name(name).key_type(key_type).build()
}

/// Creates the ledger table (and enables TTL). An existing table with this name is left as it is.
pub async fn create_table(client: &Client, table: &str) -> Result<(), CreateTableError> {
    let fail =
        |message: &dyn std::fmt::Display| CreateTableError { table: table.to_owned(), message: message.to_string() };
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(keys::GSI1)
        .key_schema(key_element(keys::GSI1_PK, KeyType::Hash).map_err(|e| fail(&e))?)
        .key_schema(key_element(keys::GSI1_SK, KeyType::Range).map_err(|e| fail(&e))?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(|e| fail(&e))?;
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(keys::PK).map_err(|e| fail(&e))?)
        .attribute_definitions(attribute(keys::SK).map_err(|e| fail(&e))?)
        .attribute_definitions(attribute(keys::GSI1_PK).map_err(|e| fail(&e))?)
        .attribute_definitions(attribute(keys::GSI1_SK).map_err(|e| fail(&e))?)
        .key_schema(key_element(keys::PK, KeyType::Hash).map_err(|e| fail(&e))?)
        .key_schema(key_element(keys::SK, KeyType::Range).map_err(|e| fail(&e))?)
        .global_secondary_indexes(gsi)
        .sse_specification(SseSpecification::builder().enabled(true).build())
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => return Ok(()),
        Err(error) => return Err(fail(&format!("{:?}", error.into_service_error()))),
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().enabled(true).attribute_name(keys::TTL).build().map_err(|e| fail(&e))?,
        )
        .send()
        .await
        .map_err(|error| fail(&format!("enabling TTL: {:?}", error.into_service_error())))?;
    Ok(())
}
