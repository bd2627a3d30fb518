//! The observe step: export image tasks through one paginated `ListExportImageTasks` (one pass serves every
//! task in flight), a filtered list to find the task of an interrupted creation, and `GetExportImageTask` for a
//! task the list did not show.

use crate::decide::{TaskError, TaskView};
use autopilot_shared::clients::AwsClients;
use autopilot_shared::error::ObserveError;
use aws_sdk_appstream::types::{ExportImageTask, Filter};
use chrono::{DateTime, Utc};

/// The largest page `ListExportImageTasks` serves.
const PAGE_SIZE: i32 = 500;

/// The SDK's task as the decide step sees it; `None` without a task id.
pub fn task_view(task: &ExportImageTask) -> Option<TaskView> {
    let created_at = task
        .created_date()
        .and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos()))
        .unwrap_or_default();
    Some(TaskView {
        task_id: task.task_id()?.to_owned(),
        image_name: task.image_arn().and_then(|arn| arn.rsplit('/').next()).unwrap_or_default().to_owned(),
        ami_name: task.ami_name().unwrap_or_default().to_owned(),
        state: task.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        created_at,
        ami_id: task.ami_id().map(str::to_owned),
        error: task.error_details().first().map(|e| TaskError {
            code: e.error_code().unwrap_or("Unknown").to_owned(),
            message: e.error_message().unwrap_or_default().to_owned(),
        }),
    })
}

/// Every export task, optionally filtered, and how many calls it took.
pub async fn list_tasks(aws: &AwsClients, filters: Vec<Filter>) -> Result<(Vec<TaskView>, u32), ObserveError> {
    let (mut tasks, mut calls, mut token) = (Vec::new(), 0, None);
    let filters = (!filters.is_empty()).then_some(filters);
    loop {
        calls += 1;
        let page = aws
            .appstream
            .list_export_image_tasks()
            .set_filters(filters.clone())
            .max_results(PAGE_SIZE)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| ObserveError::sdk("export image tasks", &e))?;
        tasks.extend(page.export_image_tasks().iter().filter_map(task_view));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok((tasks, calls));
        }
    }
}

/// The task an interrupted creation may have made: same image and AMI name, created at or after the intent.
pub async fn find_created(
    aws: &AwsClients,
    image_name: &str,
    ami_name: &str,
    intent_at: DateTime<Utc>,
) -> Result<(Option<TaskView>, u32), ObserveError> {
    let filters = vec![
        Filter::builder().name("ImageName").values(image_name).build(),
        Filter::builder().name("AmiName").values(ami_name).build(),
    ];
    let (tasks, calls) = list_tasks(aws, filters).await?;
    // Timestamps come back in whole seconds: compare at that precision.
    let since = intent_at.timestamp();
    let found = tasks
        .into_iter()
        .filter(|t| t.image_name == image_name && t.ami_name == ami_name && t.created_at.timestamp() >= since)
        .min_by_key(|t| t.created_at);
    Ok((found, calls))
}

/// One task by id (`None` when the service does not know it).
pub async fn get_task(aws: &AwsClients, task_id: &str) -> Result<Option<TaskView>, ObserveError> {
    match aws.appstream.get_export_image_task().task_id(task_id).send().await {
        Ok(output) => Ok(output.export_image_task().and_then(task_view)),
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
        Err(error) => Err(ObserveError::sdk("export image task", &error)),
    }
}
